/**
 * B9b: GET /api/jobs/stats over 14 days at 1 M job_logs rows, the statement the console's runs page
 * polls every 4 s: read whole each time (runStats) against the reader that keeps settled days and
 * reads today afresh (createRunStatsReader), side by side on one database.
 *
 *   npm run bench:run-stats        (BENCH_LOGS=1000000 BENCH_REPS=20 by default)
 *
 * The history is 60 days of both jobs up to now (so today has runs), as bench/console-render.ts
 * seeds it; VACUUM (ANALYZE) before measuring.
 */
import pg from 'pg';
import { createDb } from '../src/db/client.ts';
import { runMigrations } from '../src/db/migrate.ts';
import { runStats, type RunStatsQuery } from '../src/db/run-stats.ts';
import { createRunStatsReader } from '../src/db/run-stats-cache.ts';
import { fmt, main, max, median, onCleanup, percentile, startPostgres } from './lib.ts';

const LOGS = Number(process.env.BENCH_LOGS ?? 1_000_000);
const REPS = Number(process.env.BENCH_REPS ?? 20);
const HISTORY_DAYS = 60;
const TIME_ZONE = 'America/Sao_Paulo';

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

await main(async () => {
  const postgres = await startPostgres('bench-run-stats');
  const url = await postgres.createDatabase('stats');
  const database = createDb(url, { max: 2 });
  onCleanup(() => database.close());
  await runMigrations(database.pool);

  const client = new pg.Client({ connectionString: url });
  await client.connect();
  onCleanup(() => client.end());
  const t0 = performance.now();
  for (let lo = 1; lo <= LOGS; lo += 250_000) {
    await client.query(
      `insert into job_logs (job_name, status, started_at, ended_at, items_processed, metadata)
       select (array['extract-blueprints', 'generate-drops'])[1 + i % 2], case when f then 'FAILED' else 'COMPLETED' end, started,
              started + (15000 + (hashint8(i) & 65535)) * interval '1 millisecond', 10, '{"trigger":"cron"}'
       from (select i, (hashint8(i * 16 + 1) & 1023) < 36 as f,
                    now() - interval '${HISTORY_DAYS} days' + ((i - 1)::float8 / $3::int) * (interval '${HISTORY_DAYS} days' - interval '1 minute') as started
             from generate_series($1::int, $2::int) as i) s`,
      [lo, Math.min(LOGS, lo + 249_999), LOGS],
    );
  }
  await client.query('vacuum (analyze) job_logs');
  console.log(`seeded ${LOGS.toLocaleString('en-US')} job_logs rows over ${HISTORY_DAYS} days in ${fmt((performance.now() - t0) / 1000, 0)} s`);

  // The console's range: the last 14 whole days in the zone, today included.
  const { rows } = await client.query(`select (extract(epoch from date_trunc('day', now() at time zone $1) at time zone $1) * 1000)::float8 as today_ms`, [TIME_ZONE]);
  const tomorrow = rows[0].today_ms + 86_400_000;
  const query: RunStatsQuery = { from: new Date(tomorrow - 14 * 86_400_000), to: new Date(tomorrow), timeZone: TIME_ZONE };
  const { rows: inRange } = await client.query('select count(*)::int as n from job_logs where started_at >= $1 and started_at < $2', [query.from, query.to]);

  const reader = createRunStatsReader(database.db);
  const whole: number[] = [];
  const kept: number[] = [];
  const first = await time(() => reader.report(query));
  for (let rep = 0; rep < REPS; rep++) {
    whole.push(await time(() => runStats(database.db, query)));
    kept.push(await time(() => reader.report(query)));
  }
  const line = (label: string, ms: number[]) => `| ${label} | ${fmt(median(ms))} | ${fmt(percentile(ms, 95))} | ${fmt(max(ms))} |`;
  console.log(`\n### B9b. Run stats, 14 days (${inRange[0].n.toLocaleString('en-US')} runs of ${LOGS.toLocaleString('en-US')}), ${REPS} reps each, alternating\n`);
  console.log('| read | median ms | p95 ms | max ms |\n| --- | --- | --- | --- |');
  console.log(line('whole range each time (before)', whole));
  console.log(line('settled days kept, today afresh', kept));
  console.log(`\nfirst call of the reader (nothing kept yet): ${fmt(first)} ms; kept / whole (median): ×${fmt(median(kept) / median(whole), 3)}`);
});
