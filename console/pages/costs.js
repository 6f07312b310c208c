import { api } from '../api.js';
import { Chart, lastDays, pivot } from '../chart.js';
import { useConsole } from '../context.js';
import { html } from '../html.js';
import { useLive } from '../live.js';
import { LiveNote } from '../parts.js';

const DAYS = 14;

async function loadCosts() {
  const from = new Date(Date.now() - DAYS * 86_400_000).toISOString();
  const [usage, schedules, prompts] = await Promise.all([api(`/api/llm/usage?groupBy=day,job,model&from=${from}`), api('/api/jobs/schedules'), api('/api/llm/prompts')]);
  // The estimate route is absent when the service has no model settings; then there is no estimate.
  const estimates = await Promise.all(schedules.map((s) => api(`/api/jobs/${encodeURIComponent(s.job_name)}/estimate?all=true`).catch(() => null)));
  return { usage, prompts, estimates: estimates.filter(Boolean) };
}

export function Costs() {
  const { t, f } = useConsole();
  const live = useLive(loadCosts);
  if (!live.data) return html`<${LiveNote} live=${live} />`;
  const { usage, prompts, estimates } = live.data;
  // Days are each job's schedule zone (grouped by job); the chart's days are UTC's, near enough for an axis.
  const chartDays = lastDays(DAYS, 'UTC');
  const cost = pivot(usage.rows, { label: (r) => r.job_name, value: (r) => r.cost_usd ?? 0, days: chartDays });
  const tokens = pivot(usage.rows, { label: (r) => r.job_name, value: (r) => r.prompt_tokens + r.completion_tokens, days: chartDays });
  return html`<section aria-labelledby="costs-title">
    <div class="heading">
      <h1 id="costs-title">${t('costs.title')}</h1>
      <${LiveNote} live=${live} />
    </div>
    <p>${t('costs.total', { days: DAYS, cost: f.usd(usage.total.cost_usd ?? 0), calls: f.number(usage.total.calls), share: Math.round(usage.total.cached_share * 100) })}</p>
    <div class="charts">
      <${Chart} title=${t('costs.costPerDay')} days=${chartDays} series=${cost.series} format=${(v) => `$${Number(v.toPrecision(2))}`} />
      <${Chart} title=${t('costs.tokensPerDay')} days=${chartDays} series=${tokens.series} format=${(v) => f.number(v)} />
    </div>
    <h2>${t('costs.byDay')}</h2>
    <table class="table usage">
      <thead><tr><th scope="col">${t('costs.day')}</th><th scope="col">${t('runs.job')}</th><th scope="col">${t('costs.model')}</th><th scope="col">${t('costs.calls')}</th><th scope="col">${t('costs.prompt')}</th><th scope="col">${t('costs.cached')}</th><th scope="col">${t('costs.completion')}</th><th scope="col">${t('runs.cost')}</th></tr></thead>
      <tbody>
        ${usage.rows.map((r) => html`<tr><td>${r.day}</td><td>${r.job_name}</td><td>${r.model}</td><td>${f.number(r.calls)}</td><td>${f.number(r.prompt_tokens)}</td><td>${f.number(r.cached_prompt_tokens)}</td><td>${f.number(r.completion_tokens)}</td><td>${f.usd(r.cost_usd)}</td></tr>`)}
      </tbody>
    </table>
    ${usage.rows.length === 0 ? html`<p class="muted">${t('costs.none')}</p>` : null}
    <h2>${t('costs.backlog')}</h2>
    <table class="table estimates">
      <thead><tr><th scope="col">${t('runs.job')}</th><th scope="col">${t('costs.items')}</th><th scope="col">${t('costs.calls')}</th><th scope="col">${t('costs.cacheHits')}</th><th scope="col">${t('costs.prompt')}</th><th scope="col">${t('costs.completion')}</th><th scope="col">${t('runs.cost')}</th><th scope="col">${t('costs.basis')}</th></tr></thead>
      <tbody>
        ${estimates.map((e) => html`<tr data-estimate=${e.job_name}><td>${e.job_name}</td><td>${f.number(e.items)}</td><td>${f.number(e.llm_calls)}</td><td>${f.number(e.cache_hits)}</td><td>${f.number(e.prompt_tokens)}</td><td>${f.number(e.completion_tokens)}</td><td>${f.usd(e.cost_usd)}</td><td class="muted">${e.basis.completion_tokens}</td></tr>`)}
      </tbody>
    </table>
    <h2>${t('costs.prompts')}</h2>
    <table class="table prompts">
      <thead><tr><th scope="col">${t('costs.prompt')}</th><th scope="col">${t('runs.job')}</th><th scope="col">${t('costs.version')}</th><th scope="col">${t('costs.stale')}</th></tr></thead>
      <tbody>
        ${prompts.map((p) => html`<tr><td>${p.name}</td><td>${p.job}</td><td><code>${p.version}</code></td><td>${Object.entries(p.made_with_older).filter(([, n]) => n !== null).map(([kind, n]) => `${f.number(n)} ${t(`costs.kind.${kind}`)}`).join(' · ')}</td></tr>`)}
      </tbody>
    </table>
    <p class="muted">${t('costs.staleHow')}</p>
  </section>`;
}
