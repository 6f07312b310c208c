import { describe, expect, it } from 'vitest';
import { cronProblem, nextOccurrence, previousOccurrence, timeZoneProblem } from '../src/boss/cron.ts';
import { isPromised, pgBossFires, unfiredOccurrences } from '../src/boss/cron-dst.ts';

/**
 * Cron validation and arithmetic as pure functions (no database, no pg-boss), as graphile-worker
 * tests its cron matcher. Every instant is exact. The arithmetic is cron-parser's (5.10), the
 * parser pg-boss itself uses: these tests pin what it does, DST days included, so an upgrade that
 * changes it shows up here first.
 */

const FIELDS = 'minute hour day-of-month month day-of-week';
const next = (expression: string, tz: string, from: string) => nextOccurrence(expression, tz, new Date(from)).toISOString();
const previous = (expression: string, tz: string, at: string) => previousOccurrence(expression, tz, new Date(at)).toISOString();

/** `count` occurrences in a row after `from`, each from the one before. */
function nextOnes(expression: string, tz: string, from: string, count: number): string[] {
  const out: string[] = [];
  let at = new Date(from);
  for (let i = 0; i < count; i += 1) {
    at = nextOccurrence(expression, tz, at);
    out.push(at.toISOString());
  }
  return out;
}

/** `count` occurrences in a row going back from `at` (inclusive), each strictly before the one after it. */
function previousOnes(expression: string, tz: string, at: string, count: number): string[] {
  const out: string[] = [];
  let before = new Date(at);
  for (let i = 0; i < count; i += 1) {
    const occurrence = previousOccurrence(expression, tz, before);
    out.push(occurrence.toISOString());
    before = new Date(occurrence.getTime() - 1);
  }
  return out;
}

describe('cronProblem', () => {
  it.each([
    '* * * * *',
    '0 * * * *',
    '30 2 * * *',
    '0 3 * * 0',
    '*/15 9-17 * * 1-5',
    '0 8,20 * * *',
    '0,30 8-18/2 1,15 * *',
    '1-5 */2 1,15 JAN-MAR MON-FRI',
    '0 0 29 2 *',
    '0 0 L * *',
    '0 0 * * 7',
    '  0  0   * * *  ',
  ])('accepts %j', (expression) => {
    expect(cronProblem(expression)).toBeNull();
  });

  it('refuses 6 fields: seconds cannot be honoured', () => {
    expect(cronProblem('0 30 2 * * *')).toBe(
      `"0 30 2 * * *" has 6 fields; seconds are not supported (pg-boss fires a schedule at most once a minute). Use 5 fields: ${FIELDS}`,
    );
  });

  it.each([
    ['5', 1, 'field'],
    ['* * *', 3, 'fields'],
    ['', 0, 'fields'],
    ['   ', 0, 'fields'],
    ['0 0 1 1 * 2027 x', 7, 'fields'],
  ])('refuses %j: it has %i %s, not 5', (expression, count, noun) => {
    expect(cronProblem(expression)).toBe(`"${expression}" has ${count} ${noun}; a cron expression needs exactly 5: ${FIELDS}`);
  });

  it.each([
    ['foo bar baz qux quux', 'Invalid characters, got value: foo'],
    ['a-b * * * *', 'Invalid characters, got value: a-b'],
    ['60 * * * *', 'Constraint error, got value 60 expected range 0-59'],
    ['* 24 * * *', 'Constraint error, got value 24 expected range 0-23'],
    ['0 0 0 * *', 'Constraint error, got value 0 expected range 1-31'],
    ['0 0 32 * *', 'Constraint error, got value 32 expected range 1-31'],
    ['0 0 * 13 *', 'Constraint error, got value 13 expected range 1-12'],
    ['0 0 * * 8', 'Constraint error, got value 8 expected range 0-7'],
    ['5-1 * * * *', 'Invalid range: 5-1, min(5) > max(1)'],
    ['*/0 * * * *', 'Constraint error, cannot repeat at every 0 time.'],
    // A date that never comes would leave the schedule silent forever.
    ['0 0 30 2 *', 'Invalid explicit day of month definition'],
    ['0 0 31 4,6,9,11 *', 'Invalid explicit day of month definition'],
  ])('refuses %j with the parser’s reason', (expression, reason) => {
    expect(cronProblem(expression)).toBe(`"${expression}" is not a valid cron expression: ${reason}`);
  });
});

describe('timeZoneProblem', () => {
  it.each(['UTC', 'America/Sao_Paulo', 'America/New_York', 'Asia/Kolkata', 'Europe/London', 'Etc/GMT+3'])('accepts %j', (tz) => {
    expect(timeZoneProblem(tz)).toBeNull();
  });

  it.each(['Mars/Olympus', 'America/Sao Paulo', 'America/New_Yrok', 'UTC+3', 'Z', ''])('refuses %j', (tz) => {
    expect(timeZoneProblem(tz)).toBe(`"${tz}" is not a valid IANA time zone (e.g. "UTC", "America/Sao_Paulo")`);
  });
});

describe('nextOccurrence and previousOccurrence', () => {
  describe('every minute', () => {
    it('next is strictly after `from`, whole minutes only', () => {
      expect(next('* * * * *', 'UTC', '2027-01-01T00:00:00.000Z')).toBe('2027-01-01T00:01:00.000Z');
      expect(next('* * * * *', 'UTC', '2027-01-01T00:00:00.001Z')).toBe('2027-01-01T00:01:00.000Z');
      expect(next('* * * * *', 'UTC', '2027-01-01T00:00:59.999Z')).toBe('2027-01-01T00:01:00.000Z');
      expect(nextOnes('* * * * *', 'America/Sao_Paulo', '2027-01-01T23:58:30Z', 3)).toEqual([
        '2027-01-01T23:59:00.000Z',
        '2027-01-02T00:00:00.000Z',
        '2027-01-02T00:01:00.000Z',
      ]);
    });

    it('previous is at or before `at`: an occurrence exactly at `at` counts', () => {
      expect(previous('* * * * *', 'UTC', '2027-01-01T00:00:00.000Z')).toBe('2027-01-01T00:00:00.000Z');
      expect(previous('* * * * *', 'UTC', '2027-01-01T00:00:59.999Z')).toBe('2027-01-01T00:00:00.000Z');
      expect(previous('* * * * *', 'UTC', '2026-12-31T23:59:59.999Z')).toBe('2026-12-31T23:59:00.000Z');
    });
  });

  describe('hourly', () => {
    it('crosses day and year boundaries', () => {
      expect(next('0 * * * *', 'UTC', '2027-12-31T23:00:00Z')).toBe('2028-01-01T00:00:00.000Z');
      expect(next('0 * * * *', 'UTC', '2027-12-31T23:59:59.999Z')).toBe('2028-01-01T00:00:00.000Z');
      expect(previous('0 * * * *', 'UTC', '2027-12-31T23:59:59Z')).toBe('2027-12-31T23:00:00.000Z');
      expect(previous('0 * * * *', 'UTC', '2028-01-01T00:00:00Z')).toBe('2028-01-01T00:00:00.000Z');
    });

    it('follows the zone’s own hour, half-hour offsets included', () => {
      // Asia/Kolkata is UTC+05:30: its whole hours are at :30 UTC.
      expect(next('0 * * * *', 'Asia/Kolkata', '2027-01-01T00:00:00Z')).toBe('2027-01-01T00:30:00.000Z');
      expect(previous('0 * * * *', 'Asia/Kolkata', '2027-01-01T00:00:00Z')).toBe('2026-12-31T23:30:00.000Z');
    });

    it('ranges, steps and lists', () => {
      // 09:00-17:45 every 15 minutes on weekdays, São Paulo (UTC-3). 2027-01-01 is a Friday.
      expect(next('*/15 9-17 * * 1-5', 'America/Sao_Paulo', '2027-01-01T20:44:00Z')).toBe('2027-01-01T20:45:00.000Z');
      expect(next('*/15 9-17 * * 1-5', 'America/Sao_Paulo', '2027-01-01T20:45:00Z')).toBe('2027-01-04T12:00:00.000Z');
      expect(nextOnes('*/15 9-17 * * 1-5', 'America/Sao_Paulo', '2027-01-04T12:00:00Z', 2)).toEqual(['2027-01-04T12:15:00.000Z', '2027-01-04T12:30:00.000Z']);
      expect(previous('*/15 9-17 * * 1-5', 'America/Sao_Paulo', '2027-01-04T11:59:59Z')).toBe('2027-01-01T20:45:00.000Z');
      expect(nextOnes('0 8,20 * * *', 'UTC', '2027-01-01T08:00:00Z', 3)).toEqual(['2027-01-01T20:00:00.000Z', '2027-01-02T08:00:00.000Z', '2027-01-02T20:00:00.000Z']);
      expect(nextOnes('0 8-18/4 * * *', 'UTC', '2027-01-01T00:00:00Z', 4)).toEqual([
        '2027-01-01T08:00:00.000Z',
        '2027-01-01T12:00:00.000Z',
        '2027-01-01T16:00:00.000Z',
        '2027-01-02T08:00:00.000Z',
      ]);
    });

    it('day of month and day of week both set: either matches (classic cron)', () => {
      // Fridays or the 13th. 2027-01-08 is a Friday, 2027-01-13 a Wednesday.
      expect(nextOnes('0 0 13 * 5', 'UTC', '2027-01-02T00:00:00Z', 3)).toEqual(['2027-01-08T00:00:00.000Z', '2027-01-13T00:00:00.000Z', '2027-01-15T00:00:00.000Z']);
    });
  });

  describe('a daily job in America/Sao_Paulo: no DST since 2019, always 05:30 UTC', () => {
    it('across the US spring-forward (2027-03-14)', () => {
      expect(nextOnes('30 2 * * *', 'America/Sao_Paulo', '2027-03-12T12:00:00Z', 3)).toEqual(['2027-03-13T05:30:00.000Z', '2027-03-14T05:30:00.000Z', '2027-03-15T05:30:00.000Z']);
      expect(previousOnes('30 2 * * *', 'America/Sao_Paulo', '2027-03-15T12:00:00Z', 3)).toEqual(['2027-03-15T05:30:00.000Z', '2027-03-14T05:30:00.000Z', '2027-03-13T05:30:00.000Z']);
    });

    it('across the US fall-back (2027-11-07)', () => {
      expect(nextOnes('30 2 * * *', 'America/Sao_Paulo', '2027-11-05T12:00:00Z', 3)).toEqual(['2027-11-06T05:30:00.000Z', '2027-11-07T05:30:00.000Z', '2027-11-08T05:30:00.000Z']);
      expect(previousOnes('30 2 * * *', 'America/Sao_Paulo', '2027-11-08T12:00:00Z', 3)).toEqual(['2027-11-08T05:30:00.000Z', '2027-11-07T05:30:00.000Z', '2027-11-06T05:30:00.000Z']);
    });
  });

  describe('a daily job in America/New_York across DST', () => {
    // 2027-03-14 02:00 EST (07:00Z) jumps to 03:00 EDT: 02:00-02:59 does not exist that day.
    // 2027-11-07 02:00 EDT (06:00Z) falls back to 01:00 EST: 01:00-01:59 happens twice.

    it('spring forward, nextOccurrence: a time in the skipped hour runs at that minute of the hour the clock lands on (03:30 EDT)', () => {
      expect(nextOnes('30 2 * * *', 'America/New_York', '2027-03-12T12:00:00Z', 3)).toEqual([
        '2027-03-13T07:30:00.000Z', // 02:30 EST
        '2027-03-14T07:30:00.000Z', // 03:30 EDT: 02:30 does not exist
        '2027-03-15T06:30:00.000Z', // 02:30 EDT
      ]);
      expect(next('0 2 * * *', 'America/New_York', '2027-03-13T12:00:00Z')).toBe('2027-03-14T07:00:00.000Z'); // 03:00 EDT
    });

    it('spring forward, previousOccurrence: that day has no occurrence at all', () => {
      // Looking back from any instant of 2027-03-14 after 03:30 EDT finds the day before.
      expect(previous('30 2 * * *', 'America/New_York', '2027-03-14T07:30:00Z')).toBe('2027-03-13T07:30:00.000Z');
      expect(previous('30 2 * * *', 'America/New_York', '2027-03-15T00:00:00Z')).toBe('2027-03-13T07:30:00.000Z');
      expect(previousOnes('30 2 * * *', 'America/New_York', '2027-03-15T12:00:00Z', 3)).toEqual(['2027-03-15T06:30:00.000Z', '2027-03-13T07:30:00.000Z', '2027-03-12T07:30:00.000Z']);
    });

    it('fall back, nextOccurrence: a chain of occurrences runs the repeated 01:30 once, the first (EDT) one', () => {
      expect(nextOnes('30 1 * * *', 'America/New_York', '2027-11-05T12:00:00Z', 3)).toEqual([
        '2027-11-06T05:30:00.000Z', // 01:30 EDT
        '2027-11-07T05:30:00.000Z', // 01:30 EDT, the first of the two
        '2027-11-08T06:30:00.000Z', // 01:30 EST
      ]);
      // From inside the repeated hour (01:00 EST) the second 01:30 is a repeat: the next run is the next day's.
      expect(next('30 1 * * *', 'America/New_York', '2027-11-07T06:00:00Z')).toBe('2027-11-08T06:30:00.000Z');
    });

    it('fall back, previousOccurrence: both 01:30s are occurrences', () => {
      expect(previousOnes('30 1 * * *', 'America/New_York', '2027-11-08T12:00:00Z', 4)).toEqual([
        '2027-11-08T06:30:00.000Z',
        '2027-11-07T06:30:00.000Z', // 01:30 EST
        '2027-11-07T05:30:00.000Z', // 01:30 EDT
        '2027-11-06T05:30:00.000Z',
      ]);
    });

    it('an hourly job runs once per real hour either way: 23 runs on the short day, 25 on the long one', () => {
      expect(nextOnes('0 * * * *', 'America/New_York', '2027-03-14T05:30:00Z', 3)).toEqual(['2027-03-14T06:00:00.000Z', '2027-03-14T07:00:00.000Z', '2027-03-14T08:00:00.000Z']);
      expect(previousOnes('0 * * * *', 'America/New_York', '2027-03-14T08:30:00Z', 3)).toEqual(['2027-03-14T08:00:00.000Z', '2027-03-14T07:00:00.000Z', '2027-03-14T06:00:00.000Z']);
      expect(nextOnes('0 * * * *', 'America/New_York', '2027-11-07T04:30:00Z', 3)).toEqual(['2027-11-07T05:00:00.000Z', '2027-11-07T06:00:00.000Z', '2027-11-07T07:00:00.000Z']);
      expect(previousOnes('0 * * * *', 'America/New_York', '2027-11-07T07:30:00Z', 3)).toEqual(['2027-11-07T07:00:00.000Z', '2027-11-07T06:00:00.000Z', '2027-11-07T05:00:00.000Z']);
      const runsOn = (start: string, end: string) => {
        let count = 0;
        for (let at = new Date(start); ; count += 1) {
          at = nextOccurrence('0 * * * *', 'America/New_York', at);
          if (at >= new Date(end)) return count;
        }
      };
      expect(runsOn('2027-03-14T04:59:59Z', '2027-03-15T04:00:00Z')).toBe(23);
      expect(runsOn('2027-11-07T03:59:59Z', '2027-11-08T05:00:00Z')).toBe(25);
    });

    // pg-boss decides what is due with prev() (timekeeper readOccurrences), which disagrees with the
    // promised runs on these two days; test/cron-dst.test.ts proves the service closes the gap.
    it('spring forward: next_run_at (03:30 EDT) is a run pg-boss alone would not start: the gap filler sends it', () => {
      const nextRun = nextOccurrence('30 2 * * *', 'America/New_York', new Date('2027-03-13T12:00:00Z'));
      expect(nextRun.toISOString()).toBe('2027-03-14T07:30:00.000Z');
      expect(pgBossFires('30 2 * * *', 'America/New_York', nextRun)).toBe(false);
      expect(unfiredOccurrences('30 2 * * *', 'America/New_York', new Date('2027-03-14T07:30:20Z')).map((d) => d.toISOString())).toEqual(['2027-03-14T07:30:00.000Z']);
    });

    it('fall back: pg-boss fires the repeated 01:30 (EST); it is no promised run, so the runner skips it', () => {
      expect(pgBossFires('30 1 * * *', 'America/New_York', new Date('2027-11-07T06:30:00Z'))).toBe(true);
      expect(isPromised('30 1 * * *', 'America/New_York', new Date('2027-11-07T06:30:00Z'))).toBe(false);
      expect(next('30 1 * * *', 'America/New_York', '2027-11-07T05:30:00Z')).toBe('2027-11-08T06:30:00.000Z');
    });
  });

  describe('month ends and leap days', () => {
    it('the 31st skips the months without one', () => {
      expect(nextOnes('0 0 31 * *', 'UTC', '2027-01-31T00:00:00Z', 3)).toEqual(['2027-03-31T00:00:00.000Z', '2027-05-31T00:00:00.000Z', '2027-07-31T00:00:00.000Z']);
      expect(previous('0 0 31 * *', 'UTC', '2027-03-30T23:59:59Z')).toBe('2027-01-31T00:00:00.000Z');
      expect(next('0 12 30 * *', 'UTC', '2027-01-30T12:00:00Z')).toBe('2027-03-30T12:00:00.000Z');
    });

    it('L is the last day of each month, 29 February in a leap year', () => {
      expect(nextOnes('0 0 L * *', 'UTC', '2027-01-31T00:00:00Z', 3)).toEqual(['2027-02-28T00:00:00.000Z', '2027-03-31T00:00:00.000Z', '2027-04-30T00:00:00.000Z']);
      expect(next('0 0 L * *', 'UTC', '2028-02-01T00:00:00Z')).toBe('2028-02-29T00:00:00.000Z');
    });

    it('the month end in the schedule’s zone, not in UTC', () => {
      // 23:00 on the last day in São Paulo is 02:00 UTC on the 1st.
      expect(nextOnes('0 23 L * *', 'America/Sao_Paulo', '2027-01-31T12:00:00Z', 2)).toEqual(['2027-02-01T02:00:00.000Z', '2027-03-01T02:00:00.000Z']);
    });

    it('0 0 29 2 * runs only in leap years (2100 is not one)', () => {
      expect(nextOnes('0 0 29 2 *', 'UTC', '2027-01-01T00:00:00Z', 3)).toEqual(['2028-02-29T00:00:00.000Z', '2032-02-29T00:00:00.000Z', '2036-02-29T00:00:00.000Z']);
      expect(next('0 0 29 2 *', 'America/Sao_Paulo', '2027-01-01T00:00:00Z')).toBe('2028-02-29T03:00:00.000Z');
      expect(previous('0 0 29 2 *', 'UTC', '2027-06-01T00:00:00Z')).toBe('2024-02-29T00:00:00.000Z');
      expect(previous('0 0 29 2 *', 'UTC', '2028-02-29T00:00:00Z')).toBe('2028-02-29T00:00:00.000Z');
      expect(next('0 0 29 2 *', 'UTC', '2096-03-01T00:00:00Z')).toBe('2104-02-29T00:00:00.000Z');
    });
  });

  it('nextOccurrence defaults `from` to now', () => {
    const before = Date.now();
    const at = nextOccurrence('* * * * *', 'UTC').getTime();
    expect(at).toBeGreaterThan(before);
    expect(at).toBeLessThanOrEqual(Date.now() + 60_000);
    expect(at % 60_000).toBe(0);
  });
});
