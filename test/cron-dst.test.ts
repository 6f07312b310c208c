import { describe, expect, it } from 'vitest';
// pg-boss's own cron pass, not a copy of it: its due-occurrence read takes the clock as an argument.
import Timekeeper from 'pg-boss/dist/timekeeper.js';
import { CronExpressionParser } from 'cron-parser';
import { nextOccurrence, parserCron } from '../src/boss/cron.ts';
import { unfiredOccurrences } from '../src/boss/cron-dst.ts';
import { judgeCronJob } from '../src/boss/cron-occurrence.ts';

/**
 * Proof that what runs is what the preview lists (nextOccurrence's chain), across real DST changes:
 * a simulated day of pg-boss cron passes every 30 s (its real readOccurrences), each job it sends
 * judged by the runner's rule (judgeCronJob), plus the DST gap filler's passes every 30 s.
 */

type Read = (expression: string, kind: string, tz: string, databaseTime: number) => Date[];
const readOccurrences = (Timekeeper as unknown as { prototype: { readOccurrences: Read } }).prototype.readOccurrences;

const PASS_MS = 30_000;
/** How long after a pass its job is created (the send-it queue's hop). */
const SEND_DELAY_MS = 1_500;

function simulate(expression: string, tz: string, fromIso: string, untilIso: string, { bossPhaseMs = 7_000, fillerPhaseMs = 19_000 } = {}) {
  const from = Date.parse(fromIso);
  const until = Date.parse(untilIso);
  const cron = parserCron(expression);
  const payload = { trigger: 'cron' as const, cron: expression, tz, scheduled_since: '2020-01-01T00:00:00.000Z' };
  const ran = new Map<string, { catchUp: boolean; by: string }>();
  const skipped: string[] = [];
  const sentByBoss = new Set<number>();
  // Only passes near an occurrence can send anything, so only those are run (a pass a minute costs
  // a cron-parser walk: all of them would take minutes).
  const passes = (phaseMs: number) => passesNear(candidates(cron, tz, from, until), from + phaseMs, until);
  for (const t of passes(bossPhaseMs)) {
    for (const occurrence of readOccurrences.call(null, cron, 'cron', tz, t)) {
      // The throttle slot: one job per occurrence, however many passes see it.
      if (sentByBoss.has(occurrence.getTime())) continue;
      sentByBoss.add(occurrence.getTime());
      const verdict = judgeCronJob(payload, new Date(t + SEND_DELAY_MS));
      expect(verdict.occurrence.toISOString(), 'the runner names the occurrence pg-boss sent').toBe(occurrence.toISOString());
      if (verdict.run) ran.set(verdict.occurrence.toISOString(), { catchUp: verdict.catchUp, by: 'pg-boss' });
      else skipped.push(verdict.occurrence.toISOString());
    }
  }
  for (const t of passes(fillerPhaseMs)) {
    for (const occurrence of unfiredOccurrences(cron, tz, new Date(t))) {
      const at = occurrence.toISOString();
      const verdict = judgeCronJob({ ...payload, occurrence: at }, new Date(t + SEND_DELAY_MS));
      expect(verdict.run).toBe(true);
      // The job id is derived from the occurrence: a second pass's send is the same job.
      if (!ran.has(at)) ran.set(at, { catchUp: verdict.run && verdict.catchUp, by: 'gap filler' });
    }
  }
  const runs = [...ran.keys()].filter((at) => Date.parse(at) > from && Date.parse(at) < until - 60_000).sort();
  const promised: string[] = [];
  for (let at = nextOccurrence(expression, tz, new Date(from)); at.getTime() < until - 60_000; at = nextOccurrence(expression, tz, at)) promised.push(at.toISOString());
  return { runs, promised, skipped, ran };
}

/** Every instant that could run: what pg-boss's prev() walk finds and what next() chains to. */
function candidates(cron: string, tz: string, from: number, until: number): number[] {
  const found = new Set<number>();
  const back = CronExpressionParser.parse(cron, { tz, currentDate: new Date(until), strict: false });
  for (let at = back.prev().getTime(); at > from; at = back.prev().getTime()) found.add(at);
  const ahead = CronExpressionParser.parse(cron, { tz, currentDate: new Date(from), strict: false });
  for (let at = ahead.next().getTime(); at < until; at = ahead.next().getTime()) found.add(at);
  return [...found];
}

/** The pass times of a pass every PASS_MS from `start` that fall within 2 minutes after a candidate. */
function passesNear(occurrences: number[], start: number, until: number): number[] {
  const times = new Set<number>();
  for (const at of occurrences) {
    const first = start + Math.ceil((at - 30_000 - start) / PASS_MS) * PASS_MS;
    for (let t = first; t <= at + 120_000 && t < until; t += PASS_MS) if (t >= start) times.add(t);
  }
  return [...times].sort((a, b) => a - b);
}

const onDay = (runs: string[], dayStartIso: string, dayEndIso: string) => runs.filter((at) => at >= dayStartIso && at < dayEndIso);

describe('what runs is what the preview lists, across DST (pg-boss passes + the runner + the gap filler)', () => {
  it('America/New_York, daily 02:30, spring forward 2027-03-14: exactly one run that day, at 03:30 EDT, sent by the gap filler', () => {
    const { runs, promised, ran } = simulate('30 2 * * *', 'America/New_York', '2027-03-12T12:00:00Z', '2027-03-16T12:00:00Z');
    expect(runs).toEqual(promised);
    // The local day 2027-03-14 runs from 05:00Z (EST) to 04:00Z on the 15th (EDT).
    expect(onDay(runs, '2027-03-14T05:00:00Z', '2027-03-15T04:00:00Z')).toEqual(['2027-03-14T07:30:00.000Z']);
    expect(ran.get('2027-03-14T07:30:00.000Z')).toEqual({ catchUp: false, by: 'gap filler' });
    expect(ran.get('2027-03-15T06:30:00.000Z')?.by).toBe('pg-boss');
  });

  it('America/New_York, daily 01:30, fall back 2027-11-07: exactly one run that day (01:30 EDT); the repeat pg-boss sends is skipped', () => {
    const { runs, promised, skipped } = simulate('30 1 * * *', 'America/New_York', '2027-11-05T12:00:00Z', '2027-11-09T12:00:00Z');
    expect(runs).toEqual(promised);
    expect(onDay(runs, '2027-11-07T04:00:00Z', '2027-11-08T05:00:00Z')).toEqual(['2027-11-07T05:30:00.000Z']);
    expect(skipped).toEqual(['2027-11-07T06:30:00.000Z']);
  });

  it('an hourly job runs once per real hour: 23 runs on the short day, 25 on the long one, nothing skipped', () => {
    const spring = simulate('0 * * * *', 'America/New_York', '2027-03-14T04:30:00Z', '2027-03-15T04:30:00Z');
    expect(spring.runs).toEqual(spring.promised);
    expect(onDay(spring.runs, '2027-03-14T05:00:00Z', '2027-03-15T04:00:00Z')).toHaveLength(23);
    const fall = simulate('0 * * * *', 'America/New_York', '2027-11-07T03:30:00Z', '2027-11-08T05:30:00Z');
    expect(fall.runs).toEqual(fall.promised);
    expect(onDay(fall.runs, '2027-11-07T04:00:00Z', '2027-11-08T05:00:00Z')).toHaveLength(25);
    expect([...spring.skipped, ...fall.skipped]).toEqual([]);
  });

  it.each([
    ['0 2 * * *', 'America/New_York', '2027-03-13T00:00:00Z', '2027-03-16T00:00:00Z'],
    ['*/20 1 * * *', 'America/New_York', '2027-11-06T00:00:00Z', '2027-11-09T00:00:00Z'],
    ['*/20 2 * * *', 'America/New_York', '2027-03-13T00:00:00Z', '2027-03-16T00:00:00Z'],
    ['@daily', 'America/New_York', '2027-03-13T00:00:00Z', '2027-03-16T00:00:00Z'],
    ['@midnight', 'America/Sao_Paulo', '2027-03-13T00:00:00Z', '2027-03-16T00:00:00Z'],
    ['30 1 * * *', 'Europe/London', '2027-03-27T00:00:00Z', '2027-03-30T00:00:00Z'],
    ['30 1 * * *', 'Europe/London', '2027-10-30T00:00:00Z', '2027-11-02T00:00:00Z'],
    // Lord Howe Island moves its clocks by 30 minutes. (Its spring-forward day is left out: cron-parser's
    // prev() gives up there with "loop limit exceeded", in pg-boss's pass as here.)
    ['45 1 * * *', 'Australia/Lord_Howe', '2027-04-02T00:00:00Z', '2027-04-05T00:00:00Z'],
    ['*/15 * * * *', 'America/New_York', '2027-11-07T04:00:00Z', '2027-11-07T08:00:00Z'],
    ['0 9 * * 1-5', 'UTC', '2027-03-12T00:00:00Z', '2027-03-16T00:00:00Z'],
  ])('%s in %s from %s: runs equal the preview, none labelled a catch-up', (expression, tz, from, until) => {
    for (const phases of [{ bossPhaseMs: 0, fillerPhaseMs: 29_999 }, { bossPhaseMs: 29_999, fillerPhaseMs: 0 }]) {
      const { runs, promised, ran } = simulate(expression, tz, from, until, phases);
      expect(runs).toEqual(promised);
      expect([...ran.values()].filter((r) => r.catchUp)).toEqual([]);
    }
  });
});
