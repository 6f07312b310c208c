import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Database } from '../src/db/client.ts';
import { runStats, type RunStatsQuery } from '../src/db/run-stats.ts';
import { createRunStatsReader } from '../src/db/run-stats-cache.ts';
import { createTestDatabase, type TestDatabase } from './support/postgres.ts';

/**
 * The stats the console polls: the days before today are kept once settled, today is read each
 * time. On a real PostgreSQL, against the uncached statement.
 */

describe('run statistics: settled days kept, today read afresh', () => {
  let database: TestDatabase;
  let pool: Database;
  let timeZone: string;
  /** The start of today in timeZone. */
  let today: Date;
  const hours = (n: number) => n * 3_600_000;

  const insert = (at: Date, status: 'COMPLETED' | 'FAILED' | 'STARTED', ms = 1_000) =>
    pool.pool.query(
      `insert into job_logs (job_name, status, started_at, ended_at, items_processed, metadata)
       values ('extract-blueprints', $1, $2::timestamptz, case when $1 = 'STARTED' then null else $2::timestamptz + make_interval(secs => $3::float8 / 1000) end, 1, '{"trigger":"cron"}')
       returning id`,
      [status, at.toISOString(), ms],
    );

  beforeAll(async () => {
    database = await createTestDatabase();
    pool = createDb(database.url, { max: 2 });
    // A zone where it is not within a few minutes of midnight now, so that yesterday is settled
    // and today has begun for the whole test.
    for (const zone of ['UTC', 'Asia/Kolkata', 'America/Sao_Paulo']) {
      const { rows } = await pool.pool.query(
        `select (extract(epoch from cut) * 1000)::float8 as cut_ms, now() - cut as into_day
         from (select date_trunc('day', now() at time zone $1) at time zone $1 as cut) as t`,
        [zone],
      );
      const intoDayMinutes = (Date.now() - rows[0].cut_ms) / 60_000;
      if (intoDayMinutes > 5 && intoDayMinutes < 24 * 60 - 5) {
        timeZone = zone;
        today = new Date(rows[0].cut_ms);
        break;
      }
    }
    expect(timeZone!).toBeDefined();
  });
  afterAll(async () => {
    await pool?.close();
    await database?.drop();
  });

  const range = (): RunStatsQuery => ({ from: new Date(today.getTime() - hours(72)), to: new Date(today.getTime() + hours(24)), timeZone });
  const fresh = async () => (await runStats(pool.db, range())).days;

  it('answers exactly what the single statement answers, across the cut at midnight', async () => {
    await insert(new Date(today.getTime() - hours(50)), 'COMPLETED', 2_000);
    await insert(new Date(today.getTime() - hours(20)), 'FAILED', 5_000);
    await insert(new Date(today.getTime() - 1_000), 'COMPLETED', 3_000); // one second before midnight: yesterday
    await insert(new Date(today.getTime() + 1_000), 'COMPLETED', 4_000); // one second after: today
    const reader = createRunStatsReader(pool.db);
    const report = await reader.report(range());
    expect(report.days).toEqual(await fresh());
    expect(report.days).toHaveLength(3);
    expect(report).toMatchObject({ timezone: timeZone, from: range().from.toISOString(), to: range().to.toISOString() });
    // A range that ends before today, and one that starts within it, are answered whole.
    const past = { ...range(), to: today };
    expect((await reader.report(past)).days).toEqual((await runStats(pool.db, past)).days);
    const todayOnly = { ...range(), from: new Date(today.getTime() + 500) };
    expect((await reader.report(todayOnly)).days).toEqual((await runStats(pool.db, todayOnly)).days);
  });

  it("shows today's new runs at once, and keeps settled days for keepMs", async () => {
    const reader = createRunStatsReader(pool.db, { keepMs: 1_500 });
    const first = await reader.report(range());
    await insert(new Date(today.getTime() + 2_000), 'FAILED', 1_000);
    await insert(new Date(today.getTime() - hours(30)), 'COMPLETED', 9_000); // yesterday, written late (by hand)
    const second = await reader.report(range());
    const todayRow = (days: typeof first.days) => days.find((d) => d.day === second.days.at(-1)!.day)!;
    expect(todayRow(second.days).runs.failed).toBe(todayRow(first.days).runs.failed + 1);
    // Yesterday as it was: kept.
    expect(second.days.slice(0, -1)).toEqual(first.days.slice(0, -1));
    expect(second.days).not.toEqual(await fresh());
    await sleep(1_600);
    expect((await reader.report(range())).days).toEqual(await fresh());
  });

  it('does not keep a day with a run still open: its close shows at once', async () => {
    const reader = createRunStatsReader(pool.db);
    const { rows } = await insert(new Date(today.getTime() - hours(10)), 'STARTED');
    const open = await reader.report(range());
    expect(open.days.some((d) => d.runs.started === 1)).toBe(true);
    await pool.pool.query(`update job_logs set status = 'FAILED', ended_at = started_at + interval '1 hour' where id = $1`, [rows[0].id]);
    const closed = await reader.report(range());
    expect(closed.days.some((d) => d.runs.started > 0)).toBe(false);
    expect(closed.days).toEqual(await fresh());
  });
});
