import type { Env } from '../env.ts';
import { ConfigurationError } from '../errors.ts';

/** What the check needs of a job (a JobDefinition has it); llm/ knows nothing of the jobs themselves. */
export type BudgetedJob = { name: string; usesLlm?: boolean; queue: { expireInSeconds?: number } };

export type LlmBudgetEnv = Pick<Env, 'OPENAI_TIMEOUT_SECONDS' | 'OPENAI_MAX_RETRIES' | 'OPENAI_RETRY_AFTER_MAX_SECONDS'>;

/** pg-boss's expiry when a queue sets none. */
const PG_BOSS_DEFAULT_EXPIRE_SECONDS = 15 * 60;

export class LlmBudgetError extends ConfigurationError {}

/** The longest one LLM call can take: every attempt timing out, every wait before a retry at its cap. */
export function worstLlmCallSeconds(env: LlmBudgetEnv): number {
  return (env.OPENAI_MAX_RETRIES + 1) * env.OPENAI_TIMEOUT_SECONDS + env.OPENAI_MAX_RETRIES * env.OPENAI_RETRY_AFTER_MAX_SECONDS;
}

/**
 * Time budgets nest: one LLM call (with its retries) must fit in half of every job's expiry, so
 * an item (a call and, after a bad answer, one re-ask) ends before the run is timed out.
 * Throws, naming the variables and the jobs, when it does not.
 */
export function checkLlmBudget(env: LlmBudgetEnv, jobs: Iterable<BudgetedJob>): void {
  const worst = worstLlmCallSeconds(env);
  const tooShort = [...jobs]
    // A job that never calls the model has no LLM call to fit.
    .filter((job) => job.usesLlm)
    .map((job) => ({ name: job.name, expire: job.queue.expireInSeconds ?? PG_BOSS_DEFAULT_EXPIRE_SECONDS }))
    .filter(({ expire }) => worst > expire / 2);
  if (tooShort.length === 0) return;
  const { OPENAI_MAX_RETRIES: retries, OPENAI_TIMEOUT_SECONDS: timeout, OPENAI_RETRY_AFTER_MAX_SECONDS: cap } = env;
  const jobsText = tooShort.map(({ name, expire }) => `${name} (expireInSeconds ${expire} s, so at most ${expire / 2} s)`).join(', ');
  throw new LlmBudgetError(
    `one LLM call may take up to ${worst} s ((OPENAI_MAX_RETRIES ${retries} + 1) × OPENAI_TIMEOUT_SECONDS ${timeout} + ` +
      `OPENAI_MAX_RETRIES ${retries} × OPENAI_RETRY_AFTER_MAX_SECONDS ${cap}), more than half of the expiry of job${tooShort.length > 1 ? 's' : ''} ${jobsText}: ` +
      'lower OPENAI_TIMEOUT_SECONDS, OPENAI_MAX_RETRIES or OPENAI_RETRY_AFTER_MAX_SECONDS',
    ['OPENAI_TIMEOUT_SECONDS', 'OPENAI_MAX_RETRIES', 'OPENAI_RETRY_AFTER_MAX_SECONDS'],
  );
}
