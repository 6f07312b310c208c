import { and, eq, gte, sql } from 'drizzle-orm';
import type { PgBoss } from 'pg-boss';
import { cronProblem, previousOccurrence, timeZoneProblem } from '../boss/cron.ts';
import type { Db } from '../db/client.ts';
import { jobLogs, jobSchedule } from '../db/schema.ts';
import type { Registry } from '../jobs/registry.ts';
import type { Logger } from '../logger.ts';
import type { Alerter } from './alerter.ts';

/**
 * The dead-man's switch (healthchecks.io): a schedule whose due run has not started
 * ALERT_OVERDUE_SECONDS after it was due. Every instance checks, whatever its ROLE, so an API-only
 * instance reports workers that are all down; the alert state makes it one alert however many
 * instances see it.
 */

export type ScheduleTimes = {
  cron_expression: string;
  timezone: string;
  next_run_at: Date | null;
  /** When the schedule took its current form (the row's updated_at, or pg-boss's, whichever is later). */
  set_at: Date;
};

/**
 * The latest occurrence due before `cutoff` (now less the grace period), or null. Two sources:
 * - `next_run_at` as stored: with every worker down nothing refreshes it, so it stays in the past;
 * - the cron's own latest occurrence before the cutoff, when it comes after the schedule was set:
 *   a worker instance refreshes next_run_at every few seconds even when runs do not start (queue
 *   stuck, cron not firing), so the stored value alone would never fall behind.
 */
export function missedOccurrence(schedule: ScheduleTimes, cutoff: Date): Date | null {
  const due: Date[] = [];
  if (schedule.next_run_at && schedule.next_run_at <= cutoff) due.push(schedule.next_run_at);
  if (!cronProblem(schedule.cron_expression) && !timeZoneProblem(schedule.timezone)) {
    const occurrence = previousOccurrence(schedule.cron_expression, schedule.timezone, cutoff);
    if (occurrence > schedule.set_at) due.push(occurrence);
  }
  return due.length === 0 ? null : new Date(Math.max(...due.map((d) => d.getTime())));
}

export type OverdueCheckDeps = { db: Db; boss: PgBoss; registry: Registry; alerter: Alerter; logger: Logger; overdueSeconds: number };

export type OverdueCheck = {
  /** One pass over the active schedules; resolves with the alerts it raised. */
  check(): Promise<number>;
};

export function createOverdueCheck({ db, boss, registry, alerter, logger, overdueSeconds }: OverdueCheckDeps): OverdueCheck {
  /** No run of the job started at or after `due` (checked again inside the alert's transaction). */
  const noRunSince = (job: string, due: Date) => async (tx: Pick<Db, 'select'>) => {
    const [run] = await tx.select({ id: jobLogs.id }).from(jobLogs).where(and(eq(jobLogs.job_name, job), gte(jobLogs.started_at, due))).limit(1);
    return !run;
  };

  return {
    async check() {
      const rows = await db
        .select({
          job_name: jobSchedule.job_name,
          cron_expression: jobSchedule.cron_expression,
          timezone: jobSchedule.timezone,
          next_run_at: jobSchedule.next_run_at,
          updated_at: jobSchedule.updated_at,
          // The database's clock, the one started_at is written with, whichever instance checks.
          now: sql`now()`.mapWith(jobSchedule.updated_at),
          // Spelled out: drizzle leaves columns unqualified in a select's fields, so a correlated
          // subquery built from column objects would compare job_name with itself.
          last_started_at: sql`(select max(l.started_at) from job_logs l where l.job_name = job_schedule.job_name)`.mapWith(jobLogs.started_at),
          alerted: sql<boolean>`exists (select 1 from alert_state a where a.job_name = job_schedule.job_name and a.kind = 'overdue' and a.open)`,
        })
        .from(jobSchedule)
        .where(eq(jobSchedule.is_active, true));
      const known = rows.filter((row) => registry.has(row.job_name));
      if (known.length === 0) return 0;
      const setInBoss = new Map((await boss.getSchedules()).filter((s) => s.key === '').map((s) => [s.name, new Date(s.updatedOn)]));

      let raised = 0;
      const alreadyAlerted: string[] = [];
      for (const row of known) {
        const setAt = new Date(Math.max(row.updated_at.getTime(), setInBoss.get(row.job_name)?.getTime() ?? 0));
        const cutoff = new Date(row.now.getTime() - overdueSeconds * 1000);
        const due = missedOccurrence({ ...row, set_at: setAt }, cutoff);
        const lastStarted: Date | null = row.last_started_at;
        if (!due || (lastStarted && lastStarted >= due)) continue;
        if (row.alerted) {
          alreadyAlerted.push(row.job_name);
          continue;
        }
        const late = Math.round((row.now.getTime() - due.getTime()) / 1000);
        const id = await alerter.raise(
          {
            kind: 'overdue',
            job: row.job_name,
            logId: null,
            jobId: null,
            error: `due at ${due.toISOString()}, no run has started in the ${late} s since (alerting after ${overdueSeconds} s)`,
            occurredAt: due,
            details: { due_at: due.toISOString(), overdue_seconds: overdueSeconds, cron: row.cron_expression, timezone: row.timezone, last_run_started_at: lastStarted?.toISOString() ?? null },
          },
          noRunSince(row.job_name, due),
        );
        if (id !== null) raised += 1;
      }
      if (alreadyAlerted.length > 0) logger.debug({ jobs: alreadyAlerted }, `overdue, alerted already: ${alreadyAlerted.join(', ')}`);
      return raised;
    },
  };
}
