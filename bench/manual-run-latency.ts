/**
 * On-demand run latency: from the request to the handler starting.
 *
 *   (a) raw pg-boss send() → work() handler, default options (worker polls every 2 s)
 *   (b) raw pg-boss with useListenNotify and a notify: true queue
 *   (c) our service: POST /api/jobs/run/:name over real HTTP → the no-op handler (through the runner)
 *
 * Runs are sequential: each waits for the previous job to be completed (our queues are stately),
 * then for a pseudo-random idle gap (0–2 s, the same sequence for every variant) so the request
 * lands at a random phase of the worker's polling loop, as a real request would.
 *
 *   cd /work/main && npm exec -- node bench/manual-run-latency.ts
 */
import { performance } from 'node:perf_hooks';
import { PgBoss } from 'pg-boss';
import { createRegistry } from '../src/boss/registry.ts';
import { parseEnv } from '../src/env.ts';
import { startService } from '../src/service.ts';
import {
  fmt,
  machineLine,
  main,
  markdownTable,
  max,
  median,
  min,
  note,
  noopJob,
  onCleanup,
  percentile,
  quietLogger,
  ratio,
  seededRandom,
  sleep,
  waitCompleted,
  startPostgres,
} from './lib.ts';

const N = 30;
const WARMUP = 3;
const MAX_GAP_MS = 2_000;
const QUEUE = 'bench-noop';

type Measured = { label: string; latency: number[]; response: number[] };

/** Set by the benchmark before each request; the handler resolves it with its start time. */
let onHandlerStart: ((at: number) => void) | undefined;
const handlerStarted = () => onHandlerStart?.(performance.now());

await main(async () => {
  const postgres = await startPostgres('manual');
  const results: Measured[] = [];

  // (a) raw pg-boss, default options.
  {
    const url = await postgres.createDatabase('bench_manual_a');
    const boss = await rawBoss(url, false);
    results.push(await measure('(a) raw pg-boss send() → work(), default polling', () => boss.send(QUEUE, { trigger: 'manual' }), boss));
    await boss.stop({ graceful: false, timeout: 5_000 });
  }

  // (b) raw pg-boss, LISTEN/NOTIFY.
  {
    const url = await postgres.createDatabase('bench_manual_b');
    const boss = await rawBoss(url, true);
    results.push(await measure('(b) raw pg-boss send() → work(), LISTEN/NOTIFY', () => boss.send(QUEUE, { trigger: 'manual' }), boss));
    await boss.stop({ graceful: false, timeout: 5_000 });
  }

  // (c) our service over HTTP.
  {
    const url = await postgres.createDatabase('bench_manual_c');
    const env = parseEnv({ DATABASE_URL: url, PORT: '0', SCHEDULER_TIMEZONE: 'UTC', LOG_LEVEL: 'info', RUN_RATE_LIMIT_PER_MINUTE: '10000' });
    const service = await startService(env, quietLogger(), createRegistry([noopJob(handlerStarted, { name: QUEUE })]));
    onCleanup(() => service.stop());
    const post = async () => {
      const response = await fetch(`${service.url}/api/jobs/run/${QUEUE}`, { method: 'POST' });
      const body = (await response.json()) as { jobId?: string };
      if (response.status !== 202 || !body.jobId) throw new Error(`POST /api/jobs/run answered ${response.status}: ${JSON.stringify(body)}`);
      return body.jobId;
    };
    results.push(await measure('(c) our service: POST /api/jobs/run/:name (HTTP) → handler', post, service.boss));
    await service.stop();
  }

  const [a, b] = results;
  const rows = results.map((r) => [
    r.label,
    String(r.latency.length),
    fmt(median(r.latency), 1),
    fmt(percentile(r.latency, 95), 1),
    fmt(min(r.latency), 1),
    fmt(max(r.latency), 1),
    fmt(median(r.response), 1),
    ratio(median(r.latency), median(a!.latency), 3),
    ratio(median(r.latency), median(b!.latency), 2),
    ratio(percentile(r.latency, 95), percentile(b!.latency, 95), 2),
  ]);
  console.log('### Manual-run latency: request → handler start (ms)\n');
  console.log(`${machineLine()} · ${N} sequential runs per variant after ${WARMUP} warm-up runs, idle gap 0–${MAX_GAP_MS} ms before each\n`);
  console.log(
    markdownTable(
      ['variant', 'n', 'median ms', 'p95 ms', 'min ms', 'max ms', 'send/POST returns, median ms', 'median vs (a)', 'median vs (b)', 'p95 vs (b)'],
      rows,
    ),
  );
});

async function rawBoss(url: string, listenNotify: boolean): Promise<PgBoss> {
  const boss = new PgBoss(listenNotify ? { connectionString: url, useListenNotify: true } : { connectionString: url });
  boss.on('error', (error) => note(`pg-boss error: ${error.message}`));
  await boss.start();
  let stopped = false;
  onCleanup(() => (stopped ? undefined : boss.stop({ graceful: false, timeout: 5_000 })));
  boss.once('stopped', () => (stopped = true));
  await boss.createQueue(QUEUE, { policy: 'stately', ...(listenNotify ? { notify: true } : {}) });
  await boss.work(QUEUE, async () => {
    handlerStarted();
  });
  return boss;
}

/** N + WARMUP sequential runs: gap, trigger, wait for the handler, wait for the job to be completed. */
async function measure(label: string, trigger: () => Promise<string | null>, boss: PgBoss): Promise<Measured> {
  note(`measuring ${label}`);
  const random = seededRandom(20_261_128);
  const latency: number[] = [];
  const response: number[] = [];
  for (let i = 0; i < N + WARMUP; i++) {
    await sleep(random() * MAX_GAP_MS);
    const started = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${label}: handler did not start within 30 s`)), 30_000);
      onHandlerStart = (at) => {
        clearTimeout(timer);
        onHandlerStart = undefined;
        resolve(at);
      };
    });
    const t0 = performance.now();
    const id = await trigger();
    const returned = performance.now();
    if (!id) throw new Error(`${label}: send refused run ${i} (a run still waiting?)`);
    const at = await started;
    await waitCompleted(boss, QUEUE, id, 10);
    if (i >= WARMUP) {
      latency.push(at - t0);
      response.push(returned - t0);
    }
  }
  return { label, latency, response };
}
