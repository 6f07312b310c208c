import { CronExpressionParser } from 'cron-parser';
import { isValidTimeZone } from '../time-zone.ts';

const FIELDS = 'minute hour day-of-month month day-of-week';

/**
 * Our own check of a cron expression: pg-boss accepts strings such as `5` or `* * *` (cron-parser
 * fills the gaps) and a seconds field it cannot honour. Returns the reason it is refused, or null.
 */
export function cronProblem(expression: string): string | null {
  const fields = expression.trim().split(/\s+/).filter(Boolean);
  if (fields.length === 6) {
    return `"${expression}" has 6 fields; seconds are not supported (pg-boss fires a schedule at most once a minute). Use 5 fields: ${FIELDS}`;
  }
  if (fields.length !== 5) {
    return `"${expression}" has ${fields.length} field${fields.length === 1 ? '' : 's'}; a cron expression needs exactly 5: ${FIELDS}`;
  }
  try {
    CronExpressionParser.parse(fields.join(' '), { tz: 'UTC', strict: false });
    return null;
  } catch (error) {
    return `"${expression}" is not a valid cron expression: ${(error as Error).message}`;
  }
}

export function timeZoneProblem(tz: string): string | null {
  return isValidTimeZone(tz) ? null : `"${tz}" is not a valid IANA time zone (e.g. "UTC", "America/Sao_Paulo")`;
}

/** The next occurrence after `from`, in the schedule's zone, by the parser pg-boss itself uses. */
export function nextOccurrence(expression: string, tz: string, from = new Date()): Date {
  return CronExpressionParser.parse(expression, { tz, currentDate: from, strict: false }).next().toDate();
}

/** The latest occurrence at or before `at`. */
export function previousOccurrence(expression: string, tz: string, at: Date): Date {
  // prev() is strictly before its reference, so step a millisecond past `at` to include it.
  return CronExpressionParser.parse(expression, { tz, currentDate: new Date(at.getTime() + 1), strict: false }).prev().toDate();
}
