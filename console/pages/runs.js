import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { useConsole, WriteButton } from '../context.js';
import { Chart, lastDays, pivot } from '../chart.js';
import { html } from '../html.js';
import { useAction, useLive } from '../live.js';
import { LiveNote, RunStatus } from '../parts.js';

const PAGE_SIZE = 50;
const STATUSES = ['STARTED', 'COMPLETED', 'FAILED'];
const TRIGGERS = ['cron', 'manual', 'cli'];

/** Filters live in the hash ("#/runs?status=FAILED"), so a filtered list can be linked and survives a reload. */
function readFilters(query) {
  return { jobName: query.get('jobName') ?? '', status: query.get('status') ?? '', trigger: query.get('trigger') ?? '' };
}
function writeFilters(filters) {
  const query = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
  location.hash = `#/runs${query.size ? `?${query}` : ''}`;
}

export function Runs({ params, query }) {
  return params[0] ? html`<${RunDetail} id=${params[0]} />` : html`<${RunList} query=${query} />`;
}

function RunList({ query: hashQuery }) {
  const { t, f } = useConsole();
  const filters = readFilters(hashQuery);
  // The cursors of the pages before this one: "newer" pops one, "older" pushes the last row's id.
  const [cursors, setCursors] = useState([]);
  const before = cursors.at(-1);
  const query = new URLSearchParams(Object.entries({ ...filters, limit: String(PAGE_SIZE), ...(before ? { before: String(before) } : {}) }).filter(([, v]) => v));
  const live = useLive(async () => {
    const [schedules, rows] = await Promise.all([api('/api/jobs/schedules'), api(`/api/jobs/logs?${query}`)]);
    return { jobs: schedules.map((s) => s.job_name), rows };
  }, [query.toString()]);
  const change = (name) => (event) => {
    setCursors([]);
    writeFilters({ ...filters, [name]: event.currentTarget.value });
  };

  return html`<section aria-labelledby="runs-title">
    <div class="heading">
      <h1 id="runs-title">${t('runs.title')}</h1>
      <${LiveNote} live=${live} />
    </div>
    <form class="filters" onSubmit=${(e) => e.preventDefault()}>
      <label>${t('runs.job')}
        <select value=${filters.jobName} onChange=${change('jobName')}>
          <option value="">${t('runs.all')}</option>
          ${(live.data?.jobs ?? []).map((job) => html`<option value=${job}>${job}</option>`)}
        </select>
      </label>
      <label>${t('runs.status')}
        <select value=${filters.status} onChange=${change('status')}>
          <option value="">${t('runs.all')}</option>
          ${STATUSES.map((s) => html`<option value=${s}>${t(`status.${s}`)}</option>`)}
        </select>
      </label>
      <label>${t('runs.trigger')}
        <select value=${filters.trigger} onChange=${change('trigger')}>
          <option value="">${t('runs.all')}</option>
          ${TRIGGERS.map((s) => html`<option value=${s}>${s}</option>`)}
        </select>
      </label>
    </form>
    <${RunCharts} jobName=${filters.jobName} />
    ${live.data
      ? html`<table class="table runs">
            <thead><tr>
              <th scope="col">#</th><th scope="col">${t('runs.job')}</th><th scope="col">${t('runs.status')}</th><th scope="col">${t('runs.trigger')}</th>
              <th scope="col">${t('runs.started')}</th><th scope="col">${t('runs.duration')}</th><th scope="col">${t('runs.items')}</th><th scope="col">${t('runs.error')}</th>
            </tr></thead>
            <tbody>
              ${live.data.rows.map(
                (run) => html`<tr key=${run.id} data-run=${run.id}>
                  <td><a href=${`#/runs/${run.id}`}>#${run.id}</a></td>
                  <td>${run.job_name}</td>
                  <td><${RunStatus} status=${run.status} /></td>
                  <td>${run.metadata?.trigger ?? '—'}</td>
                  <td>${f.dateTime(run.started_at)}</td>
                  <td>${f.duration(run.metadata?.duration_ms)}</td>
                  <td>${run.items_processed} / ${run.items_failed}</td>
                  <td class="clip">${run.error_message ?? ''}</td>
                </tr>`,
              )}
            </tbody>
          </table>
          ${live.data.rows.length === 0 ? html`<p class="muted">${t('runs.none')}</p>` : null}
          <nav class="pager" aria-label=${t('runs.pages')}>
            <button type="button" disabled=${cursors.length === 0} onClick=${() => setCursors(cursors.slice(0, -1))}>${t('runs.newer')}</button>
            <button type="button" disabled=${live.data.rows.length < PAGE_SIZE} onClick=${() => setCursors([...cursors, live.data.rows.at(-1).id])}>${t('runs.older')}</button>
          </nav>`
      : null}
  </section>`;
}

function RunDetail({ id }) {
  const { t, f } = useConsole();
  const live = useLive(async () => {
    const run = await api(`/api/jobs/logs/${encodeURIComponent(id)}`);
    const queued = run.job_id ? (await api(`/api/jobs/queue?jobName=${encodeURIComponent(run.job_name)}&limit=1000`)).find((j) => j.job_id === run.job_id) : undefined;
    return { run, queued };
  }, [id]);
  const { message, act } = useAction(live.reload);
  if (!live.data) return html`<${LiveNote} live=${live} />`;
  const { run, queued } = live.data;
  const m = run.metadata ?? {};
  const cancel = () => act(async () => (await api(`/api/jobs/runs/${run.job_id}/cancel`, { method: 'POST', body: {} })).message);
  const rows = [
    [t('runs.job'), run.job_name],
    [t('runs.status'), html`<${RunStatus} status=${run.status} />`],
    [t('runs.trigger'), m.trigger ?? '—'],
    [t('runs.attempt'), m.attempt ?? '—'],
    [t('runs.started'), f.dateTime(run.started_at)],
    [t('runs.ended'), f.dateTime(run.ended_at)],
    [t('runs.duration'), f.duration(m.duration_ms)],
    [t('runs.items'), `${run.items_processed} / ${run.items_failed}`],
    [t('runs.worker'), m.worker ?? '—'],
    [t('runs.bossJob'), run.job_id ? html`<code>${run.job_id}</code>${queued ? ` (${queued.state})` : ''}` : '—'],
    [t('runs.fate'), [m.will_retry ? t('runs.willRetry') : null, m.dead_lettered ? t('runs.deadLettered') : null, m.sent_back_as ? t('runs.sentBackAs', { jobId: m.sent_back_as }) : null, m.cancelled ? t('runs.cancelled') : null, m.budget_exhausted ? t('runs.budgetExhausted') : null].filter(Boolean).join(' · ') || '—'],
    ...(m.llm ? [[t('runs.tokens'), `${f.number(m.llm.prompt_tokens)} + ${f.number(m.llm.completion_tokens)} (${f.number(m.llm.cached_prompt_tokens ?? 0)} ${t('runs.cached')}) · ${m.llm.calls} ${t('runs.calls')}`], [t('runs.cost'), f.usd(m.llm.cost_usd)]] : []),
    ...(m.occurrence ? [[t('runs.occurrence'), `${f.dateTime(m.occurrence)}${m.catch_up ? ` (${t('runs.catchUp')})` : ''}`]] : []),
  ];
  // Running, or its job waiting (to start or to retry): pg-boss can still cancel it.
  const cancellable = run.status === 'STARTED' || Boolean(queued);
  return html`<section aria-labelledby="run-title">
    <div class="heading">
      <h1 id="run-title">${t('runs.detail', { id: run.id })}</h1>
      <a href="#/runs">${t('runs.back')}</a>
      <${LiveNote} live=${live} />
    </div>
    <div class="card">
      <dl>${rows.map(([label, value]) => html`<dt>${label}</dt><dd>${value}</dd>`)}</dl>
      ${run.error_message ? html`<p class="error run-error">${run.error_message}</p>` : null}
      ${cancellable && run.job_id ? html`<div class="actions"><${WriteButton} onClick=${cancel}>${t('runs.cancel')}</${WriteButton}></div>` : null}
      ${message ? html`<p role="status" class=${message.ok ? 'note' : 'error'}>${message.text}</p>` : null}
    </div>
    ${m.failures?.length
      ? html`<h2>${t('runs.failures', { shown: m.failures.length, total: m.failures_total ?? m.failures.length })}</h2>
          <table class="table">
            <thead><tr><th scope="col">${t('runs.item')}</th><th scope="col">${t('runs.reason')}</th></tr></thead>
            <tbody>${m.failures.map((fail) => html`<tr><td>${itemName(fail.item)}</td><td>${fail.reason}</td></tr>`)}</tbody>
          </table>`
      : null}
  </section>`;
}

const itemName = (item) => (item?.harvest_item_id !== undefined ? `harvest item ${item.harvest_item_id}` : item?.blueprint_id !== undefined ? `blueprint ${item.blueprint_id} · ${item.topic_code}` : JSON.stringify(item));

const CHART_DAYS = 14;

/** The last two weeks of runs (GET /api/jobs/stats): per day by status, duration p50/p95 per job, items. */
function RunCharts({ jobName }) {
  const { t, f } = useConsole();
  const live = useLive(() => api(`/api/jobs/stats?from=${new Date(Date.now() - CHART_DAYS * 86_400_000).toISOString()}${jobName ? `&job=${encodeURIComponent(jobName)}` : ''}`), [jobName]);
  if (!live.data) return null;
  const rows = live.data.days;
  const days = lastDays(CHART_DAYS, live.data.timezone);
  const perDay = (label, value) => ({ label, values: days.map((day) => rows.filter((r) => r.day === day).reduce((sum, r) => sum + value(r), 0)) });
  const byStatus = ['COMPLETED', 'FAILED', 'STARTED'].map((status) => perDay(t(`status.${status}`), (r) => r.runs[status.toLowerCase()]));
  const p50 = pivot(rows, { label: (r) => `${r.job_name} p50`, value: (r) => r.duration_ms.p50, days });
  const p95 = pivot(rows, { label: (r) => `${r.job_name} p95`, value: (r) => r.duration_ms.p95, days });
  const items = [perDay(t('runs.itemsDone'), (r) => r.items_processed), perDay(t('runs.itemsFailed'), (r) => r.items_failed)];
  return html`<div class="charts" aria-label=${t('runs.charts', { days: CHART_DAYS, zone: live.data.timezone })}>
    <${Chart} title=${t('runs.perDay', { zone: live.data.timezone })} days=${days} series=${byStatus} format=${(v) => f.number(v)} />
    <${Chart} title=${t('runs.durations')} days=${days} series=${[...p50.series, ...p95.series]} format=${(v) => f.duration(v)} />
    <${Chart} title=${t('runs.itemsPerDay')} days=${days} series=${items} format=${(v) => f.number(v)} />
  </div>`;
}
