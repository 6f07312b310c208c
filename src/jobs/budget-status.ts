import type { Db } from '../db/client.ts';
import { spendTodayOf } from '../db/llm-spend.ts';
import type { JobScheduleRow } from '../db/schema.ts';

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

function statusOf(today: { day: string; spent_usd: number }, timezone: string, budget: number | null): BudgetStatus {
  const spent = round8(today.spent_usd);
  return { daily_budget_usd: budget, spent_today_usd: spent, remaining_usd: budget === null ? null : round8(Math.max(0, budget - spent)), day: today.day, timezone };
}

/** Each scheduled job's day (its schedule's zone), and every job's together in SCHEDULER_TIMEZONE (LLM_DAILY_BUDGET_USD); one statement. */
export async function budgetsToday(
  db: Db,
  schedules: Pick<JobScheduleRow, 'job_name' | 'timezone' | 'daily_budget_usd'>[],
  global: { dailyBudgetUsd: number | null; timezone: string },
): Promise<{ jobs: Record<string, BudgetStatus>; global: BudgetStatus }> {
  const spends = await spendTodayOf(db, [...schedules.map((row) => ({ jobName: row.job_name, timeZone: row.timezone })), { jobName: null, timeZone: global.timezone }]);
  return {
    jobs: Object.fromEntries(schedules.map((row, i) => [row.job_name, statusOf(spends[i]!, row.timezone, row.daily_budget_usd)])),
    global: statusOf(spends[schedules.length]!, global.timezone, global.dailyBudgetUsd),
  };
}
