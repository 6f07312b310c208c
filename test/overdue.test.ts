import { describe, expect, it } from 'vitest';
import { overdueAlertOccurrence } from '../src/alerts/overdue.ts';
import { bossTimingOf, overdueSeconds, owedOccurrence, type ScheduleTiming } from '../src/boss/overdue.ts';

/**
 * The one overdue rule (src/boss/overdue.ts) behind `scheduler_schedule_overdue_seconds` and the
 * `overdue` alert, as pure functions: milliseconds, no database.
 */

const at = (iso: string) => new Date(iso);
const hourly = (since: string) => ({ cron: '0 * * * *', timezone: 'UTC', since: at(since) });
const daily = (since: string, timezone = 'UTC') => ({ cron: '0 9 * * *', timezone, since: at(since) });
const timing = (fields: Partial<ScheduleTiming>): ScheduleTiming => ({ active: true, boss: null, nextRunAt: null, lastStartedAt: null, ...fields });

describe('the owed occurrence and how late it is', () => {
  it('is none for a paused schedule, however late', () => {
    const paused = timing({ active: false, boss: hourly('2026-01-10T08:00:00Z'), nextRunAt: at('2026-01-10T09:00:00Z') });
    expect(owedOccurrence(paused)).toBeNull();
    expect(overdueSeconds(paused, at('2026-01-10T12:00:00Z'))).toBe(0);
  });

  it('is the first occurrence after pg-boss took the schedule while no run has started', () => {
    const schedule = timing({ boss: hourly('2026-01-10T10:30:00Z') });
    expect(owedOccurrence(schedule)).toEqual(at('2026-01-10T11:00:00Z'));
    expect(overdueSeconds(schedule, at('2026-01-10T11:20:00Z'))).toBe(20 * 60);
    // Before that occurrence it is on time.
    expect(overdueSeconds(schedule, at('2026-01-10T10:59:59Z'))).toBe(0);
  });

  it('is the first occurrence after the latest run started', () => {
    const schedule = timing({ boss: hourly('2026-01-01T00:00:00Z'), lastStartedAt: at('2026-01-10T11:00:02Z') });
    expect(owedOccurrence(schedule)).toEqual(at('2026-01-10T12:00:00Z'));
    expect(overdueSeconds(schedule, at('2026-01-10T11:20:00Z'))).toBe(0);
    // A run starting a few seconds after its occurrence reads as a few seconds late, briefly.
    expect(overdueSeconds(schedule, at('2026-01-10T12:00:03Z'))).toBe(3);
    expect(overdueSeconds(schedule, at('2026-01-10T14:00:00Z'))).toBe(2 * 3600);
  });

  it('is paid by a manual run like any other: the next one is owed after it', () => {
    // Missed since 09:00 (workers down); someone runs it by hand at 10:30.
    const missed = timing({ boss: hourly('2026-01-10T08:30:00Z'), lastStartedAt: null });
    expect(overdueSeconds(missed, at('2026-01-10T10:30:00Z'))).toBe(90 * 60);
    const paid = { ...missed, lastStartedAt: at('2026-01-10T10:30:00Z') };
    expect(owedOccurrence(paid)).toEqual(at('2026-01-10T11:00:00Z'));
    expect(overdueSeconds(paid, at('2026-01-10T10:31:00Z'))).toBe(0);
  });

  it('does not owe occurrences of an older schedule (an edit)', () => {
    // Last run at 10:00; the schedule changed at 11:10, so 11:00 is not owed: the next is 12:00.
    const edited = timing({ boss: hourly('2026-01-10T11:10:00Z'), lastStartedAt: at('2026-01-10T10:00:01Z') });
    expect(owedOccurrence(edited)).toEqual(at('2026-01-10T12:00:00Z'));
    expect(overdueSeconds(edited, at('2026-01-10T11:50:00Z'))).toBe(0);
  });

  it('reads the cron in the schedule\'s time zone, DST-free or not', () => {
    // São Paulo has kept UTC-3 all year since 2019: 09:00 there is 12:00 UTC, January (its old summer time) included.
    const saoPaulo = timing({ boss: daily('2026-01-10T00:00:00Z', 'America/Sao_Paulo') });
    expect(owedOccurrence(saoPaulo)).toEqual(at('2026-01-10T12:00:00Z'));
    expect(overdueSeconds(saoPaulo, at('2026-01-10T12:30:00Z'))).toBe(30 * 60);
    // New York moves to summer time on 2026-03-08: 09:00 is 14:00 UTC the day before, 13:00 UTC that day.
    const newYork = timing({ boss: daily('2026-03-07T15:00:00Z', 'America/New_York') });
    expect(owedOccurrence(newYork)).toEqual(at('2026-03-08T13:00:00Z'));
  });

  it('ignores next_run_at while pg-boss holds the schedule: stale or kept ahead by a live worker', () => {
    const base = { boss: daily('2026-03-01T00:00:00Z'), lastStartedAt: at('2026-03-09T09:00:05Z') };
    // Every worker down: nothing refreshed next_run_at, yet the owed occurrence is the one after the last run.
    expect(owedOccurrence(timing({ ...base, nextRunAt: at('2026-03-08T09:00:00Z') }))).toEqual(at('2026-03-10T09:00:00Z'));
    // A live worker keeps next_run_at ahead while runs do not start (queue stuck): still owed.
    const stuck = timing({ ...base, nextRunAt: at('2026-03-11T09:00:00Z') });
    expect(owedOccurrence(stuck)).toEqual(at('2026-03-10T09:00:00Z'));
    expect(overdueSeconds(stuck, at('2026-03-10T12:00:00Z'))).toBe(3 * 3600);
  });

  it('falls back on next_run_at while pg-boss holds no schedule for the row, whatever its cron', () => {
    const schedule = timing({ nextRunAt: at('2026-01-10T11:00:00Z') });
    expect(owedOccurrence(schedule)).toEqual(at('2026-01-10T11:00:00Z'));
    expect(overdueSeconds(schedule, at('2026-01-10T11:05:00Z'))).toBe(300);
    expect(owedOccurrence({ ...schedule, lastStartedAt: at('2026-01-10T11:00:01Z') })).toBeNull();
    expect(overdueSeconds({ ...schedule, lastStartedAt: at('2026-01-10T11:00:01Z') }, at('2026-01-10T11:05:00Z'))).toBe(0);
    expect(overdueSeconds({ ...schedule, nextRunAt: null }, at('2026-01-10T11:05:00Z'))).toBe(0);
  });

  it('is unknown, not on time, when pg-boss holds a cron it cannot read', () => {
    const unreadable = timing({ boss: { cron: 'not a cron', timezone: 'UTC', since: at('2026-01-01T00:00:00Z') } });
    expect(() => owedOccurrence(unreadable)).toThrow();
    expect(overdueSeconds(unreadable, at('2026-01-10T12:00:00Z'))).toBeNaN();
  });

  it("takes when pg-boss took the schedule from its payload's scheduled_since, else from its row's update", () => {
    const row = { cron: '0 * * * *', timezone: 'UTC', updatedOn: at('2026-01-10T10:00:00Z') };
    expect(bossTimingOf({ ...row, scheduledSince: '2026-01-10T09:30:00.000Z' }).since).toEqual(at('2026-01-10T09:30:00Z'));
    expect(bossTimingOf({ ...row, scheduledSince: undefined }).since).toEqual(row.updatedOn);
    expect(bossTimingOf({ ...row, scheduledSince: 'yesterday' }).since).toEqual(row.updatedOn);
  });
});

describe('the overdue alert follows the same rule', () => {
  const GRACE = 300;

  it('fires for the owed occurrence once it is ALERT_OVERDUE_SECONDS old, not a second before', () => {
    const schedule = timing({ boss: hourly('2026-01-10T10:30:00Z') });
    expect(overdueAlertOccurrence(schedule, at('2026-01-10T11:04:59Z'), GRACE)).toBeNull();
    expect(overdueAlertOccurrence(schedule, at('2026-01-10T11:05:00Z'), GRACE)).toEqual(at('2026-01-10T11:00:00Z'));
    // Still the first one missed, hours later: occurred_at and due_at do not move on.
    expect(overdueAlertOccurrence(schedule, at('2026-01-10T15:00:00Z'), GRACE)).toEqual(at('2026-01-10T11:00:00Z'));
    // A run (any trigger) since pays it.
    expect(overdueAlertOccurrence({ ...schedule, lastStartedAt: at('2026-01-10T14:59:00Z') }, at('2026-01-10T15:00:00Z'), GRACE)).toBeNull();
    expect(overdueAlertOccurrence({ ...schedule, active: false }, at('2026-01-10T15:00:00Z'), GRACE)).toBeNull();
  });

  it('fires exactly when the gauge reads at least the grace period', () => {
    const schedules = [
      timing({ boss: hourly('2026-01-10T10:30:00Z') }),
      timing({ boss: hourly('2026-01-01T00:00:00Z'), lastStartedAt: at('2026-01-10T11:00:02Z') }),
      timing({ boss: hourly('2026-01-10T11:10:00Z'), lastStartedAt: at('2026-01-10T10:00:01Z') }),
      timing({ boss: daily('2026-01-10T00:00:00Z', 'America/Sao_Paulo'), nextRunAt: at('2026-01-09T12:00:00Z') }),
      timing({ nextRunAt: at('2026-01-10T11:00:00Z') }),
      timing({ nextRunAt: at('2026-01-10T11:00:00Z'), lastStartedAt: at('2026-01-10T11:00:01Z') }),
      timing({ active: false, boss: hourly('2026-01-10T08:00:00Z') }),
    ];
    for (const schedule of schedules) {
      for (let minute = 0; minute <= 240; minute += 1) {
        const now = new Date(at('2026-01-10T10:00:00Z').getTime() + minute * 60_000);
        const alerted = overdueAlertOccurrence(schedule, now, GRACE) !== null;
        expect(alerted, `${JSON.stringify(schedule)} at ${now.toISOString()}`).toBe(overdueSeconds(schedule, now) >= GRACE);
      }
    }
  });
});
