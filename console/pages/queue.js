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
  const [errorText, setErrorText] = useState('');
  /** The dead letters' filter, as the list's query and the bulk send-back's body both take it. */
  const filter = { ...(jobName ? { jobName } : {}), ...(errorText ? { error: errorText } : {}) };
  const live = useLive(async () => {
    const query = (params) => new URLSearchParams(params).toString();
    const [schedules, queue, deadLetters] = await Promise.all([
      api('/api/jobs/schedules'),
      api(`/api/jobs/queue?${query({ ...(jobName ? { jobName } : {}), limit: 1000 })}`),
      api(`/api/jobs/dead-letters?${query({ ...filter, limit: DEAD_LETTERS_SHOWN })}`),
    ]);
    return { jobs: schedules.map((s) => s.job_name), queue, deadLetters };
  }, [jobName, errorText]);

  /** Per job, in the console's words: what was sent back as one run, and what was left and why. */
  const sentBack = (jobs) =>
    jobs.map((job) => (job.sent ? t('queue.sentBack', { job: job.jobName, count: job.settled.length + 1 }) : t('queue.leftBack', { job: job.jobName, count: job.left.length, reason: job.reason }))).join(' · ');
  const { message, act } = useAction(live.reload, (error) => (error.body?.jobs ? sentBack(error.body.jobs) : error.message));
  const cancel = (run) => act(async () => (await api(`/api/jobs/runs/${run.job_id}/cancel`, { method: 'POST', body: {} })).message);
  const redrive = (letter) => act(async () => (await api(`/api/jobs/dead-letters/${letter.id}/retry`, { method: 'POST', body: {} })).message);
  const redriveMatching = () => act(async () => sentBack((await api('/api/jobs/dead-letters/retry', { method: 'POST', body: filter })).jobs));
  const shown = live.data?.deadLetters.length ?? 0;

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
      <label>${t('queue.errorContains')}
        <input type="search" value=${errorText} onChange=${(e) => setErrorText(e.currentTarget.value.trim())} />
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
            ${shown > 0 ? html`<${WriteButton} onClick=${redriveMatching}>${t('queue.redriveMatching', { count: shown < DEAD_LETTERS_SHOWN ? shown : `${DEAD_LETTERS_SHOWN}+` })}</${WriteButton}>` : null}
          </div>
          ${shown > 0 ? html`<p class="muted">${t('queue.redriveMatchingHint')}</p>` : null}
          ${shown === 0
            ? html`<p class="muted">${t('queue.noDeadLetters')}</p>`
            : html`<table class="table dead-letters">
                <thead><tr><th scope="col">${t('runs.job')}</th><th scope="col">${t('queue.deadLettered')}</th><th scope="col">${t('queue.retries')}</th><th scope="col">${t('runs.error')}</th><th scope="col"><span class="visually-hidden">${t('queue.actions')}</span></th></tr></thead>
                <tbody>
                  ${live.data.deadLetters.map(
                    (letter) => html`<tr key=${letter.id} data-dead-letter=${letter.id}>
                      <td>${letter.job_name}</td><td>${f.dateTime(letter.created_at)}</td><td>${letter.retry_count}</td><td class="clip" title=${letter.error ?? ''}>${letter.error ?? ''}</td>
                      <td><${WriteButton} onClick=${() => redrive(letter)} aria-label=${t('queue.redriveOne', { id: letter.id })}>${t('queue.redrive')}</${WriteButton}></td>
                    </tr>`,
                  )}
                </tbody>
              </table>`}`
      : null}
  </section>`;
}
