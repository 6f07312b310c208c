import { sql } from 'drizzle-orm';
import type { Db } from './client.ts';
import { runStats, type RunStatsQuery, type RunStatsReport, type RunStatsRow } from './run-stats.ts';

/**
 * Run statistics that read only today afresh. The console asks for the last 14 days every few
 * seconds, and at 1 M job_logs rows reading them all takes 0.3–0.5 s (BENCHMARKS.md B9), yet only
 * today's runs still change. So a report is cut at the start of today (in its time zone): the days
 * before are kept, the rest is read each time.
 *
 * The days before today are kept only once they are settled: no run of theirs still open (its
 * close would change them) and a minute past midnight (a run's row can commit a little after its
 * started_at, as the reaper also allows for). What can still change a settled day is rare and is
 * bounded by `keepMs`: retention deleting its rows (only days older than JOB_LOGS_RETENTION_DAYS), a
 * cancel rewriting a reaped run's counts, an edit by hand.
 */

export type RunStatsReader = { report(query: RunStatsQuery): Promise<RunStatsReport> };

export type RunStatsCacheOptions = {
  /** How long a settled part is kept; 10 minutes by default. */
  keepMs?: number;
  /** Parts kept at most (one per range, zone and job asked for); the oldest goes first. */
  maxEntries?: number;
};

/** A run's row may commit this long after its started_at (see the reaper's COMMIT_MARGIN_MS). */
const COMMIT_MARGIN_S = 60;

export function createRunStatsReader(db: Db, { keepMs = 10 * 60_000, maxEntries = 50 }: RunStatsCacheOptions = {}): RunStatsReader {
  const kept = new Map<string, { rows: RunStatsRow[]; until: number }>();

  /** The start of today in `timeZone`, and whether the days before it can be settled yet. */
  async function todayStart(timeZone: string): Promise<{ cut: Date; settling: boolean }> {
    const { rows } = await db.execute<{ cut_ms: number; settling: boolean }>(sql`
      select (extract(epoch from cut) * 1000)::float8 as cut_ms, now() >= cut + make_interval(secs => ${COMMIT_MARGIN_S}) as settling
      from (select date_trunc('day', now() at time zone ${timeZone}) at time zone ${timeZone} as cut) as today`);
    return { cut: new Date(rows[0]!.cut_ms), settling: rows[0]!.settling };
  }

  async function settledPart(query: RunStatsQuery, settling: boolean): Promise<RunStatsRow[]> {
    const key = JSON.stringify([query.timeZone, query.jobName ?? null, query.from.toISOString(), query.to.toISOString()]);
    const hit = kept.get(key);
    if (hit && hit.until > Date.now()) return hit.rows;
    kept.delete(key);
    const { days } = await runStats(db, query);
    if (settling && days.every((day) => day.runs.started === 0)) {
      if (kept.size >= maxEntries) kept.delete(kept.keys().next().value!);
      kept.set(key, { rows: days, until: Date.now() + keepMs });
    }
    return days;
  }

  return {
    async report(query) {
      const { cut, settling } = await todayStart(query.timeZone);
      if (query.from >= cut || query.to <= query.from) return runStats(db, query);
      // Two parts that meet at a local midnight: no day is in both.
      const before = await settledPart({ ...query, to: query.to < cut ? query.to : cut }, settling);
      const after = query.to > cut ? (await runStats(db, { ...query, from: cut })).days : [];
      return { timezone: query.timeZone, from: query.from.toISOString(), to: query.to.toISOString(), days: [...before, ...after] };
    },
  };
}
