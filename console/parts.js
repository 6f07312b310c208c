import { useConsole } from './context.js';
import { html } from './html.js';

/** A run's status as a coloured word (the word carries the meaning, the colour only helps). */
export function RunStatus({ status }) {
  const { t } = useConsole();
  const tone = { COMPLETED: 'ok', FAILED: 'bad', STARTED: 'busy' }[status] ?? 'muted';
  return html`<span class=${`pill ${tone}`} data-status=${status}>${t(`status.${status}`)}</span>`;
}

/** When the data on screen was fetched, whether updates are paused, and the last error. */
export function LiveNote({ live }) {
  const { t, f } = useConsole();
  return html`<p class="live muted" aria-live="polite">
    ${live.error ? html`<span class="error">${t('error.load', { error: live.error.message })}</span> ` : null}
    ${live.hidden ? t('live.paused') : live.at ? t('live.updated', { time: f.time(live.at) }) : '…'}
  </p>`;
}
