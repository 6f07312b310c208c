import { nextOccurrence } from './cron.ts';

/**
 * When a schedule is overdue: the one rule behind `scheduler_schedule_overdue_seconds` and the
 * `overdue` alert, so the gauge and the alert never disagree (README "Metrics", Overdue).
 */

export type ScheduleTiming = {
  /** job_schedule.is_active. */
  active: boolean;
  /**
   * The schedule pg-boss fires for the job: its cron and zone, and when pg-boss took it in this form
   * (the `scheduled_since` of its payload). Null while pg-boss holds none for the job.
   */
  boss: { cron: string; timezone: string; since: Date } | null;
  /** job_schedule.next_run_at. */
  nextRunAt: Date | null;
  /** When the job's latest run started, whatever started it; null if it never ran. */
  lastStartedAt: Date | null;
};

/** pg-boss's schedule row as both readers see it: its `data` is our CronPayload. */
export type BossScheduleRow = { cron: string; timezone: string; scheduledSince: unknown; updatedOn: Date };

/** The `boss` part of a timing: pg-boss took the schedule at its payload's `scheduled_since`, else at its row's last update. */
export function bossTimingOf(row: BossScheduleRow): NonNullable<ScheduleTiming['boss']> {
  const since = typeof row.scheduledSince === 'string' ? new Date(row.scheduledSince) : null;
  return { cron: row.cron, timezone: row.timezone, since: since && !Number.isNaN(since.getTime()) ? since : row.updatedOn };
}

/**
 * The occurrence the schedule owes and has not started (it may lie ahead); null when it owes none.
 *
 * A schedule owes the first occurrence of its cron after the later of its latest run's start and
 * the moment pg-boss took the schedule in its present form (an occurrence before that belongs to an
 * older schedule; the runner skips those too). A run of any trigger, a manual one included, pays it.
 * So a missed occurrence (workers down, a queue stuck behind a run that never ends, `missed: skip`
 * after an outage) stays owed until a run starts.
 *
 * next_run_at alone cannot tell: the schedule sync rolls it forward every few seconds whether or not
 * the job ran, so it is in the past only while no worker instance syncs. It is used for an active
 * row pg-boss does not hold yet (the sync has not applied it): owed unless a run started since.
 *
 * Throws when pg-boss's cron cannot be read, which is not expected: pg-boss took it with the same parser.
 */
export function owedOccurrence(timing: ScheduleTiming): Date | null {
  if (!timing.active) return null;
  const lastStart = timing.lastStartedAt?.getTime() ?? Number.NEGATIVE_INFINITY;
  if (timing.boss) {
    const since = Math.max(timing.boss.since.getTime(), lastStart);
    return nextOccurrence(timing.boss.cron, timing.boss.timezone, new Date(since));
  }
  if (!timing.nextRunAt || lastStart >= timing.nextRunAt.getTime()) return null;
  return timing.nextRunAt;
}

/**
 * How late a schedule is, in seconds: the time since its owed occurrence; 0 when it is on time or
 * inactive. A run that starts a few seconds after its occurrence reads as a few seconds late,
 * briefly; a missed one keeps counting until a run starts. NaN (unknown, not "on time") when the
 * cron cannot be read.
 */
export function overdueSeconds(timing: ScheduleTiming, now: Date): number {
  let owed: Date | null;
  try {
    owed = owedOccurrence(timing);
  } catch {
    return Number.NaN;
  }
  return owed ? Math.max(0, (now.getTime() - owed.getTime()) / 1000) : 0;
}
