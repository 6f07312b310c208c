/**
 * The cost of a Prometheus scrape (`createMetrics(…).scrape()`, what GET /metrics serves) on a
 * database with a long history and a deep queue, against an empty one.
 *
 * What is measured: the wall time of `scrape()` (every family: the event counters, the database
 * gauges read at scrape time, build info, prom-client's process metrics, and the exposition text),
 * one scrape after another, and beside it the time of the database read alone
 * (`readDatabaseSnapshot`: pg-boss's cached queue counts + one statement of per-job index probes).
 *
 * How: one embedded PostgreSQL (bench/lib.ts) with two databases, each migrated, with the service's
 * two jobs' queues and schedules (their queues `standard` here: a stately queue holds one waiting
 * job at most) and a pg-boss instance that supervises (its monitor pass caches the queue counts, as
 * in the service) but runs no workers, so what is queued stays queued:
 *   - empty: nothing else;
 *   - big: JOB_LOGS rows of job_logs (both jobs and a few retired names, over 180 days) and a
 *     pg-boss backlog of BACKLOG jobs (half each job; 90 % ready, 10 % deferred an hour), both
 *     `VACUUM (ANALYZE)`d, as autovacuum would leave them.
 * Each round scrapes each database SCRAPES times in turn (the order alternates), after a warm-up;
 * percentiles are over every scrape of a database. The scrape's answer is checked (database up, the
 * backlog's counts), and the EXPLAIN (ANALYZE, BUFFERS) of the probe statement at the big size goes to
 * stderr, with a line saying whether it scans job_logs or pg-boss's job table.
 *
 * Target (issue 11): p99 of a scrape ≤ 50 ms on the big database; the big / empty ratio is reported.
 *
 * `--quick`: 100 k job_logs rows, a 10 k backlog, fewer scrapes; ~30 s. Not the figures to quote.
 * Full mode: ~2 min.
 *
 *   cd /work/main && node_modules/.bin/node bench/metrics-scrape.ts [--quick]
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { sql } from 'drizzle-orm';
import type { PgBoss } from 'pg-boss';
import { createBoss, ensureQueues } from '../src/boss/client.ts';
import { createScheduleSync, seedSchedules } from '../src/boss/schedules.ts';
import { createDb, type Database } from '../src/db/client.ts';
import { runMigrations } from '../src/db/migrate.ts';
import { noEvents } from '../src/events.ts';
import { createRegistry, JOBS } from '../src/jobs/registry.ts';
import { readDatabaseSnapshot, snapshotStatement } from '../src/metrics/database-snapshot.ts';
import { createMetrics, type Metrics } from '../src/metrics/registry.ts';
import { waitFor } from '../testkit/poll.ts';
import { fmt, machineLine, main, markdownTable, median, note, onCleanup, percentile, QUICK, quietLogger, ratio, sized, startPostgres } from './lib.ts';

const JOB_LOGS = sized(100_000, 1_000_000);
const BACKLOG = sized(10_000, 100_000);
const ROUNDS = sized(2, 5);
const SCRAPES = sized(50, 200);
const WARMUP = 20;
const TARGET_P99_MS = 50;

/** The service's jobs, their queues `standard` so a backlog can build up. */
const registry = createRegistry(JOBS.map((job) => ({ ...job, queue: { ...job.queue, policy: 'standard' } })));
const jobNames = [...registry.keys()];
const logger = quietLogger('warn');

type Target = { label: string; database: Database; boss: PgBoss; metrics: Metrics; scrapeMs: number[]; readMs: number[] };

await main(async () => {
  const started = performance.now();
  const postgres = await startPostgres('metrics-scrape');
  const empty = await prepare('empty', await postgres.createDatabase('bench_metrics_empty'));
  const big = await prepare(`${count(JOB_LOGS)} job_logs, ${count(BACKLOG)} queued`, await postgres.createDatabase('bench_metrics_big'));

  let t0 = performance.now();
  await seedJobLogs(big.database);
  note(`seeded ${JOB_LOGS} job_logs rows in ${fmt((performance.now() - t0) / 1000)} s`);
  t0 = performance.now();
  await seedBacklog(big.boss);
  note(`queued ${BACKLOG} pg-boss jobs in ${fmt((performance.now() - t0) / 1000)} s`);
  for (const table of ['job_logs', 'pgboss.job_common', 'pgboss.queue', 'pgboss.schedule', 'job_schedule']) await big.database.pool.query(`vacuum (analyze) ${table}`);

  // pg-boss's monitor pass (every 10 s) caches the counts the gauges show.
  const ready = Math.round(BACKLOG * 0.9);
  await waitFor('pg-boss to count the backlog', async () => (await big.boss.getQueues(jobNames)).reduce((n, q) => n + q.readyCount, 0) === ready, 60_000, 500);
  const answer = await big.metrics.scrape();
  const check = {
    up: /^scheduler_database_up 1$/m.test(answer) && /^scheduler_database_up 1$/m.test(await empty.metrics.scrape()),
    ready: sumOf(answer, /^scheduler_queue_jobs\{job="[^"]+",state="ready"\} (\d+)$/gm),
    deferred: sumOf(answer, /^scheduler_queue_jobs\{job="[^"]+",state="deferred"\} (\d+)$/gm),
    bytes: Buffer.byteLength(answer),
    series: answer.split('\n').filter((line) => line && !line.startsWith('#')).length,
  };
  if (!check.up || check.ready !== ready || check.deferred !== BACKLOG - ready) throw new Error(`unexpected scrape: ${JSON.stringify(check)}`);

  const plan = await explain(big.database);
  process.stderr.write(`\n[bench] EXPLAIN (ANALYZE, BUFFERS) of the probe statement at the big size:\n${plan.join('\n')}\n`);
  const scans = plan.filter((line) => /Seq Scan on (job_logs|job_common|job)\b/.test(line));

  for (const target of [empty, big]) for (let i = 0; i < WARMUP; i++) await target.metrics.scrape();
  const loadBefore = loadavg()[0]!;
  for (let round = 0; round < ROUNDS; round++) {
    for (const target of round % 2 ? [big, empty] : [empty, big]) {
      for (let i = 0; i < SCRAPES; i++) {
        let t = performance.now();
        await target.metrics.scrape();
        target.scrapeMs.push(performance.now() - t);
        t = performance.now();
        await readDatabaseSnapshot({ db: target.database.db, boss: target.boss, jobNames, bossSchema: 'pgboss' });
        target.readMs.push(performance.now() - t);
      }
    }
  }

  const rows = [empty, big].map((target) => [
    target.label,
    String(target.scrapeMs.length),
    fmt(median(target.scrapeMs), 2),
    fmt(percentile(target.scrapeMs, 99), 2),
    fmt(Math.max(...target.scrapeMs), 2),
    fmt(median(target.readMs), 2),
    fmt(percentile(target.readMs, 99), 2),
  ]);
  const p99 = (target: Target, of: 'scrapeMs' | 'readMs') => percentile(target[of], 99);
  const bigP99 = p99(big, 'scrapeMs');
  const over = (target: Target) => target.scrapeMs.filter((ms) => ms > TARGET_P99_MS).length;

  console.log('### Metrics scrape: an empty database vs a long history and a deep queue\n');
  console.log(
    `${machineLine()} · ${QUICK ? '**quick mode: not the figures to quote** · ' : ''}` +
      `\`scrape()\` in-process, one after another, ${ROUNDS} rounds × ${SCRAPES} scrapes per database after ${WARMUP} warm-up scrapes, the order alternating · ` +
      `big: ${JOB_LOGS} job_logs rows, ${BACKLOG} pg-boss jobs queued (${ready} ready, ${BACKLOG - ready} deferred), VACUUM (ANALYZE)d · ` +
      `load average ${fmt(loadBefore, 1)} before the measurement, ${fmt(loadavg()[0]!, 1)} after (2 cores shared with other work) · wall time ${fmt((performance.now() - started) / 1000, 0)} s\n`,
  );
  console.log(markdownTable(['database', 'scrapes', 'scrape p50 ms', 'scrape p99 ms', 'scrape max ms', 'database read p50 ms', 'database read p99 ms'], rows));
  console.log('');
  console.log(`- Target p99 ≤ ${TARGET_P99_MS} ms on the big database: **${bigP99 <= TARGET_P99_MS ? 'met' : 'missed'}** (${fmt(bigP99, 2)} ms).`);
  console.log(
    `- Big / empty: scrape p50 ${ratio(median(big.scrapeMs), median(empty.scrapeMs))}, p99 ${ratio(bigP99, p99(empty, 'scrapeMs'))}; database read p50 ${ratio(median(big.readMs), median(empty.readMs))}, p99 ${ratio(p99(big, 'readMs'), p99(empty, 'readMs'))}.`,
  );
  console.log(`- Scrapes over ${TARGET_P99_MS} ms: ${over(empty)} of ${empty.scrapeMs.length} (empty), ${over(big)} of ${big.scrapeMs.length} (big).`);
  console.log(`- The big scrape: ${check.series} samples, ${check.bytes} bytes; its queue gauges say ${check.ready} ready and ${check.deferred} deferred (right).`);
  console.log(
    scans.length
      ? `- **The probe statement scans a big table**: ${scans.map((line) => line.trim()).join('; ')}.`
      : '- The probe statement reads job_logs and pg-boss\'s job table through their indexes only (no sequential scan; EXPLAIN on stderr).',
  );
});

/** A migrated database with the jobs' queues and schedules, a supervising pg-boss without workers, and metrics on it. */
async function prepare(label: string, url: string): Promise<Target> {
  const database = createDb(url, { max: 10 });
  onCleanup(() => database.close());
  await runMigrations(database.pool);
  const boss = createBoss({ url, logger, schedule: false, cronWorkerIntervalSeconds: 1, cronMonitorIntervalSeconds: 1, useListenNotify: false, instanceName: 'bench-metrics-scrape' });
  await boss.start();
  onCleanup(() => boss.stop({ graceful: false, timeout: 5_000 }));
  await ensureQueues(boss, registry);
  const deps = { db: database.db, boss, registry, defaultTimeZone: 'UTC', logger };
  await seedSchedules(deps);
  await createScheduleSync(deps).reconcile();
  const metrics = createMetrics({ events: noEvents, db: database.db, boss, registry, logger, llmModel: 'gpt-4o-mini' });
  onCleanup(() => metrics.stop());
  return { label, database, boss, metrics, scrapeMs: [], readMs: [] };
}

/** JOB_LOGS closed runs over the last 180 days: the two jobs (45 % each) and retired names, 7 % failed. */
async function seedJobLogs({ pool }: Database): Promise<void> {
  const CHUNK = 250_000;
  for (let lo = 1; lo <= JOB_LOGS; lo += CHUNK) {
    await pool.query(
      `insert into job_logs (job_name, status, started_at, ended_at, items_processed, metadata)
       select (array['extract-blueprints', 'generate-drops', 'extract-blueprints-v1', 'harvest-notices'])[1 + (case when r < 0.45 then 0 when r < 0.9 then 1 when r < 0.95 then 2 else 3 end)],
              case when hashint8(i * 7) % 100 < 7 then 'FAILED' else 'COMPLETED' end,
              started, started + interval '30 seconds', 5,
              jsonb_build_object('job_id', md5(i::text)::uuid, 'trigger', 'cron', 'attempt', 1, 'duration_ms', 30000)
       from (select i, (hashint8(i) & 2147483647)::float8 / 2147483648.0 as r,
                    now() - interval '180 days' + (i::float8 / $3) * interval '180 days' as started
             from generate_series($1::bigint, $2::bigint) as i) s`,
      [lo, Math.min(JOB_LOGS, lo + CHUNK - 1), JOB_LOGS],
    );
  }
}

/** BACKLOG jobs, half to each job: 90 % ready now, 10 % deferred an hour. */
async function seedBacklog(boss: PgBoss): Promise<void> {
  const CHUNK = 5_000;
  for (let i = 0; i < BACKLOG; i += CHUNK) {
    const jobs = Array.from({ length: Math.min(CHUNK, BACKLOG - i) }, (_, k) => ({ data: { trigger: 'manual' }, ...((i + k) % 10 === 9 && { startAfter: 3600 }) }));
    await boss.insert(jobNames[(i / CHUNK) % jobNames.length]!, jobs);
  }
}

async function explain({ db }: Database): Promise<string[]> {
  const { rows } = await db.execute<{ 'QUERY PLAN': string }>(sql`explain (analyze, buffers) ${snapshotStatement(jobNames, 'pgboss')}`);
  return rows.map((row) => `    ${row['QUERY PLAN']}`);
}

/** 1 M, 100 k. */
function count(n: number): string {
  return n >= 1_000_000 ? `${n / 1_000_000} M` : `${n / 1_000} k`;
}

function sumOf(text: string, pattern: RegExp): number {
  return [...text.matchAll(pattern)].reduce((sum, match) => sum + Number(match[1]), 0);
}
