/**
 * How job_logs stores runs, by fillfactor: the share of closing updates that stay on their page
 * (HOT: no new index entries), heap and index bytes per run, and PostgreSQL CPU per run. This is
 * the figure behind the fillfactor migration 0003 (B1's closing update is most of the gap to (b)).
 *
 * Runs go through the real runner (src/boss/runner.ts: STARTED insert, no-op handler, closing
 * update), with pg-boss jobs made up in memory (no queue, so only job_logs is written): first in
 * batches of 500, as a batched job runs, then one at a time, as the MemoDrops jobs run. Each
 * fillfactor gets a fresh database.
 *
 *   cd /work/main && npm exec -- node bench/log-storage.ts [--quick]
 *   BENCH_FILLFACTORS=85,50,30 to change what is measured.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { JobWithMetadata } from 'pg-boss';
import { createRunner } from '../src/boss/runner.ts';
import { createDb } from '../src/db/client.ts';
import { runMigrations } from '../src/db/migrate.ts';
import { sleep } from '../testkit/poll.ts';
import { fmt, machineLine, main, markdownTable, noopJob, note, onCleanup, postgresCpuUs, quietLogger, sized, startPostgres } from './lib.ts';

const BATCH = 500;
const BATCHED_RUNS = sized(10_000, 40_000);
const SINGLE_RUNS = sized(1_000, 4_000);
const FILLFACTORS = (process.env.BENCH_FILLFACTORS ?? '100,85,50,40,30').split(',').map(Number);

type Phase = { hot: number; heapBytesPerRun: number; indexBytesPerRun: number; pgCpuUsPerRun: number; runnerCpuUsPerRun: number; wallUsPerRun: number };

await main(async () => {
  const postgres = await startPostgres('log-storage');
  const pgDir = join(postgres.dataDir, 'postgres');
  const results: { fillfactor: number; batched: Phase; single: Phase }[] = [];
  for (const fillfactor of FILLFACTORS) {
    note(`fillfactor ${fillfactor}: ${BATCHED_RUNS} runs in batches of ${BATCH}, then ${SINGLE_RUNS} one at a time`);
    results.push({ fillfactor, ...(await measure(await postgres.createDatabase(`bench_ls_${fillfactor}`), pgDir, fillfactor)) });
  }

  const row = (fillfactor: number, phase: Phase) => [
    String(fillfactor),
    `${fmt(phase.hot * 100, 0)} %`,
    fmt(phase.heapBytesPerRun, 0),
    fmt(phase.indexBytesPerRun, 0),
    fmt(phase.pgCpuUsPerRun, 1),
    fmt(phase.runnerCpuUsPerRun, 1),
    fmt(phase.wallUsPerRun, 1),
  ];
  const headers = ['fillfactor', 'closing updates HOT', 'heap bytes/run', 'index bytes/run', 'PostgreSQL CPU µs/run', 'runner process CPU µs/run', 'wall µs/run'];
  console.log('### job_logs storage by fillfactor (behind migration 0003)\n');
  console.log(`${machineLine()} · runs through src/boss/runner.ts with a no-op handler · fresh database per fillfactor · PostgreSQL CPU from /proc (10 ms ticks); the runner's process CPU includes making up the jobs\n`);
  console.log(`${BATCHED_RUNS} runs in batches of ${BATCH} (one insert opens a batch's logs, one update closes them):\n`);
  console.log(markdownTable(headers, results.map((r) => row(r.fillfactor, r.batched))));
  console.log(`\nThen ${SINGLE_RUNS} runs one at a time (batch 1, as the MemoDrops jobs run), on the same table:\n`);
  console.log(markdownTable(headers, results.map((r) => row(r.fillfactor, r.single))));
});

async function measure(url: string, pgDir: string, fillfactor: number): Promise<{ batched: Phase; single: Phase }> {
  const database = createDb(url, { max: 1 });
  onCleanup(() => database.close());
  await runMigrations(database.pool);
  await database.pool.query(`alter table job_logs set (fillfactor = ${fillfactor})`);
  const logger = quietLogger('warn');
  const runner = createRunner({
    db: database.db,
    // The benchmark's runs never fail, so the queue is never read.
    boss: { findJobs: async () => [] },
    worker: 'bench',
    llm: { model: 'none', session: () => { throw new Error('the benchmark job makes no LLM call'); } },
    logger,
    settings: { extractBatchSize: 1, llmConcurrency: 1, dropsBatchSize: 1 },
  });
  const job = noopJob(() => {}, { name: 'bench-log-storage' });
  const jobsOf = (n: number): JobWithMetadata<unknown>[] =>
    Array.from({ length: n }, () => ({ id: randomUUID(), name: job.name, data: { trigger: 'manual' }, signal: new AbortController().signal, expireInSeconds: 900, retryCount: 0, retryLimit: 0, createdOn: new Date() }) as unknown as JobWithMetadata<unknown>);

  const stats = async () => {
    // Counters reach pg_stat_user_tables when a backend reports them; force it for this one.
    await database.pool.query('select pg_stat_force_next_flush()');
    const { rows } = await database.pool.query<{ upd: string; hot: string; heap: string; indexes: string }>(
      `select n_tup_upd as upd, n_tup_hot_upd as hot, pg_relation_size('job_logs') as heap, pg_indexes_size('job_logs') as indexes
       from pg_stat_user_tables where relname = 'job_logs'`,
    );
    return { updates: Number(rows[0]!.upd), hot: Number(rows[0]!.hot), heap: Number(rows[0]!.heap), indexes: Number(rows[0]!.indexes) };
  };
  const phase = async (runs: number, batch: number): Promise<Phase> => {
    const before = await stats();
    const cpuBefore = await postgresCpuUs(pgDir);
    const runnerCpuBefore = process.cpuUsage();
    const started = performance.now();
    for (let done = 0; done < runs; done += batch) await runner.runBatch(job, jobsOf(batch));
    const wallUs = (performance.now() - started) * 1000;
    const runnerCpu = process.cpuUsage(runnerCpuBefore);
    const pgCpuUs = (await postgresCpuUs(pgDir)) - cpuBefore;
    // The statistics collector may lag a moment behind the last statement.
    await sleep(1_100);
    const after = await stats();
    return {
      hot: (after.hot - before.hot) / (after.updates - before.updates),
      heapBytesPerRun: (after.heap - before.heap) / runs,
      indexBytesPerRun: (after.indexes - before.indexes) / runs,
      pgCpuUsPerRun: pgCpuUs / runs,
      runnerCpuUsPerRun: (runnerCpu.user + runnerCpu.system) / runs,
      wallUsPerRun: wallUs / runs,
    };
  };
  const batched = await phase(BATCHED_RUNS, BATCH);
  const single = await phase(SINGLE_RUNS, 1);
  const { rows } = await database.pool.query<{ n: number }>(`select count(*)::int as n from job_logs where status = 'COMPLETED'`);
  if (rows[0]!.n !== BATCHED_RUNS + SINGLE_RUNS) throw new Error(`expected ${BATCHED_RUNS + SINGLE_RUNS} COMPLETED logs, found ${rows[0]!.n}`);
  await database.close();
  return { batched, single };
}
