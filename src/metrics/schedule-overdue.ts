import { nextOccurrence } from '../boss/cron.ts';

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

/**
 * How late a schedule is, in seconds; 0 when it is on time or inactive.
 *
 * A schedule owes the first occurrence of its cron after the later of its latest run's start and
 * the moment pg-boss took the schedule in its present form (an occurrence before that belongs to an
 * older schedule; the runner skips those too). Once that occurrence has passed without a run
 * starting, the schedule is overdue by the time since it. So a run that starts a few seconds after
 * its occurrence reads as a few seconds late, briefly; a missed occurrence (workers down, a queue
 * stuck behind a run that never ends, `missed: skip` after an outage) keeps counting until a run
 * starts, a manual one included.
 *
 * next_run_at alone cannot tell: the schedule sync rolls it forward every few seconds whether or not
 * the job ran, so it is in the past only while no worker instance syncs. It is used for an active
 * row pg-boss does not hold yet (the sync has not applied it): overdue since next_run_at once that
 * has passed with no run started since.
 */
export function overdueSeconds(schedule: ScheduleTiming, now: Date): number {
  if (!schedule.active) return 0;
  const lastStart = schedule.lastStartedAt?.getTime() ?? Number.NEGATIVE_INFINITY;
  let owed: number;
  if (schedule.boss) {
    const since = Math.max(schedule.boss.since.getTime(), lastStart);
    try {
      owed = nextOccurrence(schedule.boss.cron, schedule.boss.timezone, new Date(since)).getTime();
    } catch {
      // pg-boss accepted it with the same parser, so this is not expected; unknown, not "on time".
      return Number.NaN;
    }
  } else {
    if (!schedule.nextRunAt || lastStart >= schedule.nextRunAt.getTime()) return 0;
    owed = schedule.nextRunAt.getTime();
  }
  return Math.max(0, (now.getTime() - owed) / 1000);
}
