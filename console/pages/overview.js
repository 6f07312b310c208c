import { api, ApiError } from '../api.js';
import { useConsole, WriteButton } from '../context.js';
import { html } from '../html.js';
import { useAction, useLive } from '../live.js';
import { LiveNote, RunStatus } from '../parts.js';

/** Everything the overview shows, in one round of requests. */
async function loadOverview() {
  const [status, queue, alerts] = await Promise.all([api('/api/jobs/status'), api('/api/jobs/queue?limit=1000'), api('/api/alerts?limit=100')]);
  const previews = await Promise.all(status.schedules.map((s) => api(`/api/jobs/schedules/${encodeURIComponent(s.job_name)}/preview?count=5`)));
  return { status, queue, alerts, previews: Object.fromEntries(previews.map((p) => [p.job_name, p])) };
}

/** Waiting, running and retrying runs of each job. */
function queueCounts(queue) {
  const counts = {};
  for (const run of queue) {
    counts[run.job_name] ??= { created: 0, active: 0, retry: 0 };
    counts[run.job_name][run.state] += 1;
  }
  return counts;
}

export function Overview() {
  const { t, f } = useConsole();
  const live = useLive(loadOverview);
  const { data } = live;
  if (!data) return html`<${LiveNote} live=${live} />`;
  const counts = queueCounts(data.queue);
  const open = data.alerts.filter((a) => a.kind !== 'recovered' && a.resolved_by === null);
  return html`<section aria-labelledby="jobs-title">
      <div class="heading">
        <h1 id="jobs-title">${t('overview.title')}</h1>
        <${LiveNote} live=${live} />
      </div>
      <p class="muted">${t('overview.totalRuns', { count: f.number(data.status.totalLogs) })} · ${t('overview.globalBudget')}: <${Spend} budget=${data.status.budgets.global} /></p>
      <div class="jobs">
        ${data.status.schedules.map(
          (schedule) => html`<${JobCard}
            key=${schedule.job_name}
            schedule=${schedule}
            latest=${data.status.latestLogs[schedule.job_name]}
            budget=${data.status.budgets.jobs[schedule.job_name]}
            preview=${data.previews[schedule.job_name]}
            counts=${counts[schedule.job_name] ?? { created: 0, active: 0, retry: 0 }}
            onChange=${live.reload}
          />`,
        )}
      </div>
    </section>
    <section aria-labelledby="alerts-title">
      <h2 id="alerts-title">${t('overview.alerts')}</h2>
      ${open.length === 0
        ? html`<p class="muted">${t('overview.noAlerts')}</p>`
        : html`<ul class="alerts">
            ${open.map(
              (a) =>
                html`<li key=${a.id}>
                  <strong>${a.job_name}</strong> · ${a.kind} · ${f.dateTime(a.occurred_at)}${a.log_id ? html` · <a href=${`#/runs/${a.log_id}`}>#${a.log_id}</a>` : null}${a.error ?? a.message ? ` · ${a.error ?? a.message}` : ''}
                </li>`,
            )}
          </ul>`}
    </section>`;
}

function Spend({ budget }) {
  const { t, f } = useConsole();
  if (!budget) return null;
  return html`<span>${f.usd(budget.spent_today_usd)} ${budget.daily_budget_usd === null ? html`(${t('overview.noBudget')})` : html`${t('overview.of')} ${f.usd(budget.daily_budget_usd)}`}</span>`;
}

function JobCard({ schedule, latest, budget, preview, counts, onChange }) {
  const { t, f } = useConsole();
  const job = schedule.job_name;
  const { message, busy, act } = useAction(onChange, (error) => describeError(t, error));

  const runNow = () => act(async () => t('overview.started', { jobId: (await api(`/api/jobs/run/${encodeURIComponent(job)}`, { method: 'POST', body: {} })).jobId }));
  const toggle = () =>
    act(async () => {
      const row = await api(`/api/jobs/schedules/${encodeURIComponent(job)}`, { method: 'PUT', body: { is_active: !schedule.is_active } });
      return row.is_active ? t('overview.active') : t('overview.paused');
    });

  return html`<article class="card job" aria-labelledby=${`job-${job}`} data-job=${job}>
    <header class="job-head">
      <h2 id=${`job-${job}`}>${job}</h2>
      <span class=${`pill ${schedule.is_active ? 'ok' : 'muted'}`}>${schedule.is_active ? t('overview.active') : t('overview.paused')}</span>
    </header>
    <dl>
      <dt>${t('overview.schedule')}</dt>
      <dd><span class="description">${schedule.description}</span> <code>${schedule.cron_expression}</code></dd>
      <dt>${t('overview.timezone')}</dt>
      <dd>${schedule.timezone}</dd>
      <dt>${t('overview.nextRuns')}</dt>
      <dd>
        ${schedule.is_active && preview
          ? html`<ol class="next-runs">${preview.runs.map((run) => html`<li><time datetime=${run.at}>${f.wallTime(run.at, schedule.timezone)}</time></li>`)}</ol>`
          : html`<span class="muted">${t('overview.noNextRuns')}</span>`}
      </dd>
      <dt>${t('overview.lastRun')}</dt>
      <dd class="last-run">
        ${latest
          ? html`<${RunStatus} status=${latest.status} /> <a href=${`#/runs/${latest.id}`}>#${latest.id}</a> · ${f.dateTime(latest.started_at)} · ${f.duration(latest.metadata?.duration_ms)}`
          : html`<span class="muted">${t('overview.never')}</span>`}
      </dd>
      <dt>${t('overview.spend')}</dt>
      <dd><${Spend} budget=${budget} /></dd>
      <dt>${t('overview.queue')}</dt>
      <dd class="queue-counts">${counts.created} / ${counts.active} / ${counts.retry}</dd>
    </dl>
    <div class="actions">
      <${WriteButton} class="primary" busy=${busy} onClick=${runNow}>${t('overview.runNow')}</${WriteButton}>
      <${WriteButton} busy=${busy} onClick=${toggle}>${schedule.is_active ? t('overview.pause') : t('overview.resume')}</${WriteButton}>
      <a class="button-link" href=${`#/schedule/${encodeURIComponent(job)}`}>${t('overview.edit')}</a>
    </div>
    ${message ? html`<p role="status" class=${message.ok ? 'note' : 'error'}>${message.text}</p>` : null}
  </article>`;
}

/** What the service said, with what the 409 and 429 answers add. */
function describeError(t, error) {
  if (error instanceof ApiError && error.status === 409 && error.body?.jobId) return t('overview.alreadyWaiting', { error: error.message, jobId: error.body.jobId });
  if (error instanceof ApiError && error.status === 429) return t('overview.rateLimited', { error: error.message });
  return error.message;
}
