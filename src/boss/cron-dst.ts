import { CronExpressionParser } from 'cron-parser';

/**
 * Which occurrences a schedule promises across daylight-saving changes, and which of them pg-boss
 * fires by itself. README "Daylight saving time" states the promise:
 *
 * - spring forward: a wall time the clock skips runs once, at that minute of the hour the clock
 *   lands on (02:30 in America/New_York on 2027-03-14 runs at 03:30 EDT);
 * - fall back: a wall time that happens twice runs once, the first time (`30 1 * * *` runs at 01:30
 *   EDT only); an expression whose hour is `*` runs by the real clock (an hourly job runs 25 times).
 *
 * The promised runs are the chain of cron-parser's next(), the parser pg-boss uses and the walk of
 * pg-boss's own previewSchedule(). pg-boss decides what is due with prev() instead (timekeeper
 * readOccurrences), which on those days skips a shifted run and fires a repeated one. The gap
 * filler sends the first (dst-gaps.ts) and the runner drops the second (cron-occurrence.ts), so
 * what runs is what the preview lists (test/cron-dst.test.ts runs pg-boss's own pass to prove it).
 *
 * Expressions here are in the parser's form (cron.ts parserCron: `@midnight` spelled `@daily`).
 */

const parse = (expression: string, tz: string, currentDate: Date) => CronExpressionParser.parse(expression, { tz, currentDate, strict: false });

/**
 * A clock change affects the occurrences of the 3 hours after it (Vixie cron draws the line there
 * too); an occurrence with no change in the 3 hours before it is promised, and next() from it is sound.
 */
const CLOCK_CHANGE_REACH_MS = 3 * 3_600_000;
/** Bounds the walks: every minute for 3 hours, and then some. */
const MAX_STEPS = 400;

const offsetFormats = new Map<string, Intl.DateTimeFormat>();
/** `tz`'s UTC offset at `at` ("GMT-04:00"), by the runtime's time zone database. */
function offsetAt(tz: string, at: Date): string | undefined {
  let format = offsetFormats.get(tz);
  if (!format) offsetFormats.set(tz, (format = new Intl.DateTimeFormat('en-US', { timeZone: tz, timeZoneName: 'longOffset' })));
  return format.formatToParts(at).find((part) => part.type === 'timeZoneName')?.value;
}

const clockChangedBefore = (tz: string, at: Date) => offsetAt(tz, new Date(at.getTime() - CLOCK_CHANGE_REACH_MS)) !== offsetAt(tz, at);

/**
 * The chain of next() from an occurrence before any clock change that can touch `at`: next()
 * started from an arbitrary instant near a change is not (from 03:10 EDT on a spring-forward day it
 * misses the 02:30 run shifted to 03:30; from inside a repeated hour it finds the repeat).
 */
function chainBefore(expression: string, tz: string, at: Date) {
  const start = new Date(at.getTime() - CLOCK_CHANGE_REACH_MS);
  try {
    return parse(expression, tz, parse(expression, tz, new Date(start.getTime() + 1)).prev().toDate());
  } catch {
    return parse(expression, tz, start); // no occurrence before it: nothing earlier to repeat
  }
}

/** Whether pg-boss's own pass fires `occurrence`: prev() from just after it must land on it. */
export function pgBossFires(expression: string, tz: string, occurrence: Date): boolean {
  return parse(expression, tz, new Date(occurrence.getTime() + 1)).prev().getTime() === occurrence.getTime();
}

/** Whether `occurrence` (an instant the expression matches, or a shifted one) is a run the schedule promises. */
export function isPromised(expression: string, tz: string, occurrence: Date): boolean {
  if (!clockChangedBefore(tz, occurrence)) return true;
  const chain = chainBefore(expression, tz, occurrence);
  for (let step = 0; step < MAX_STEPS; step += 1) {
    const at = chain.next().getTime();
    if (at === occurrence.getTime()) return true;
    if (at > occurrence.getTime()) return false;
  }
  return false;
}

/** The promised occurrences after `from`, in order: one walk of one chain, however many are read. */
export function* promisedAfter(expression: string, tz: string, from: Date): Generator<Date, never> {
  const chain = clockChangedBefore(tz, from) ? chainBefore(expression, tz, from) : parse(expression, tz, from);
  for (;;) {
    const at = chain.next().toDate();
    if (at > from && isPromised(expression, tz, at)) yield at;
  }
}

/** The first promised occurrence after `from`. */
export function nextPromised(expression: string, tz: string, from: Date): Date {
  return promisedAfter(expression, tz, from).next().value;
}

/** How far back a pass of the gap filler looks: past two of its passes, so a late pass misses nothing. */
export const GAP_WINDOW_MS = 75_000;

/**
 * Promised occurrences in (now - GAP_WINDOW_MS, now] that pg-boss will not fire (a run shifted by a
 * spring-forward change). Empty on every other day.
 */
export function unfiredOccurrences(expression: string, tz: string, now: Date): Date[] {
  const due: Date[] = [];
  for (const at of promisedAfter(expression, tz, new Date(now.getTime() - GAP_WINDOW_MS))) {
    if (at > now) break;
    if (!pgBossFires(expression, tz, at)) due.push(at);
  }
  return due;
}
