import { desc, eq, sql } from 'drizzle-orm';
import type { Db, Tx } from './client.ts';
import { jobScheduleChanges, type JobScheduleChangeRow, type JobScheduleRow, type ScheduleChangeSource, type ScheduleState } from './schema.ts';

/** The statements of job_schedule_changes: every change to a schedule, where it came from and who made it. */

/** A transaction of `Db`, for statements that must commit with the caller's. */
type Executor = Db | Tx;

export type ScheduleChange = { job_name: string; before: ScheduleState | null; after: ScheduleState; source: ScheduleChangeSource; actor?: string | null };

/** The part of a row its history records. */
export const stateOf = (row: Pick<JobScheduleRow, 'cron_expression' | 'timezone' | 'is_active' | 'missed_policy' | 'daily_budget_usd'>): ScheduleState => ({
  cron_expression: row.cron_expression,
  timezone: row.timezone,
  is_active: row.is_active,
  missed_policy: row.missed_policy,
  daily_budget_usd: row.daily_budget_usd,
});

/** The part pg-boss holds: the rest (the budget) is the service's own. */
export const sameTiming = (a: Omit<ScheduleState, 'daily_budget_usd'>, b: Omit<ScheduleState, 'daily_budget_usd'>): boolean =>
  a.cron_expression === b.cron_expression && a.timezone === b.timezone && a.is_active === b.is_active && a.missed_policy === b.missed_policy;

export const sameState = (a: ScheduleState, b: ScheduleState): boolean => sameTiming(a, b) && a.daily_budget_usd === b.daily_budget_usd;

/** A state as stored: one recorded before budgets existed has no daily_budget_usd. */
const read = (state: ScheduleState): ScheduleState => ({ ...state, daily_budget_usd: state.daily_budget_usd ?? null });

/**
 * Records changes, in the caller's transaction when given one. changed_at is the clock at the insert,
 * not the transaction's start (the column default): the insert comes after the row lock, so a job's
 * changes are in the order they were made even when a transaction that began earlier waited for it.
 */
export async function recordScheduleChanges(db: Executor, changes: ScheduleChange[]): Promise<void> {
  if (changes.length === 0) return;
  await db.insert(jobScheduleChanges).values(changes.map((change) => ({ ...change, actor: change.actor ?? null, changed_at: sql`clock_timestamp()` })));
}

/** What the job's latest recorded change left it as, or null when nothing was ever recorded. */
export async function latestScheduleState(db: Executor, jobName: string): Promise<ScheduleState | null> {
  const [row] = await db
    .select({ after: jobScheduleChanges.after })
    .from(jobScheduleChanges)
    .where(eq(jobScheduleChanges.job_name, jobName))
    .orderBy(desc(jobScheduleChanges.changed_at), desc(jobScheduleChanges.id))
    .limit(1);
  return row ? read(row.after) : null;
}

/** A page of one job's changes, newest first (reads job_schedule_changes_job_changed_idx). */
export async function listScheduleChanges(db: Db, jobName: string, { limit, offset }: { limit: number; offset: number }): Promise<JobScheduleChangeRow[]> {
  const rows = await db
    .select()
    .from(jobScheduleChanges)
    .where(eq(jobScheduleChanges.job_name, jobName))
    .orderBy(desc(jobScheduleChanges.changed_at), desc(jobScheduleChanges.id))
    .limit(limit)
    .offset(offset);
  return rows.map((row) => ({ ...row, before: row.before && read(row.before), after: read(row.after) }));
}
