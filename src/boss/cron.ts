import { CronExpressionParser } from 'cron-parser';
import { nextPromised, promisedAfter } from './cron-dst.ts';
import { isValidTimeZone } from '../time-zone.ts';

const FIELDS = 'minute hour day-of-month month day-of-week';

/** The `@` words a schedule may use instead of 5 fields, stored and shown as typed. */
export const CRON_MACROS = ['@hourly', '@daily', '@midnight', '@weekly', '@monthly', '@yearly', '@annually'] as const;
export type CronMacro = (typeof CRON_MACROS)[number];

const isMacro = (word: string): word is CronMacro => (CRON_MACROS as readonly string[]).includes(word);

/** cron-parser (and so pg-boss) knows every macro above but `@midnight`; it means what `@daily` does. */
const PARSER_ALIASES: Partial<Record<CronMacro, string>> = { '@midnight': '@daily' };

/**
 * The expression as cron-parser and pg-boss take it: a macro trimmed (cron-parser matches macros
 * exactly) and `@midnight` spelled `@daily`; anything else as it is.
 */
export function parserCron(expression: string): string {
  const word = expression.trim();
  if (!isMacro(word)) return expression;
  return PARSER_ALIASES[word] ?? word;
}

/**
 * Our own check of a cron expression: pg-boss accepts strings such as `5` or `* * *` (cron-parser
 * fills the gaps) and a seconds field it cannot honour. Returns the reason it is refused, or null.
 */
export function cronProblem(expression: string): string | null {
  const trimmed = expression.trim();
  if (trimmed.startsWith('@')) {
    return isMacro(trimmed) ? null : `"${expression}" is not a supported macro; use one of ${CRON_MACROS.join(', ')} (lowercase), or 5 fields: ${FIELDS}`;
  }
  const fields = trimmed.split(/\s+/).filter(Boolean);
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

/**
 * The next run after `from`, in the schedule's zone, by the parser pg-boss itself uses: the next
 * occurrence the schedule promises across daylight-saving changes (cron-dst.ts), which is what runs.
 */
export function nextOccurrence(expression: string, tz: string, from = new Date()): Date {
  return nextPromised(parserCron(expression), tz, from);
}

/** The runs after `from`, in order, as nextOccurrence would give them one by one, in one walk. */
export function nextOccurrences(expression: string, tz: string, from: Date): Generator<Date, never> {
  return promisedAfter(parserCron(expression), tz, from);
}

/** The latest occurrence at or before `at`. */
export function previousOccurrence(expression: string, tz: string, at: Date): Date {
  // prev() is strictly before its reference, so step a millisecond past `at` to include it.
  return CronExpressionParser.parse(parserCron(expression), { tz, currentDate: new Date(at.getTime() + 1), strict: false }).prev().toDate();
}
