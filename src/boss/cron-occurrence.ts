import type { CronPayload } from '../jobs/job.ts';
import { isPromised } from './cron-dst.ts';
import { parserCron, previousOccurrence } from './cron.ts';

/**
 * What a job sent by a schedule is for. pg-boss's job says only when it was created, so the
 * occurrence is the latest one at or before that (a job from the DST gap filler names its own).
 */
export type CronJobVerdict =
  | { run: true; occurrence: Date; catchUp: boolean }
  | { run: false; occurrence: Date; reason: string };

/**
 * pg-boss sends an occurrence within its 60 s due window; a job created later than this after its
 * occurrence is a missed one sent on restart (`missed_policy: once`).
 */
export const CATCH_UP_AFTER_MS = 90_000;

export function judgeCronJob(payload: CronPayload, createdOn: Date): CronJobVerdict {
  const occurrence = payload.occurrence ? new Date(payload.occurrence) : previousOccurrence(payload.cron, payload.tz, createdOn);
  // pg-boss fires any occurrence of the last minute, so a schedule set at 10:00:30 to `0 10 * * *` would run at once.
  if (occurrence < new Date(payload.scheduled_since)) {
    return { run: false, occurrence, reason: `its ${occurrence.toISOString()} occurrence predates the schedule (set ${payload.scheduled_since})` };
  }
  // On a fall-back day pg-boss fires a fixed wall time twice; the schedule promises it once (cron-dst.ts).
  if (!payload.occurrence && !isPromised(parserCron(payload.cron), payload.tz, occurrence)) {
    return { run: false, occurrence, reason: `its ${occurrence.toISOString()} occurrence repeats a wall time that already ran (the clock fell back in ${payload.tz})` };
  }
  return { run: true, occurrence, catchUp: createdOn.getTime() - occurrence.getTime() > CATCH_UP_AFTER_MS };
}
