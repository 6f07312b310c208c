/**
 * What latency the operator gets behind PgBouncer: manual run request → run started, and cron
 * occurrence → run started, direct vs session pooling vs transaction pooling.
 *
 *   (a) direct to PostgreSQL, USE_LISTEN_NOTIFY=true (the default)
 *   (b) PgBouncer, session pooling, USE_LISTEN_NOTIFY=true
 *   (c) PgBouncer, transaction pooling, USE_LISTEN_NOTIFY=false (what the startup check asks for)
 *   (d) direct, USE_LISTEN_NOTIFY=false: (c) without PgBouncer, to tell polling from the pooler
 *   (e) raw pg-boss through transaction pooling with useListenNotify on, as the service would run
 *       without its startup check: its LISTEN "succeeds", so workers fall back to pg-boss's relaxed
 *       poll. A few manual runs only (full mode), since each can take tens of seconds.
 *
 * Each of (a)–(d) is INSTANCES in-process services (startService, as B3/B7) on databases of their
 * own, started at offsets spread over 30 s (lateness depends on the phase of an instance's timers),
 * with two no-op jobs: `bench-manual` (no schedule) and `bench-cron` (`* * * * *`). Both figures are
 * measured at once: while the cron boundaries go by, manual runs are requested over real HTTP
 * (POST /api/jobs/run/bench-manual), one at a time per variant after a pseudo-random 0–2 s gap,
 * rotating over the instances. Latency = handler start − the moment before the POST (one process,
 * performance.now()); lateness = handler start − the minute boundary (Date.now()). Boundaries are
 * counted from the first one after every instance is up.
 *
 * Skips (exit 0, with a message) where pgbouncer is not installed.
 *
 *   cd /work/main && npm exec -- node bench/pgbouncer.ts            # ~8 min (4 boundaries, then (e))
 *   cd /work/main && npm exec -- node bench/pgbouncer.ts --quick    # ~1.5 min (1 boundary)
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { PgBoss } from 'pg-boss';
import { createRegistry } from '../src/jobs/registry.ts';
import { parseEnv } from '../src/env.ts';
import { startService, type Service } from '../src/service.ts';
import { findPgBouncer, pgBouncerVersion, startPgBouncer, type PgBouncer } from '../testkit/pgbouncer.ts';
import { sleep } from '../testkit/poll.ts';
import { fmt, machineLine, main, markdownTable, max, median, min, note, noopJob, onCleanup, percentile, quietLogger, seededRandom, sized, startPostgres } from './lib.ts';

const INSTANCES = sized(2, 3);
const STAGGER_MS = 30_000;
const BOUNDARIES = sized(1, 4);
const MANUAL_GAP_MS = 2_000;
const RAW_RUNS = sized(0, 6);
const MINUTE = 60_000;
const MANUAL = 'bench-manual';
const CRON_JOB = 'bench-cron';
const QUICK_NOTE = sized('Quick mode: too few samples to quote; (e) not run.', '');

type Variant = 'a' | 'b' | 'c' | 'd';
const VARIANTS: Variant[] = ['a', 'b', 'c', 'd'];
const LABELS: Record<Variant, string> = {
  a: '(a) direct, USE_LISTEN_NOTIFY=true',
  b: '(b) PgBouncer session pooling, USE_LISTEN_NOTIFY=true',
  c: '(c) PgBouncer transaction pooling, USE_LISTEN_NOTIFY=false',
  d: '(d) direct, USE_LISTEN_NOTIFY=false',
};

type Instance = { variant: Variant; service: Service; cronStarts: number[]; onManualStart?: () => void };

await main(async () => {
  const binary = findPgBouncer();
  if (!binary) {
    console.log('### PgBouncer latency\n\nSkipped: pgbouncer is not installed (Debian: `apt-get install -y pgbouncer`).');
    return;
  }
  const version = await pgBouncerVersion(binary);
  const loadBefore = loadavg()[0]!;
  const postgres = await startPostgres('pgbouncer');
  // Session pooling pins a server connection per client connection: room for every instance's pools.
  const session = await startPgBouncer({ serverUrl: postgres.adminUrl, mode: 'session', poolSize: 60 });
  onCleanup(() => session.stop());
  const transaction = await startPgBouncer({ serverUrl: postgres.adminUrl, mode: 'transaction', poolSize: 5 });
  onCleanup(() => transaction.stop());
  const through: Record<Variant, PgBouncer | undefined> = { a: undefined, b: session, c: transaction, d: undefined };
  const listen: Record<Variant, boolean> = { a: true, b: true, c: false, d: false };

  const startInstance = async (variant: Variant, index: number): Promise<Instance> => {
    const direct = await postgres.createDatabase(`bench_pgb_${variant}_${index}`);
    const url = through[variant]?.url(direct) ?? direct;
    const instance: Instance = { variant, service: undefined as unknown as Service, cronStarts: [] };
    const registry = createRegistry([
      noopJob(() => instance.onManualStart?.(), { name: MANUAL }),
      noopJob(() => instance.cronStarts.push(Date.now()), { name: CRON_JOB, defaultCron: '* * * * *' }),
    ]);
    const env = parseEnv({ DATABASE_URL: url, PORT: '0', SCHEDULER_TIMEZONE: 'UTC', LOG_LEVEL: 'info', RUN_RATE_LIMIT_PER_MINUTE: '10000', USE_LISTEN_NOTIFY: String(listen[variant]) });
    instance.service = await startService(env, quietLogger(), registry);
    onCleanup(() => instance.service.stop());
    return instance;
  };

  note(`${version}; starting ${INSTANCES} instances per variant over ${STAGGER_MS / 1000} s`);
  const t0 = Date.now();
  const offsets = Array.from({ length: INSTANCES }, (_, i) => (i * STAGGER_MS) / INSTANCES);
  const instances = (
    await Promise.all(
      offsets.map(async (offset, i) => {
        await sleep(t0 + offset - Date.now());
        return Promise.all(VARIANTS.map((v) => startInstance(v, i)));
      }),
    )
  ).flat();
  // The first boundary at least 3 s after the last instance came up, and those after it.
  const first = Math.ceil((Date.now() + 3_000) / MINUTE) * MINUTE;
  const boundaries = Array.from({ length: BOUNDARIES }, (_, k) => first + k * MINUTE);
  const end = boundaries.at(-1)! + 15_000;
  note(`all up after ${((Date.now() - t0) / 1000).toFixed(1)} s; counting boundaries ${boundaries.map((b) => new Date(b).toISOString().slice(11, 16)).join(', ')} UTC`);

  // Manual runs until the last boundary has had time to fire, one variant after another per round.
  const manual = new Map<Variant, number[]>(VARIANTS.map((v) => [v, []]));
  const random = seededRandom(20_261_202);
  for (let round = 0; Date.now() < end || round < 3; round++) {
    for (const v of VARIANTS) {
      await sleep(random() * MANUAL_GAP_MS);
      const list = instances.filter((i) => i.variant === v);
      const instance = list[round % list.length]!;
      manual.get(v)!.push(await manualRun(instance));
    }
  }

  // (e): the failure mode the startup check prevents, measured on raw pg-boss.
  const raw: number[] = [];
  if (RAW_RUNS > 0) {
    note(`(e) raw pg-boss, LISTEN on, through transaction pooling: ${RAW_RUNS} runs`);
    const url = transaction.url(await postgres.createDatabase('bench_pgb_raw'));
    const boss = new PgBoss({ connectionString: url, useListenNotify: true, schedule: false });
    boss.on('error', (error) => note(`(e) pg-boss error: ${error.message}`));
    await boss.start();
    onCleanup(() => boss.stop({ graceful: false, timeout: 5_000 }));
    await boss.createQueue(MANUAL, { policy: 'stately', notify: true });
    let onStart: (() => void) | undefined;
    // The service's worker options: a 2 s poll (src/boss/workers.ts).
    await boss.work(MANUAL, { pollingIntervalSeconds: 2 }, async () => onStart?.());
    await sleep(2_000);
    for (let k = 0; k < RAW_RUNS; k++) {
      await sleep(random() * MANUAL_GAP_MS);
      const started = new Promise<number>((resolve) => (onStart = () => resolve(performance.now())));
      const t = performance.now();
      await boss.send(MANUAL, { trigger: 'manual' });
      const at = await Promise.race([started, sleep(120_000).then(() => Number.NaN)]);
      raw.push(at - t);
      note(`  (e) run ${k + 1}: ${fmt((at - t) / 1000, 1)} s`);
      await sleep(200);
    }
  }

  const lateness = new Map<Variant, number[]>(VARIANTS.map((v) => [v, []]));
  let missing = 0;
  for (const instance of instances) {
    for (const boundary of boundaries) {
      const start = instance.cronStarts.filter((t) => t >= boundary && t < boundary + MINUTE).sort((x, y) => x - y)[0];
      if (start === undefined) missing += 1;
      else lateness.get(instance.variant)!.push((start - boundary) / 1000);
    }
  }

  const cells = (xs: number[], digits: number) => [String(xs.length), fmt(min(xs), digits), fmt(median(xs), digits), fmt(percentile(xs, 95), digits), fmt(max(xs), digits)];
  console.log('### PgBouncer: manual-run pickup and cron lateness, direct vs session vs transaction pooling\n');
  console.log(
    `${machineLine()} · ${version} (session pool_size 60, transaction pool_size 5) · ${INSTANCES} instances per variant started over ${STAGGER_MS / 1000} s · ` +
      `${BOUNDARIES} counted boundaries · manual runs one at a time per variant, 0–${MANUAL_GAP_MS} ms gap before each · load average (1 min) ${loadBefore.toFixed(1)} at start, ${loadavg()[0]!.toFixed(1)} at end\n`,
  );
  console.log('Manual run: `POST /api/jobs/run/:job` → handler start, ms:\n');
  console.log(
    markdownTable(
      ['variant', 'n', 'min', 'p50', 'p95', 'max'],
      [
        ...VARIANTS.map((v) => [LABELS[v], ...cells(manual.get(v)!, 1)]),
        ...(raw.length ? [['(e) raw pg-boss through transaction pooling, LISTEN on (refused by the startup check)', ...cells(raw, 0)]] : []),
      ],
    ),
  );
  console.log('\nCron `* * * * *`: minute boundary → handler start, s:\n');
  console.log(markdownTable(['variant', 'n', 'min', 'p50', 'p95', 'max'], VARIANTS.map((v) => [LABELS[v], ...cells(lateness.get(v)!, 2)])));
  console.log('');
  if (missing) console.log(`- **${missing} boundary × instance pairs had no run.**`);
  const p50 = (m: Map<Variant, number[]>, v: Variant, digits: number) => fmt(median(m.get(v)!), digits);
  console.log(`- Manual runs p50: (a) ${p50(manual, 'a', 1)}, (b) ${p50(manual, 'b', 1)}, (c) ${p50(manual, 'c', 0)}, (d) ${p50(manual, 'd', 0)} ms. Cron p50: (a) ${p50(lateness, 'a', 2)}, (b) ${p50(lateness, 'b', 2)}, (c) ${p50(lateness, 'c', 2)}, (d) ${p50(lateness, 'd', 2)} s.`);
  console.log('- (a) vs (b) is what session pooling adds. (c) and (d) both wait for the worker\'s 2 s poll (a manual run lands at any phase of it: 0–2 s), and the cron send-it worker\'s 1 s poll; their difference is within that spread.');
  if (QUICK_NOTE) console.log(`- ${QUICK_NOTE}`);
});

/** One manual run over HTTP; resolves with request → handler start in ms. */
async function manualRun(instance: Instance): Promise<number> {
  const started = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${LABELS[instance.variant]}: manual run did not start within 30 s`)), 30_000);
    instance.onManualStart = () => {
      clearTimeout(timer);
      instance.onManualStart = undefined;
      resolve(performance.now());
    };
  });
  const t = performance.now();
  const res = await fetch(`${instance.service.url}/api/jobs/run/${MANUAL}`, { method: 'POST' });
  if (res.status !== 202) throw new Error(`${LABELS[instance.variant]}: POST answered ${res.status}: ${await res.text()}`);
  const at = await started;
  // Stately queue: let the run complete before the next request, so none is refused as waiting.
  await sleep(50);
  return at - t;
}
