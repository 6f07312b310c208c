import { eq, sql } from 'drizzle-orm';
import type { PgBoss } from 'pg-boss';
import { bossTimingOf, owedOccurrence, type ScheduleTiming } from '../boss/overdue.ts';
import type { Db } from '../db/client.ts';
import { latestRuns, runStartedSince } from '../db/job-logs.ts';
import { jobSchedule } from '../db/schema.ts';
import type { Registry } from '../jobs/registry.ts';
import type { Logger } from '../logger.ts';
import type { Alerter } from './alerter.ts';
import { jobsWithOpenState } from './store.ts';

/**
 * The dead-man's switch (healthchecks.io): a schedule whose owed occurrence has not started
 * ALERT_OVERDUE_SECONDS after it was due. The rule is the one `scheduler_schedule_overdue_seconds`
 * shows (src/boss/overdue.ts), so the alert fires only while that gauge reads at least as late.
 * Every instance checks, whatever its ROLE, so an API-only instance reports workers that are all
 * down; the alert state makes it one alert however many instances see it.
 */

/** The occurrence to alert on: the one the schedule owes, once it is `afterSeconds` old; else null. */
export function overdueAlertOccurrence(timing: ScheduleTiming, now: Date, afterSeconds: number): Date | null {
  const owed = owedOccurrence(timing);
  return owed && now.getTime() - owed.getTime() >= afterSeconds * 1000 ? owed : null;
}

export type OverdueCheckDeps = { db: Db; boss: PgBoss; registry: Registry; alerter: Alerter; logger: Logger; overdueSeconds: number };

export type OverdueCheck = {
  /** One pass over the active schedules; resolves with the alerts it raised. */
  check(): Promise<number>;
};

export function createOverdueCheck({ db, boss, registry, alerter, logger, overdueSeconds }: OverdueCheckDeps): OverdueCheck {
  return {
    async check() {
      const rows = await db
        .select({
          job_name: jobSchedule.job_name,
          cron_expression: jobSchedule.cron_expression,
          timezone: jobSchedule.timezone,
          next_run_at: jobSchedule.next_run_at,
          // The database's clock, the one started_at is written with, whichever instance checks.
          now: sql`now()`.mapWith(jobSchedule.updated_at),
        })
        .from(jobSchedule)
        .where(eq(jobSchedule.is_active, true));
      const known = rows.filter((row) => registry.has(row.job_name));
      if (known.length === 0) return 0;
      const [schedules, latest, alerted] = await Promise.all([
        boss.getSchedules(),
        latestRuns(db, known.map((row) => row.job_name)),
        jobsWithOpenState(db, 'overdue'),
      ]);
      const inBoss = new Map(schedules.filter((s) => s.key === '').map((s) => [s.name, s]));

      let raised = 0;
      const alreadyAlerted: string[] = [];
      for (const row of known) {
        const job = row.job_name;
        const held = inBoss.get(job);
        const timing: ScheduleTiming = {
          active: true,
          boss: held
            ? bossTimingOf({ cron: held.cron, timezone: held.timezone, scheduledSince: (held.data as { scheduled_since?: unknown } | undefined)?.scheduled_since, updatedOn: new Date(held.updatedOn) })
            : null,
          nextRunAt: row.next_run_at,
          lastStartedAt: latest[job]?.started_at ?? null,
        };
        let due: Date | null;
        try {
          due = overdueAlertOccurrence(timing, row.now, overdueSeconds);
        } catch (error) {
          logger.error({ err: error, job, cron: held?.cron }, `overdue check of ${job}: pg-boss's cron cannot be read; not checked`);
          continue;
        }
        if (!due) continue;
        if (alerted.has(job)) {
          alreadyAlerted.push(job);
          continue;
        }
        const dueAt = due;
        const late = Math.round((row.now.getTime() - dueAt.getTime()) / 1000);
        const id = await alerter.raise(
          {
            kind: 'overdue',
            job,
            logId: null,
            jobId: null,
            error: `due at ${dueAt.toISOString()}, no run has started in the ${late} s since (alerting after ${overdueSeconds} s)`,
            occurredAt: dueAt,
            details: {
              due_at: dueAt.toISOString(),
              overdue_seconds: overdueSeconds,
              cron: timing.boss?.cron ?? row.cron_expression,
              timezone: timing.boss?.timezone ?? row.timezone,
              last_run_started_at: timing.lastStartedAt?.toISOString() ?? null,
            },
          },
          // A run that started meanwhile pays the occurrence: checked where the alert commits.
          async (tx) => !(await runStartedSince(tx, job, dueAt)),
        );
        if (id !== null) raised += 1;
      }
      if (alreadyAlerted.length > 0) logger.debug({ jobs: alreadyAlerted }, `overdue, alerted already: ${alreadyAlerted.join(', ')}`);
      return raised;
    },
  };
}
