import { eq, sql } from 'drizzle-orm';
import { fromDrizzle, type Db as IDatabase, type PgBoss, type Schedule } from 'pg-boss';
import type { Db, Tx } from '../db/client.ts';
import { jobSchedule, type JobScheduleRow, type MissedPolicy, type ScheduleState } from '../db/schema.ts';
import { latestScheduleState, recordScheduleChanges, sameState, sameTiming, stateOf, type ScheduleChange } from '../db/schedule-changes.ts';
import type { SchedulerEvents } from '../events.ts';
import type { Logger } from '../logger.ts';
import { cronProblem, nextOccurrence, parserCron, timeZoneProblem } from './cron.ts';
import type { CronPayload } from '../jobs/job.ts';
import type { Registry } from '../jobs/registry.ts';

/**
 * job_schedule is the source of truth; this module keeps pg-boss's schedules equal to it.
 * Every function here is idempotent, so several instances can run them at once.
 */

export type SchedulesDeps = {
  db: Db;
  boss: PgBoss;
  registry: Registry;
  defaultTimeZone: string;
  logger: Logger;
  /** Told of every schedule pg-boss takes on (`schedule:changed`); none by default. */
  events?: SchedulerEvents;
};

const changed = (row: Schedulable, source: 'api' | 'table') => ({ job: row.job_name, source, cron: row.cron_expression, timezone: row.timezone, active: row.is_active });

export type SchedulePatch = { cron_expression?: string; is_active?: boolean; timezone?: string; missed_policy?: MissedPolicy; daily_budget_usd?: number | null };

type Schedulable = Pick<JobScheduleRow, 'job_name' | 'cron_expression' | 'timezone' | 'is_active' | 'missed_policy'>;

export class ScheduleInputError extends Error {}

/** Who made an API change: the role of the bearer token (`api_token`), or `none` when the API runs without auth. */
export type ScheduleActor = 'api_token' | 'none';

// The payload carries the expression pg-boss holds (parserCron), which is what the runner reads occurrences of.
const cronPayload = (row: Schedulable): CronPayload => ({ trigger: 'cron', cron: parserCron(row.cron_expression), tz: row.timezone, scheduled_since: new Date().toISOString() });

/** Whether pg-boss already holds exactly what the row says. */
function bossAgrees(current: Schedule | null, row: Omit<Schedulable, 'job_name'>): boolean {
  if (!row.is_active) return current === null;
  return current !== null && current.cron === parserCron(row.cron_expression) && current.timezone === row.timezone && (current.options?.missed ?? 'skip') === row.missed_policy;
}

/** Writes the row into pg-boss through `db`, the caller's transaction. */
async function applyToBoss(boss: PgBoss, row: Schedulable, db: IDatabase): Promise<void> {
  if (row.is_active) {
    await boss.schedule(row.job_name, parserCron(row.cron_expression), cronPayload(row), { tz: row.timezone, missed: row.missed_policy, db });
  } else {
    await boss.unschedule(row.job_name, undefined, { db });
  }
}

/** Why a row's cron or time zone cannot be scheduled, or null. */
function scheduleProblem(row: Pick<JobScheduleRow, 'cron_expression' | 'timezone'>): string | null {
  return cronProblem(row.cron_expression) ?? timeZoneProblem(row.timezone);
}

export function nextRunAt(row: Pick<JobScheduleRow, 'cron_expression' | 'timezone' | 'is_active'>, from = new Date()): Date | null {
  if (!row.is_active || scheduleProblem(row)) return null;
  return nextOccurrence(row.cron_expression, row.timezone, from);
}

/** Every schedule row, by id. */
export function listSchedules(db: Db): Promise<JobScheduleRow[]> {
  return db.select().from(jobSchedule).orderBy(jobSchedule.id);
}

/** One job's schedule row, or null. */
export async function scheduleOf(db: Db, jobName: string): Promise<JobScheduleRow | null> {
  const [row] = await db.select().from(jobSchedule).where(eq(jobSchedule.job_name, jobName));
  return row ?? null;
}

/**
 * Inserts the registry's default rows that are missing; existing rows are never touched. Each row
 * inserted is recorded as a `seed` change (instances starting together record it once: only the
 * insert that wins returns it).
 */
export async function seedSchedules({ db, registry, defaultTimeZone }: SchedulesDeps): Promise<void> {
  const rows = [...registry.values()].map((job) => {
    const row = { job_name: job.name, cron_expression: job.defaultCron, timezone: defaultTimeZone, is_active: true };
    return { ...row, next_run_at: nextRunAt(row) };
  });
  await db.transaction(async (tx) => {
    const inserted = await tx.insert(jobSchedule).values(rows).onConflictDoNothing({ target: jobSchedule.job_name }).returning();
    await recordScheduleChanges(tx, inserted.map((row) => ({ job_name: row.job_name, before: null, after: stateOf(row), source: 'seed' })));
  });
}

/** What pg-boss holds for a job, as a schedule state; null when it holds none and no history says what was paused. */
function heldState(held: Schedule | null, recorded: ScheduleState | null): ScheduleState | null {
  // The recorded state when pg-boss agrees with it: it keeps the spelling (`@midnight`) and, for a paused job, the cron.
  if (recorded && bossAgrees(held, recorded)) return recorded;
  if (!held) return null;
  // pg-boss holds no budget: the recorded one is what it was.
  const missed_policy = held.options?.missed === 'once' ? 'once' : 'skip';
  return { cron_expression: held.cron, timezone: held.timezone ?? 'UTC', is_active: true, missed_policy, daily_budget_usd: recorded?.daily_budget_usd ?? null };
}

/**
 * A direct edit of job_schedule not yet in the history: the row is valid and differs from the latest
 * recorded state. Changes already recorded (the API's, the seed's) are not recorded again when the
 * sync hands them to pg-boss. `held` is what pg-boss holds, the change's `before`.
 */
async function tableEdit(tx: Tx, row: JobScheduleRow, held: Schedule | null): Promise<ScheduleChange | null> {
  if (scheduleProblem(row)) return null;
  const recorded = await latestScheduleState(tx, row.job_name);
  if (recorded && sameState(recorded, stateOf(row))) return null;
  return { job_name: row.job_name, before: heldState(held, recorded), after: stateOf(row), source: 'table' };
}

export type ScheduleSync = {
  /**
   * Makes pg-boss match the table: schedules active rows, unschedules inactive and unknown ones,
   * and refreshes next_run_at. Returns the rows and what changed in pg-boss, for the caller to log.
   */
  reconcile(): Promise<{ rows: JobScheduleRow[]; scheduled: string[]; unscheduled: string[] }>;
};

/** One per service: it remembers which bad rows it has reported, so each is logged once, not every pass. */
export function createScheduleSync(deps: SchedulesDeps): ScheduleSync {
  const reported = new Set<string>();
  const report: Report = (key, fields, message) => {
    if (reported.has(key)) return;
    reported.add(key);
    deps.logger.error(fields, message);
  };
  return { reconcile: () => reconcileSchedules(deps, report) };
}

type Report = (key: string, fields: object, message: string) => void;

async function reconcileSchedules(deps: SchedulesDeps, report: Report): Promise<{ rows: JobScheduleRow[]; scheduled: string[]; unscheduled: string[] }> {
  const { db, boss, registry, logger } = deps;
  const rows = await listSchedules(db);
  const scheduled: string[] = [];
  const unscheduled: string[] = [];

  for (const row of rows) {
    if (!registry.has(row.job_name)) {
      report(`${row.job_name}:unknown`, { job: row.job_name }, 'job_schedule row names no registered job; ignored');
      continue;
    }
    const change = await syncRow(deps, row.job_name, report);
    if (change === 'scheduled') scheduled.push(row.job_name);
    if (change === 'unscheduled') unscheduled.push(row.job_name);
  }

  // We own exactly one schedule per known job, under pg-boss's default key ''; anything else goes.
  const known = new Set(rows.filter((r) => registry.has(r.job_name)).map((r) => r.job_name));
  for (const { name, key } of await boss.getSchedules()) {
    if (known.has(name) && key === '') continue;
    await boss.unschedule(name, key);
    unscheduled.push(key ? `${name} (key ${key})` : name);
    logger.warn({ job: name, key }, `removed pg-boss schedule ${name}${key ? ` (key ${key})` : ''}: not in job_schedule`);
  }
  return { rows, scheduled, unscheduled };
}

/**
 * Brings pg-boss in line with one row. The row is locked and pg-boss read after the lock, so an API
 * edit committing meanwhile is seen, never overwritten with the value read before it.
 */
async function syncRow(deps: SchedulesDeps, jobName: string, report: Report): Promise<'scheduled' | 'unscheduled' | null> {
  const { db, boss } = deps;
  const applied = await db.transaction(async (tx) => {
    const [row] = await tx.select().from(jobSchedule).where(eq(jobSchedule.job_name, jobName)).for('update');
    if (!row) return null;
    const problem = scheduleProblem(row);
    if (problem) {
      report(`${row.job_name}:${row.cron_expression}:${row.timezone}`, { job: row.job_name }, `job_schedule row is invalid, pg-boss keeps its previous schedule: ${problem}`);
      return null;
    }
    const next = nextRunAt(row);
    if (next?.getTime() !== row.next_run_at?.getTime()) {
      await tx.update(jobSchedule).set({ next_run_at: next }).where(eq(jobSchedule.id, row.id));
    }
    const held = await boss.getSchedule(jobName);
    if (bossAgrees(held, row)) return null;
    const change = await tableEdit(tx, row, held);
    await applyToBoss(boss, row, fromDrizzle(tx, sql));
    if (change) await recordScheduleChanges(tx, [change]);
    return row;
  });
  if (!applied) return null;
  // After the commit: pg-boss holds it now.
  deps.events?.emit('schedule:changed', changed(applied, 'table'));
  return applied.is_active ? 'scheduled' : 'unscheduled';
}

/**
 * Applies an edit made through the API. The row, pg-boss and the history change in one transaction,
 * so they never disagree after a response. An edit that changes nothing touches nothing (no history);
 * one of the budget alone is recorded but leaves pg-boss as it is.
 * A direct table edit the sync has not picked up yet is recorded first, so the history has no gap.
 */
export async function updateSchedule(deps: Pick<SchedulesDeps, 'db' | 'boss' | 'logger' | 'events'>, jobName: string, patch: SchedulePatch, actor: ScheduleActor): Promise<JobScheduleRow> {
  const { db, boss, logger } = deps;
  // What the committed edit changed: pg-boss's part (cron, zone, active, missed) and the budget.
  let timing = false;
  let budget = false;
  const row = await db.transaction(async (tx) => {
    const [current] = await tx.select().from(jobSchedule).where(eq(jobSchedule.job_name, jobName)).for('update');
    if (!current) throw new ScheduleInputError(`no schedule for job "${jobName}"`);
    const next = {
      cron_expression: patch.cron_expression?.trim() ?? current.cron_expression,
      timezone: patch.timezone ?? current.timezone,
      is_active: patch.is_active ?? current.is_active,
      missed_policy: patch.missed_policy ?? current.missed_policy,
      daily_budget_usd: patch.daily_budget_usd === undefined ? current.daily_budget_usd : roundUsd(patch.daily_budget_usd),
    };
    const problem = scheduleProblem(next);
    if (problem) throw new ScheduleInputError(problem);
    if (sameState(next, stateOf(current))) return current;

    const pending = await tableEdit(tx, current, await boss.getSchedule(jobName));
    // The budget is the service's own: a change of it alone leaves pg-boss and next_run_at alone.
    timing = !sameTiming(next, current);
    budget = next.daily_budget_usd !== current.daily_budget_usd;
    const [updated] = await tx
      .update(jobSchedule)
      .set({ ...next, ...(timing ? { next_run_at: nextRunAt(next) } : {}), updated_at: sql`now()` })
      .where(eq(jobSchedule.id, current.id))
      .returning();
    if (timing) await applyToBoss(boss, updated!, fromDrizzle(tx, sql));
    await recordScheduleChanges(tx, [...(pending ? [pending] : []), { job_name: jobName, before: stateOf(current), after: stateOf(updated!), source: 'api', actor }]);
    return updated!;
  });
  if (budget) logger.info({ job: jobName, dailyBudgetUsd: row.daily_budget_usd }, `daily LLM budget of ${jobName} set to ${row.daily_budget_usd === null ? 'none' : `$${row.daily_budget_usd}`}`);
  if (!timing) return row;
  logger.info({ job: jobName, cron: row.cron_expression, tz: row.timezone, active: row.is_active, missed: row.missed_policy }, `schedule of ${jobName} updated`);
  deps.events?.emit('schedule:changed', changed(row, 'api'));
  return row;
}

/** As numeric(14, 8) stores it, so an unchanged value compares equal. */
const roundUsd = (usd: number | null) => (usd === null ? null : Math.round(usd * 1e8) / 1e8);

/**
 * Records that a job ran. One statement, and a second only when next_run_at changes (the
 * occurrence it held has passed); the schedule sync refreshes it too, for jobs that did not run.
 */
export async function recordRun(db: Db, jobName: string, at: Date): Promise<void> {
  const [row] = await db.update(jobSchedule).set({ last_run_at: at }).where(eq(jobSchedule.job_name, jobName)).returning();
  if (!row) return;
  const next = nextRunAt(row);
  if (next?.getTime() !== row.next_run_at?.getTime()) await db.update(jobSchedule).set({ next_run_at: next }).where(eq(jobSchedule.id, row.id));
}
