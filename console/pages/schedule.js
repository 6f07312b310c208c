import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { useConsole, WriteButton } from '../context.js';
import { html } from '../html.js';
import { useLive } from '../live.js';
import { LiveNote } from '../parts.js';

const ZONES = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];

/** The server's own check of an expression not saved yet, as the operator types (debounced). */
function useCronPreview(cron, timezone) {
  const [preview, setPreview] = useState({ pending: true });
  useEffect(() => {
    setPreview({ pending: true });
    const controller = new AbortController();
    const timer = setTimeout(async () => {
      const query = new URLSearchParams({ cron_expression: cron, timezone, count: '5' });
      try {
        setPreview({ value: await api(`/api/cron/preview?${query}`) });
      } catch (error) {
        if (!controller.signal.aborted) setPreview({ error: error.message });
      }
    }, 250);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [cron, timezone]);
  return preview;
}

export function Schedule({ params: [job] }) {
  const { t } = useConsole();
  // Here, not in the form: a save reloads the schedule, and the form starts afresh from it.
  const [result, setResult] = useState(null);
  const live = useLive(async () => {
    const [schedule, history] = await Promise.all([api(`/api/jobs/schedules/${encodeURIComponent(job)}`), api(`/api/jobs/schedules/${encodeURIComponent(job)}/history?limit=50`)]);
    return { schedule, history };
  }, [job]);
  if (!live.data) return html`<${LiveNote} live=${live} />`;
  return html`<section aria-labelledby="schedule-title">
    <div class="heading">
      <h1 id="schedule-title">${t('schedule.title', { job })}</h1>
      <a href="#/overview">${t('schedule.back')}</a>
      <${LiveNote} live=${live} />
    </div>
    <${ScheduleForm} key=${live.data.schedule.updated_at} schedule=${live.data.schedule} onResult=${setResult} onSaved=${live.reload} />
    ${result ? html`<p role="status" class=${result.ok ? 'note' : 'error'}>${result.text}</p>` : null}
    <${History} changes=${live.data.history} />
  </section>`;
}

function ScheduleForm({ schedule, onResult: setResult, onSaved }) {
  const { t, f } = useConsole();
  const [form, setForm] = useState({
    cron_expression: schedule.cron_expression,
    timezone: schedule.timezone,
    missed_policy: schedule.missed_policy,
    budget: schedule.daily_budget_usd === null ? '' : String(schedule.daily_budget_usd),
  });
  const [busy, setBusy] = useState(false);
  const preview = useCronPreview(form.cron_expression, form.timezone);
  const set = (name) => (event) => setForm({ ...form, [name]: event.currentTarget.value });

  const save = async (event) => {
    event.preventDefault();
    setBusy(true);
    setResult(null);
    try {
      const budget = form.budget.trim() === '' ? null : Number(form.budget);
      await api(`/api/jobs/schedules/${encodeURIComponent(schedule.job_name)}`, {
        method: 'PUT',
        body: { cron_expression: form.cron_expression, timezone: form.timezone, missed_policy: form.missed_policy, daily_budget_usd: Number.isNaN(budget) ? form.budget : budget },
      });
      setResult({ ok: true, text: t('schedule.saved') });
      onSaved();
    } catch (error) {
      setResult({ ok: false, text: error.message });
    } finally {
      setBusy(false);
    }
  };

  return html`<form class="card form" onSubmit=${save}>
    <label for="cron">${t('schedule.cron')}</label>
    <input id="cron" value=${form.cron_expression} onInput=${set('cron_expression')} aria-describedby="cron-check" autocomplete="off" spellcheck="false" />
    <label for="timezone">${t('schedule.timezone')}</label>
    <input id="timezone" list="zones" value=${form.timezone} onInput=${set('timezone')} autocomplete="off" spellcheck="false" />
    <datalist id="zones">${ZONES.map((zone) => html`<option value=${zone} />`)}</datalist>
    <label for="missed">${t('schedule.missed')}</label>
    <select id="missed" value=${form.missed_policy} onChange=${set('missed_policy')}>
      <option value="skip">${t('schedule.missed.skip')}</option>
      <option value="once">${t('schedule.missed.once')}</option>
    </select>
    <label for="budget">${t('schedule.budget')}</label>
    <input id="budget" inputmode="decimal" value=${form.budget} onInput=${set('budget')} placeholder=${t('schedule.noBudget')} />
    <div id="cron-check" class="preview" aria-live="polite">
      ${preview.pending
        ? html`<span class="muted">…</span>`
        : preview.error
          ? html`<p class="error" data-testid="cron-error">${preview.error}</p>`
          : html`<p><strong class="description">${preview.value.description}</strong></p>
              <ol class="next-runs" aria-label=${t('overview.nextRuns')}>
                ${preview.value.runs.map((run) => html`<li><time datetime=${run.at}>${f.wallTime(run.at, form.timezone)}</time></li>`)}
              </ol>
              ${preview.value.truncated_note ? html`<p class="muted">${preview.value.truncated_note}</p>` : null}`}
    </div>
    <div class="actions">
      <${WriteButton} type="submit" class="primary" busy=${busy || Boolean(preview.error)} onClick=${undefined}>${t('schedule.save')}</${WriteButton}>
    </div>
  </form>`;
}

function History({ changes }) {
  const { t, f } = useConsole();
  const state = (s) => (s ? `${s.cron_expression} · ${s.timezone} · ${s.is_active ? t('overview.active') : t('overview.paused')} · ${s.missed_policy}${s.daily_budget_usd === null ? '' : ` · ${f.usd(s.daily_budget_usd)}`}` : '—');
  return html`<h2>${t('schedule.history')}</h2>
    <table class="table">
      <thead><tr><th scope="col">${t('schedule.when')}</th><th scope="col">${t('schedule.source')}</th><th scope="col">${t('schedule.before')}</th><th scope="col">${t('schedule.after')}</th></tr></thead>
      <tbody>
        ${changes.map((c) => html`<tr key=${c.id}><td>${f.dateTime(c.changed_at)}</td><td>${c.source}${c.actor ? ` (${c.actor})` : ''}</td><td>${state(c.before)}</td><td>${state(c.after)}</td></tr>`)}
      </tbody>
    </table>`;
}
