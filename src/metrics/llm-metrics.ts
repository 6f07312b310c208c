import type { Registry } from 'prom-client';
import type { SchedulerEventMap, SchedulerEvents } from '../events.ts';
import type { Registry as JobRegistry } from '../jobs/registry.ts';
import { counter, histogram } from './families.ts';

type Outcome = SchedulerEventMap['llm:call']['outcome'];
const OUTCOMES: readonly Outcome[] = ['ok', 'bad_output', 'transient', 'rejected', 'unavailable', 'aborted'];

/** 100 ms … 2 min: one HTTP attempt to the model, a quick answer to a slow structured one. */
export const LLM_CALL_DURATION_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120];

/** The `job` label of a call made outside a run. */
export const NO_JOB = 'none';

/**
 * Every HTTP attempt to the model this instance made (`llm:call`): retries and re-asks count as
 * attempts of their own. `cached` tokens are part of `prompt` (OpenAI's accounting): do not add
 * them up. With `model`, each LLM job's series exist at 0 from the start.
 * Returns the function that unsubscribes.
 */
export function registerLlmMetrics(registry: Registry, { events, jobs, model }: { events: SchedulerEvents; jobs: JobRegistry; model?: string }): () => void {
  const calls = counter(registry, 'scheduler_llm_calls_total', 'HTTP attempts to the model by job, model and outcome (ok|bad_output|transient|rejected|unavailable|aborted).', ['job_name', 'model', 'outcome']);
  const tokens = counter(registry, 'scheduler_llm_tokens_total', 'Tokens the model reported, by job, model and kind (prompt|completion|cached; cached is part of prompt).', ['job_name', 'model', 'kind']);
  const duration = histogram(registry, 'scheduler_llm_call_duration_seconds', 'How long each HTTP attempt to the model took, whatever its outcome.', ['model'], LLM_CALL_DURATION_BUCKETS);

  if (model) {
    duration.zero({ model });
    for (const job of [...jobs.values()].filter((j) => j.usesLlm).map((j) => j.name)) {
      for (const outcome of OUTCOMES) calls.inc({ job_name: job, model, outcome }, 0);
      for (const kind of ['prompt', 'completion', 'cached']) tokens.inc({ job_name: job, model, kind }, 0);
    }
  }

  return events.on('llm:call', (call) => {
    const labels = { job_name: call.job ?? NO_JOB, model: call.model };
    calls.inc({ ...labels, outcome: call.outcome });
    if (call.promptTokens > 0) tokens.inc({ ...labels, kind: 'prompt' }, call.promptTokens);
    if (call.completionTokens > 0) tokens.inc({ ...labels, kind: 'completion' }, call.completionTokens);
    if (call.cachedTokens > 0) tokens.inc({ ...labels, kind: 'cached' }, call.cachedTokens);
    duration.observe({ model: call.model }, call.latencyMs / 1000);
  });
}
