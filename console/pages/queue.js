import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { useConsole, WriteButton } from '../context.js';
import { html } from '../html.js';
import { useAction, useLive } from '../live.js';
import { LiveNote } from '../parts.js';

const DEAD_LETTERS_SHOWN = 100;

export function Queue() {
  const { t, f } = useConsole();
  const [jobName, setJobName] = useState('');
  const live = useLive(async () => {
    const filter = jobName ? `jobName=${encodeURIComponent(jobName)}&` : '';
    const [schedules, queue, deadLetters] = await Promise.all([api('/api/jobs/schedules'), api(`/api/jobs/queue?${filter}limit=1000`), api(`/api/jobs/dead-letters?${filter}limit=${DEAD_LETTERS_SHOWN}`)]);
    return { jobs: schedules.map((s) => s.job_name), queue, deadLetters };
  }, [jobName]);

  const { message, act } = useAction(live.reload);
  const cancel = (run) => act(async () => (await api(`/api/jobs/runs/${run.job_id}/cancel`, { method: 'POST', body: {} })).message);
  const redrive = (letter) => act(async () => (await api(`/api/jobs/dead-letters/${letter.id}/retry`, { method: 'POST', body: {} })).message);
  /** Every dead letter shown, one after another: a job with a run already waiting refuses the rest (409), which is said, not hidden. */
  const redriveAll = () =>
    act(async () => {
      const outcomes = { sent: 0, refused: [] };
      for (const letter of live.data.deadLetters) {
        try {
          await api(`/api/jobs/dead-letters/${letter.id}/retry`, { method: 'POST', body: {} });
          outcomes.sent += 1;
        } catch (error) {
          outcomes.refused.push(`${letter.id.slice(0, 8)}: ${error.message}`);
        }
      }
      return t('queue.redrivenAll', { sent: outcomes.sent, refused: outcomes.refused.length }) + (outcomes.refused.length ? ` — ${outcomes.refused.join('; ')}` : '');
    });

  return html`<section aria-labelledby="queue-title">
    <div class="heading">
      <h1 id="queue-title">${t('queue.title')}</h1>
      <${LiveNote} live=${live} />
    </div>
    <form class="filters" onSubmit=${(e) => e.preventDefault()}>
      <label>${t('runs.job')}
        <select value=${jobName} onChange=${(e) => setJobName(e.currentTarget.value)}>
          <option value="">${t('runs.all')}</option>
          ${(live.data?.jobs ?? []).map((job) => html`<option value=${job}>${job}</option>`)}
        </select>
      </label>
    </form>
    ${message ? html`<p role="status" class=${message.ok ? 'note' : 'error'}>${message.text}</p>` : null}
    ${live.data
      ? html`<h2>${t('queue.waiting')}</h2>
          ${live.data.queue.length === 0
            ? html`<p class="muted">${t('queue.empty')}</p>`
            : html`<table class="table queue">
                <thead><tr><th scope="col">${t('runs.job')}</th><th scope="col">${t('queue.state')}</th><th scope="col">${t('runs.trigger')}</th><th scope="col">${t('queue.created')}</th><th scope="col">${t('queue.startAfter')}</th><th scope="col">${t('queue.retries')}</th><th scope="col">${t('queue.run')}</th><th scope="col"><span class="visually-hidden">${t('queue.actions')}</span></th></tr></thead>
                <tbody>
                  ${live.data.queue.map(
                    (run) => html`<tr key=${run.job_id} data-job-id=${run.job_id}>
                      <td>${run.job_name}</td><td>${t(`queue.state.${run.state}`)}</td><td>${run.trigger ?? '—'}</td>
                      <td>${f.dateTime(run.created_at)}</td><td>${f.dateTime(run.start_after)}</td><td>${run.retry_count} / ${run.retry_limit}</td>
                      <td>${run.log_id ? html`<a href=${`#/runs/${run.log_id}`}>#${run.log_id}</a>` : '—'}</td>
                      <td><${WriteButton} onClick=${() => cancel(run)} aria-label=${t('queue.cancelOne', { id: run.job_id })}>${t('queue.cancel')}</${WriteButton}></td>
                    </tr>`,
                  )}
                </tbody>
              </table>`}
          <div class="heading">
            <h2>${t('queue.deadLetters')}</h2>
            ${live.data.deadLetters.length > 0 ? html`<${WriteButton} onClick=${redriveAll}>${t('queue.redriveAll', { count: live.data.deadLetters.length })}</${WriteButton}>` : null}
          </div>
          ${live.data.deadLetters.length === 0
            ? html`<p class="muted">${t('queue.noDeadLetters')}</p>`
            : html`<table class="table dead-letters">
                <thead><tr><th scope="col">${t('runs.job')}</th><th scope="col">${t('queue.deadLettered')}</th><th scope="col">${t('queue.retries')}</th><th scope="col">${t('runs.error')}</th><th scope="col"><span class="visually-hidden">${t('queue.actions')}</span></th></tr></thead>
                <tbody>
                  ${live.data.deadLetters.map(
                    (letter) => html`<tr key=${letter.id} data-dead-letter=${letter.id}>
                      <td>${letter.job_name}</td><td>${f.dateTime(letter.created_at)}</td><td>${letter.retry_count}</td><td class="clip">${letter.error ?? ''}</td>
                      <td><${WriteButton} onClick=${() => redrive(letter)} aria-label=${t('queue.redriveOne', { id: letter.id })}>${t('queue.redrive')}</${WriteButton}></td>
                    </tr>`,
                  )}
                </tbody>
              </table>`}`
      : null}
  </section>`;
}
