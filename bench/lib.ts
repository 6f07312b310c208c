/**
 * Shared helpers for the benchmarks in bench/: a throw-away embedded PostgreSQL, cleanup that runs
 * even on failure or Ctrl-C, a quiet logger, a no-op job, small statistics and markdown tables.
 */
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { PgBoss } from 'pg-boss';
import type { JobDefinition, JobOutcome } from '../src/jobs/job.ts';
import { pgCtl, startEmbeddedPostgres } from '../src/db/embedded.ts';
import { withClient } from '../src/db/with-client.ts';
import { createLogger, type Logger } from '../src/logger.ts';
import { waitFor } from '../testkit/poll.ts';
import { freePort } from '../testkit/ports.ts';
import { withDatabase } from '../testkit/postgres.ts';
import type { RunningProcess } from '../testkit/processes.ts';

export { ROOT } from '../testkit/processes.ts';

// ---------------------------------------------------------------------------------------------
// Cleanup

const cleanups: Array<() => Promise<void> | void> = [];
let cleaning: Promise<void> | undefined;

/** Registers a cleanup step; steps run in reverse order of registration. */
export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

async function runCleanups(): Promise<void> {
  cleaning ??= (async () => {
    for (const fn of cleanups.reverse().splice(0)) {
      await Promise.resolve()
        .then(fn)
        .catch((error) => console.error(`cleanup step failed: ${String(error)}`));
    }
  })();
  return cleaning;
}

/** Runs a benchmark's body, then every cleanup step, whatever happened (signals included). */
export async function main(body: () => Promise<void>): Promise<void> {
  const onSignal = (signal: NodeJS.Signals) => {
    console.error(`${signal}: cleaning up`);
    void runCleanups().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let failed = false;
  try {
    await body();
  } catch (error) {
    failed = true;
    console.error(error);
  } finally {
    await runCleanups();
  }
  // pg-boss or pg may leave unref'd-but-pending work behind; the benchmark is done.
  process.exit(failed ? 1 : 0);
}

// ---------------------------------------------------------------------------------------------
// Processes, ports, PostgreSQL

/** Polls pg-boss until job `id` of `queue` is completed; throws if it ends any other way or takes over 30 s. */
export async function waitCompleted(boss: PgBoss, queue: string, id: string, pollMs: number): Promise<void> {
  const settled = await waitFor(
    `job ${id} to complete`,
    async () => {
      const [job] = await boss.findJobs(queue, { id });
      return job && job.state !== 'active' && job.state !== 'created' ? job : undefined;
    },
    30_000,
    pollMs,
  );
  if (settled.state !== 'completed') throw new Error(`job ${id} ended ${settled.state}`);
}

/** A fresh temp dir the `postgres` OS user can traverse (the server runs as that user when we are root). */
export async function tempDir(label: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `memodrops-bench-${label}-`));
  await chmod(dir, 0o755);
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export type BenchPostgres = {
  /** URL of the `postgres` database. */
  adminUrl: string;
  port: number;
  dataDir: string;
  /** Creates an empty database and returns its URL. */
  createDatabase(name: string): Promise<string>;
};

/**
 * Starts an embedded PostgreSQL (src/db/embedded.ts) in a temp dir on a free port. It is stopped
 * and the dir removed by the cleanup steps, after everything registered later (pools, services).
 */
export async function startPostgres(label: string): Promise<BenchPostgres> {
  const dataDir = await tempDir(label);
  const port = await freePort();
  onCleanup(() => forceStopPostgres(join(dataDir, 'postgres')));
  const server = await startEmbeddedPostgres({ dataDir, port, logger: quietLogger() });
  const adminUrl = withDatabase(server.url, 'postgres');
  return {
    adminUrl,
    port,
    dataDir,
    async createDatabase(name) {
      await withClient(adminUrl, (client) => client.query(`create database ${client.escapeIdentifier(name)}`));
      return withDatabase(server.url, name);
    },
  };
}

/** `pg_ctl stop -m fast` on a data dir, as the postgres user when we are root; quiet when not running. */
export async function forceStopPostgres(pgDir: string): Promise<void> {
  if (!(await postgresRunning(pgDir))) return;
  await pgCtl(pgDir, ['stop', '-m', 'fast', '-w', '-t', '30'], { timeoutMs: 60_000 }).catch(() =>
    pgCtl(pgDir, ['stop', '-m', 'immediate', '-w'], { timeoutMs: 30_000 }),
  );
}

/** `pg_ctl status` on a data dir: is a server running on it? */
export function postgresRunning(pgDir: string): Promise<boolean> {
  return pgCtl(pgDir, ['status']).then(() => true, () => false);
}

// ---------------------------------------------------------------------------------------------
// Logging and the job under test

/**
 * A pino logger (src/logger.ts) at `level` that formats every line as the service would but prints
 * only warnings and errors (to stderr), so stdout stays the markdown table.
 */
export function quietLogger(level = 'info'): Logger {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      const text = String(chunk);
      if (/"level":(40|50|60)\b/.test(text)) process.stderr.write(text);
      done();
    },
  });
  return createLogger(level, sink);
}

export const NOOP_OUTCOME: JobOutcome = { itemsProcessed: 0, itemsFailed: 0 };

/** A cron that does not fire while a benchmark runs (midnight, January 1st). */
export const NEVER_CRON = '0 0 1 1 *';

/** The job under test: does nothing, after telling the benchmark it started. */
export function noopJob(onStart: () => void, { name = 'bench-noop', defaultCron = NEVER_CRON } = {}): JobDefinition {
  return {
    name,
    description: 'benchmark no-op',
    defaultCron,
    queue: { policy: 'stately' },
    async handler() {
      onStart();
      return NOOP_OUTCOME;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Statistics and output

export function sorted(values: readonly number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

/** Linear-interpolated percentile (p in [0, 100]); NaN for no values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = sorted(values);
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return s[lo]! + (s[hi]! - s[lo]!) * (rank - lo);
}

export const median = (values: readonly number[]) => percentile(values, 50);
export const min = (values: readonly number[]) => (values.length ? Math.min(...values) : Number.NaN);
export const max = (values: readonly number[]) => (values.length ? Math.max(...values) : Number.NaN);

export function fmt(value: number, digits = 1): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '—';
}

/** `a / b` as "×1.23", or "—" when undefined. */
export function ratio(a: number, b: number, digits = 2): string {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `×${(a / b).toFixed(digits)}` : '—';
}

export function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

export function markdownTable(headers: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

/** One line saying where and when the figure was taken. */
export function machineLine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `${new Date().toISOString()} · node ${process.version} · nproc ${availableParallelism()} (${cpu.trim()}) · ${process.platform}/${process.arch}`;
}

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32), so every variant sees the same gaps. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Progress notes go to stderr, so stdout stays the table. */
export function note(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

// ---------------------------------------------------------------------------------------------
// Modes and processes

/**
 * `--quick` (or BENCH_MODE=quick): CI-sized runs that check the script still works end to end;
 * their figures are not the ones to quote. The full mode is the default.
 */
export const QUICK = process.argv.includes('--quick') || process.env.BENCH_MODE === 'quick';

/** Picks the quick or the full value of a parameter. */
export const sized = <T>(quick: T, full: T): T => (QUICK ? quick : full);

/** Resident set size of a process in bytes, from /proc (Linux); NaN when it is gone. */
export async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  return kb ? Number(kb) * 1024 : Number.NaN;
}

/**
 * CPU time (µs) PostgreSQL has used so far: the postmaster's own and its exited children's (reaped
 * backends are accounted to it), plus every live child's. Linux /proc, 10 ms resolution.
 */
export async function postgresCpuUs(pgDir: string): Promise<number> {
  const postmaster = Number((await readFile(join(pgDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  const ticksPerSecond = 100; // USER_HZ
  // Fields after the ")" of the command name: [1] ppid, [11] utime, [12] stime, [13] cutime, [14] cstime.
  const statOf = async (pid: number) => (await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => ')')).split(') ')[1]?.split(' ') ?? [];
  let ticks = 0;
  const own = await statOf(postmaster);
  ticks += Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await statOf(Number(entry));
    if (Number(stat[1]) === postmaster) ticks += Number(stat[11]) + Number(stat[12]);
  }
  return (ticks * 1e6) / ticksPerSecond;
}

/** The whole machine's CPU time so far (/proc/stat, all cores): busy and total, in ticks. */
export async function machineCpuTicks(): Promise<{ busy: number; total: number }> {
  // cpu  user nice system idle iowait irq softirq steal …
  const fields = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((sum, n) => sum + n, 0);
  return { busy: total - fields[3]! - fields[4]!, total };
}

/** Samples a process's RSS every `intervalMs` until stopped; returns the peak and the last reading. */
export function sampleRss(pid: number, intervalMs = 100): { stop(): Promise<{ peak: number; last: number }> } {
  let peak = 0;
  let last = Number.NaN;
  let sampling = Promise.resolve();
  const timer = setInterval(() => {
    sampling = sampling.then(async () => {
      const rss = await rssOf(pid);
      if (Number.isFinite(rss)) {
        last = rss;
        peak = Math.max(peak, rss);
      }
    });
  }, intervalMs);
  return {
    async stop() {
      clearInterval(timer);
      await sampling;
      const rss = await rssOf(pid);
      if (Number.isFinite(rss)) {
        last = rss;
        peak = Math.max(peak, rss);
      }
      return { peak, last };
    },
  };
}

/** A process the benchmark started (testkit/processes.ts), SIGKILLed by a cleanup step if it still runs. */
export function killOnCleanup<T extends RunningProcess>(proc: T): T {
  onCleanup(() => proc.kill());
  return proc;
}

/** SIGTERM, then SIGKILL (noted) if it has not exited after `graceMs`; resolves with its exit code or signal. */
export async function stopGracefully(proc: RunningProcess, graceMs: number): Promise<number | string | null> {
  const { code, signal, forced } = await proc.stop({ graceMs });
  if (forced) note(`${proc.name} did not stop within ${graceMs / 1000} s of SIGTERM: SIGKILL`);
  return code ?? signal;
}

// ---------------------------------------------------------------------------------------------
// HTTP load (autocannon), for benchmarks that load routes of a running service

type AutocannonRequest = { setupRequest?: (request: { path: string }) => { path: string } };
type AutocannonOptions = { url: string; connections: number; duration?: number; amount?: number; timeout: number; requests?: AutocannonRequest[] };
type AutocannonResult = { errors: number; timeouts: number; non2xx: number; duration: number; statusCodeStats: Record<string, { count: number }> };
type AutocannonInstance = Promise<AutocannonResult> & {
  on(event: 'response', listener: (client: unknown, statusCode: number, bytes: number, responseTimeMs: number) => void): AutocannonInstance;
};

export type LoadRun = { p50: number; p99: number; max: number; rps: number; ok: number; non2xx: number; errors: number; timeouts: number; codes: string };

/** How long a load run lasts: a duration, or a number of requests that all complete. */
export type LoadLength = { durationS: number } | { amount: number };

/**
 * One closed-loop autocannon run of `connections` keep-alive connections against `base` + `path`
 * (a string, or a function called for every request, e.g. to vary an id), for `durationS` or
 * `amount` requests. Latency is per response, sub-millisecond, of 2xx answers only; the others are
 * counted.
 */
export async function loadRoute(base: string, path: string | (() => string), { connections, timeoutS = 120, ...length }: { connections: number; timeoutS?: number } & LoadLength): Promise<LoadRun> {
  // @ts-ignore -- autocannon ships no type declarations; the part used is typed above.
  const autocannon = (await import('autocannon')).default as (options: AutocannonOptions) => AutocannonInstance;
  const latencies: number[] = [];
  const instance = autocannon({
    url: base + (typeof path === 'string' ? path : path()),
    connections,
    ...('amount' in length ? { amount: length.amount } : { duration: length.durationS }),
    timeout: timeoutS,
    ...(typeof path === 'function' && { requests: [{ setupRequest: (request) => ({ ...request, path: path() }) }] }),
  });
  instance.on('response', (_client, statusCode, _bytes, ms) => {
    if (statusCode >= 200 && statusCode < 300) latencies.push(ms);
  });
  const result = await instance;
  const codes = Object.entries(result.statusCodeStats).map(([code, { count }]) => `${code}×${count}`).join(' ');
  return {
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    // Not max(): Math.max(...values) overflows the stack beyond ~100 k values.
    max: latencies.length ? latencies.reduce((a, b) => (b > a ? b : a)) : Number.NaN,
    rps: latencies.length / result.duration,
    ok: latencies.length,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    codes: codes || 'none',
  };
}
