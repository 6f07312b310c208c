import type { Db } from '../db/client.ts';
import type { JobScheduleRow } from '../db/schema.ts';
import { cronProblem, nextOccurrences, timeZoneProblem } from './cron.ts';
import { ScheduleInputError, scheduleOf } from './schedules.ts';

/** One occurrence of a preview: the instant (UTC) and the wall time in the schedule's zone, with its offset. */
export type PreviewRun = { at: string; local: string };

export const PREVIEW_MAX_COUNT = 100;

/**
 * How long one preview may compute. The walk is synchronous, and a sparse expression is slow:
 * 100 runs of `0 0 29 2 *` (400 years of leap days) take seconds of blocked event loop, for every
 * request and run of the process. pg-boss's own previewSchedule bounds its walk the same way.
 */
export const PREVIEW_BUDGET_MS = 250;

/** ISO-8601 (and the API's timestamps) stop at year 9999. */
const LAST_INSTANT = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

export type Preview = { runs: PreviewRun[]; /** Why fewer than `count` runs are listed, if they are. */ truncated_note?: string };

/**
 * The next `count` occurrences after `from`: the chain of nextOccurrence, which is what pg-boss is
 * made to fire (across DST too), so a preview says what will run. Pure, for the API, CLI or a dashboard.
 * Fewer when the walk outlasts `budgetMs` or passes year 9999 (`truncated_note` says so).
 */
export function previewRuns(expression: string, tz: string, from: Date, count: number, budgetMs = PREVIEW_BUDGET_MS): Preview {
  const runs: PreviewRun[] = [];
  const deadline = performance.now() + budgetMs;
  const upcoming = nextOccurrences(expression, tz, from);
  while (runs.length < count) {
    if (runs.length > 0 && performance.now() > deadline) {
      return { runs, truncated_note: `stopped after ${budgetMs} ms with ${runs.length} of ${count} runs (a sparse schedule): ask again with from = the last run` };
    }
    const at = upcoming.next().value;
    if (at.getTime() > LAST_INSTANT) return { runs, truncated_note: 'no runs listed after the year 9999' };
    runs.push({ at: at.toISOString(), local: localTime(at, tz) });
  }
  return { runs };
}

// A formatter takes ~0.2 ms to build and microseconds to use: one per zone.
const wallClocks = new Map<string, Intl.DateTimeFormat>();
function wallClockOf(tz: string): Intl.DateTimeFormat {
  let format = wallClocks.get(tz);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'longOffset' });
    wallClocks.set(tz, format);
  }
  return format;
}

/** `2027-03-14T03:30:00-04:00`: `at` on the wall clock of `tz`, by Intl (the runtime's tz database). */
export function localTime(at: Date, tz: string): string {
  const parts = Object.fromEntries(wallClockOf(tz).formatToParts(at).map((part) => [part.type, part.value]));
  // longOffset reads "GMT-04:00", or plain "GMT" at offset zero.
  const offset = parts.timeZoneName === 'GMT' ? '+00:00' : String(parts.timeZoneName).replace('GMT', '');
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}${offset}`;
}

export type CronPreviewInput = { cron_expression: string; timezone: string; from: Date; count: number };

/**
 * The preview of an expression not saved anywhere: refused with the messages a PUT of the same
 * schedule gets (ScheduleInputError), else its runs.
 */
export function previewCron({ cron_expression, timezone, from, count }: CronPreviewInput): { cron_expression: string; timezone: string } & Preview {
  const expression = cron_expression.trim();
  const problem = cronProblem(expression) ?? timeZoneProblem(timezone);
  if (problem) throw new ScheduleInputError(problem);
  return { cron_expression: expression, timezone, ...previewRuns(expression, timezone, from, count) };
}

/** A saved schedule that cannot be previewed: its row was edited by hand into an invalid one. */
export class SavedScheduleInvalidError extends Error {}

/**
 * The preview of a job's saved schedule, paused or not (a paused one lists what it would do), or
 * null when the job has no schedule row.
 */
export async function previewSchedule(db: Db, jobName: string, { from, count }: { from: Date; count: number }): Promise<(JobScheduleRow & Preview) | null> {
  const row = await scheduleOf(db, jobName);
  if (!row) return null;
  const problem = cronProblem(row.cron_expression) ?? timeZoneProblem(row.timezone);
  if (problem) throw new SavedScheduleInvalidError(`the saved schedule of ${jobName} cannot run (pg-boss keeps its previous one): ${problem}`);
  return { ...row, ...previewRuns(row.cron_expression, row.timezone, from, count) };
}
