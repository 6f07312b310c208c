import type { Db } from '../db/client.ts';
import type { JobDefinition, JobSettings } from '../jobs/job.ts';
import { createSpendBudget, NO_BUDGET, type BudgetLimit, type SpendBudget } from '../jobs/spend-budget.ts';
import { scheduleOf } from './schedules.ts';

/**
 * The budgets a run of `def` works under: its schedule's daily_budget_usd (in the schedule's zone)
 * and LLM_DAILY_BUDGET_USD (in SCHEDULER_TIMEZONE). A job that never calls the model has none and
 * costs no query; an LLM job reads its schedule row once per run, and per item only with a budget.
 */
export async function runBudget(db: Db, def: JobDefinition, settings: JobSettings, flush: () => Promise<void>): Promise<SpendBudget> {
  if (!def.usesLlm) return NO_BUDGET;
  const limits: BudgetLimit[] = [];
  const row = await scheduleOf(db, def.name);
  if (row?.daily_budget_usd != null) limits.push({ scope: 'job', daily_budget_usd: row.daily_budget_usd, timezone: row.timezone });
  if (settings.globalDailyBudgetUsd !== undefined) {
    limits.push({ scope: 'global', daily_budget_usd: settings.globalDailyBudgetUsd, timezone: settings.globalBudgetTimeZone ?? 'UTC' });
  }
  return createSpendBudget({ db, jobName: def.name, limits, flush });
}

/** The event a budget-stopped run's ending tells, from its log's metadata; null for any other run. */
export function budgetEventOf(event: { job: string; jobId: string; logId: number }, metadata: Record<string, unknown>) {
  if (metadata.budget_exhausted !== true) return null;
  const budget = metadata.budget as { scope: 'job' | 'global'; daily_budget_usd: number; spent_today_usd: number; day: string };
  return { job: event.job, jobId: event.jobId, logId: event.logId, scope: budget.scope, dailyBudgetUsd: budget.daily_budget_usd, spentTodayUsd: budget.spent_today_usd, day: budget.day };
}
