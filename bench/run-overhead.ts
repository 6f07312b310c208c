/**
 * Per-run cost of our runner (job_logs STARTED → COMPLETED, job_schedule update, child logger) over
 * raw pg-boss: throughput of sequential no-op runs and the process's memory after many runs.
 *
 *   raw:     pg-boss with the options createBoss() uses (LISTEN/NOTIFY, 1 s cron intervals,
 *            supervise every 10 s), a stately notify: true queue, work() with the options
 *            registerWorkers() uses (batchSize 1, localConcurrency 1, polling 2 s), a no-op handler.
 *   service: startService() with a registry of one no-op job, so each run goes through the runner.
 *
 * Each variant runs in a child process of its own (clean memory, --expose-gc) on a fresh database.
 * Runs are sequential: the worker takes one job at a time; the next job is sent the moment the
 * previous handler starts, so the worker never waits for the driver and the figure is the worker's
 * per-run cost (fetch, handler, completion, and for the service the runner's own writes).
 *
 *   cd /work/main && npm exec -- node bench/run-overhead.ts
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { PgBoss } from 'pg-boss';
import { createRegistry } from '../src/boss/registry.ts';
import { parseEnv } from '../src/env.ts';
import { startService } from '../src/service.ts';
import {
  fmt,
  machineLine,
  main,
  markdownTable,
  median,
  mib,
  note,
  noopJob,
  NOOP_OUTCOME,
  onCleanup,
  quietLogger,
  ratio,
  ROOT,
  waitCompleted,
  startPostgres,
} from './lib.ts';

const QUEUE = 'bench-noop';
/** Overridable for a longer look at memory: BENCH_BATCHES=3 BENCH_BATCH_SIZE=3000 BENCH_ROUNDS=1. */
const WARMUP = 50;
const BATCHES = Number(process.env.BENCH_BATCHES ?? 3);
const BATCH_SIZE = Number(process.env.BENCH_BATCH_SIZE ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);

type Mode = 'raw' | 'service';
type Memory = { rss: number; heapUsed: number; heapTotal: number; external: number };
type ChildResult = { mode: Mode; runsPerSecond: number[]; runs: number; afterWarmup: Memory; afterBatches: Memory[]; afterRuns: Memory; jobLogsCompleted: number | null };

if (process.argv[2] === '--child') {
  await child(process.argv[3] as Mode, process.argv[4]!);
} else {
  await parent();
}

async function parent(): Promise<void> {
  await main(async () => {
    const postgres = await startPostgres('overhead');
    const results: ChildResult[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      for (const mode of ['raw', 'service'] as const) {
        const url = await postgres.createDatabase(`bench_overhead_${mode}_${round}`);
        note(`round ${round}: ${mode}`);
        results.push(await runChild(mode, url));
      }
    }

    const of = (mode: Mode) => results.filter((r) => r.mode === mode);
    const summary = (mode: Mode) => {
      const rs = of(mode);
      const mean = (pick: (r: ChildResult) => number) => rs.reduce((sum, r) => sum + pick(r), 0) / rs.length;
      return {
        runsPerSecond: median(rs.flatMap((r) => r.runsPerSecond)),
        batches: rs.flatMap((r) => r.runsPerSecond),
        runs: rs[0]!.runs,
        rssWarm: mean((r) => r.afterWarmup.rss),
        rssEnd: mean((r) => r.afterRuns.rss),
        heapWarm: mean((r) => r.afterWarmup.heapUsed),
        heapEnd: mean((r) => r.afterRuns.heapUsed),
        // Heap growth between the first and the last timed batch, per run: past warm-up, a steady
        // slope is what a leak would look like.
        heapSlope: mean((r) => (r.afterRuns.heapUsed - r.afterBatches[0]!.heapUsed) / ((BATCHES - 1) * BATCH_SIZE)),
        logs: rs.map((r) => r.jobLogsCompleted),
      };
    };
    const raw = summary('raw');
    const svc = summary('service');
    const row = (label: string, s: ReturnType<typeof summary>) => [
      label,
      fmt(s.runsPerSecond, 0),
      s.batches.map((x) => x.toFixed(0)).join(', '),
      fmt(1000 / s.runsPerSecond, 2),
      mib(s.rssWarm),
      mib(s.rssEnd),
      mib(s.heapWarm),
      mib(s.heapEnd),
      BATCHES > 1 ? fmt(s.heapSlope, 0) : '—',
    ];
    console.log('### Run overhead: sequential no-op runs, raw pg-boss vs our runner\n');
    console.log(
      `${machineLine()} · per process: ${WARMUP} warm-up runs, then ${BATCHES} timed batches of ${BATCH_SIZE}; ${ROUNDS} processes per variant (alternating); memory after global.gc(), mean of the processes\n`,
    );
    console.log(
      markdownTable(
        ['variant', 'runs/s (median)', 'runs/s per batch', 'ms per run', `RSS MiB after warm-up`, `RSS MiB after ${raw.runs} runs`, 'heapUsed MiB after warm-up', `heapUsed MiB after ${raw.runs} runs`, 'heap growth, bytes/run (batch 1 → last)'],
        [
          row('raw pg-boss work(), no-op handler', raw),
          row('our service: runner + no-op handler', svc),
          [
            'ratio service / raw',
            ratio(svc.runsPerSecond, raw.runsPerSecond),
            '',
            ratio(1000 / svc.runsPerSecond, 1000 / raw.runsPerSecond),
            ratio(svc.rssWarm, raw.rssWarm),
            ratio(svc.rssEnd, raw.rssEnd),
            ratio(svc.heapWarm, raw.heapWarm),
            ratio(svc.heapEnd, raw.heapEnd),
            '',
          ],
        ],
      ),
    );
    console.log(`\njob_logs rows COMPLETED per service process: ${svc.logs.join(', ')} (expected ${svc.runs} each)`);
  });
}

function runChild(mode: Mode, url: string): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const script = fileURLToPath(import.meta.url);
    const proc = spawn(process.execPath, ['--expose-gc', script, '--child', mode, url], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    proc.stdout.on('data', (d) => (stdout += d));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 300_000);
    onCleanup(() => {
      if (proc.exitCode === null) proc.kill('SIGKILL');
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').reverse().find((l) => l.startsWith('{'));
      if (code !== 0 || !line) return reject(new Error(`${mode} child exited ${code}: ${stdout}`));
      resolve(JSON.parse(line) as ChildResult);
    });
  });
}

async function child(mode: Mode, url: string): Promise<void> {
  let onStart: (() => void) | undefined;
  const handlerStarted = () => onStart?.();
  let boss: PgBoss;
  let countLogs = async (): Promise<number | null> => null;
  let stop: () => Promise<void>;

  if (mode === 'raw') {
    // The options of src/boss/client.ts createBoss(), without our logger.
    boss = new PgBoss({
      connectionString: url,
      application_name: 'bench:raw-pg-boss',
      max: 10,
      connectionTimeoutMillis: 5_000,
      schedule: true,
      cronWorkerIntervalSeconds: 1,
      cronMonitorIntervalSeconds: 1,
      useListenNotify: true,
      superviseIntervalSeconds: 10,
    });
    boss.on('error', (error) => note(`pg-boss error: ${error.message}`));
    await boss.start();
    await boss.createQueue(QUEUE, { policy: 'stately', notify: true });
    // The options of src/boss/workers.ts registerWorkers().
    await boss.work(QUEUE, { includeMetadata: true, batchSize: 1, localConcurrency: 1, pollingIntervalSeconds: 2 }, async ([job]) => {
      if (job) {
        handlerStarted();
        return NOOP_OUTCOME;
      }
    });
    const b = boss;
    stop = () => b.stop({ graceful: true, timeout: 5_000 });
  } else {
    const env = parseEnv({ DATABASE_URL: url, PORT: '0', SCHEDULER_TIMEZONE: 'UTC', LOG_LEVEL: 'info' });
    const service = await startService(env, quietLogger(), createRegistry([noopJob(handlerStarted, { name: QUEUE })]));
    boss = service.boss;
    countLogs = async () => {
      const { rows } = await service.database.pool.query<{ n: number }>(`select count(*)::int as n from job_logs where job_name = $1 and status = 'COMPLETED'`, [QUEUE]);
      return rows[0]!.n;
    };
    stop = () => service.stop();
  }

  const nextStart = () =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('handler did not start within 30 s')), 30_000);
      onStart = () => {
        clearTimeout(timer);
        onStart = undefined;
        resolve();
      };
    });

  /** n sequential runs; returns runs per second, counted until the last job is completed. */
  const batch = async (n: number): Promise<number> => {
    const t0 = performance.now();
    let last: string | null = null;
    for (let i = 0; i < n; i++) {
      const started = nextStart();
      last = await boss.send(QUEUE, { trigger: 'manual' });
      if (!last) throw new Error(`send refused run ${i}: the stately queue already had a job waiting`);
      await started;
    }
    await waitCompleted(boss, QUEUE, last!, 2);
    return n / ((performance.now() - t0) / 1000);
  };

  await batch(WARMUP);
  const afterWarmup = memory();
  const runsPerSecond: number[] = [];
  const afterBatches: Memory[] = [];
  for (let i = 0; i < BATCHES; i++) {
    runsPerSecond.push(await batch(BATCH_SIZE));
    afterBatches.push(memory());
  }
  const afterRuns = afterBatches.at(-1)!;
  const jobLogsCompleted = await countLogs();
  await stop();
  const result: ChildResult = { mode, runsPerSecond, runs: WARMUP + BATCHES * BATCH_SIZE, afterWarmup, afterBatches, afterRuns, jobLogsCompleted };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

function memory(): Memory {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const { rss, heapUsed, heapTotal, external } = process.memoryUsage();
  return { rss, heapUsed, heapTotal, external };
}
