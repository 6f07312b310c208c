import type { ScheduleSpend } from '../db/llm-spend.ts';

/** Today's LLM spend against a daily budget, as GET /api/jobs/status shows it. */
export type BudgetStatus = {
  /** null: no budget (the spend is still shown). */
  daily_budget_usd: number | null;
  spent_today_usd: number;
  /** What is left today, never below 0; null without a budget. */
  remaining_usd: number | null;
  /** The local day the spend is of, YYYY-MM-DD. */
  day: string;
  timezone: string;
};

const round8 = (usd: number) => Math.round(usd * 1e8) / 1e8;

function statusOf({ daily_budget_usd: budget, spent_usd, day, timezone }: { daily_budget_usd: number | null; spent_usd: number; day: string; timezone: string }): BudgetStatus {
  const spent = round8(spent_usd);
  return { daily_budget_usd: budget, spent_today_usd: spent, remaining_usd: budget === null ? null : round8(Math.max(0, budget - spent)), day, timezone };
}

/** Each scheduled job's budget (its schedule's zone), and every job's together in SCHEDULER_TIMEZONE (LLM_DAILY_BUDGET_USD). */
export function budgetsOf(spends: ScheduleSpend[], globalDailyBudgetUsd: number | null): { jobs: Record<string, BudgetStatus>; global: BudgetStatus } {
  const all = spends.find((row) => row.job_name === null)!;
  return {
    jobs: Object.fromEntries(spends.filter((row) => row.job_name !== null).map((row) => [row.job_name, statusOf(row)])),
    global: statusOf({ ...all, daily_budget_usd: globalDailyBudgetUsd }),
  };
}
