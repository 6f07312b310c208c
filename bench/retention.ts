/**
 * job_logs retention: does deleting 1 M old rows disturb the API? Target (issue 9): the p99 of
 * `GET /api/jobs/status` while the retention deletes them stays within 2× its idle p99.
 *
 * How: an embedded PostgreSQL (bench/lib.ts) with one database. `job_logs` gets OLD rows that
 * started 100–400 days ago (past the default 90-day retention) and RECENT rows of the last 80 days
 * (which stay), shaped like the runner's (metadata with job id, trigger, attempt, LLM usage), then
 * `VACUUM (ANALYZE)` and a checkpoint. The real service (`node src/main.ts`, ROLE=all) serves the API
 * while autocannon keeps CONNECTIONS keep-alive connections busy on `/api/jobs/status`
 * (closed loop, as bench/api-latency.ts (B2)); every 2xx answer's latency is kept with the time
 * it arrived.
 *
 *   1. A idle: service A (ROLE=all, JOB_LOGS_RETENTION_DAYS=0, so it deletes nothing) under load
 *      for IDLE_S after a warm-up.
 *   2. (a) one DELETE: the same load on A while this script deletes every old row in one statement,
 *      what a naive retention would do. Then the old rows are put back (vacuum, insert, analyse).
 *   3. (b) another instance deletes: a ROLE=worker service starts with the default retention and
 *      deletes at start-up (src/db/log-retention.ts) while A serves the load, until it logs
 *      `deleted N job_logs rows` (rows, batches and the time it took). Then A idle again (IDLE_S),
 *      and the old rows are put back.
 *   4. (c) the serving instance deletes: A stops; service C (ROLE=all, default retention, the
 *      default deployment) starts, deleting at start-up, and gets the load (after a warm-up) until
 *      it logs the same line; then C idle (IDLE_S).
 *   A new process's first second or so of deletion (its start-up, the warm-up) is not measured.
 *
 * p99 is over every answer of the phase; the table also gives the p99 of each WINDOW_S window,
 * so a burst shows. Ratios are against the idle p99 of the process serving the load.
 *
 * `--quick`: 100 k old rows, 5 s idle phases; ~1.5 min. Not the figures to quote. Full mode: 1 M old
 * rows, ~9–11 min.
 *
 *   cd /work/main && npm exec -- node bench/retention.ts [--quick]
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
// @ts-ignore -- autocannon ships no type declarations; the minimal type used here is below.
import autocannonUntyped from 'autocannon';
import pg from 'pg';
import { RETENTION_BATCH_SIZE, RETENTION_PAUSE_MS } from '../src/db/log-retention.ts';
import { freePort } from '../testkit/ports.ts';
import { SERVICE_READY, spawnNode } from '../testkit/processes.ts';
import { fmt, killOnCleanup, machineLine, main, markdownTable, note, onCleanup, percentile, QUICK, ratio, sized, startPostgres, stopGracefully } from './lib.ts';

type AutocannonInstance = Promise<{ errors: number; timeouts: number; non2xx: number }> & {
  on(event: 'response', listener: (client: unknown, statusCode: number, bytes: number, responseTimeMs: number) => void): AutocannonInstance;
  stop(): void;
};
const autocannon = autocannonUntyped as (options: { url: string; connections: number; duration: number; timeout: number }) => AutocannonInstance;

const CONNECTIONS = 10;
const OLD = sized(100_000, 1_000_000);
const RECENT = 10_000;
const IDLE_S = sized(5, 30);
const WARMUP_S = sized(1, 3);
const WINDOW_S = sized(1, 10);
const TARGET_RATIO = 2;
const DAY = 86_400_000;

type Sample = { at: number; ms: number };
/** `load`: the machine's 1-minute load average when the phase began (others may share it). */
type Phase = { label: string; samples: Sample[]; seconds: number; errors: number; non2xx: number; note: string; load: number };

await main(async () => {
  const started = performance.now();
  const startLoad = loadavg();
  const postgres = await startPostgres('retention');
  const url = await postgres.createDatabase('bench_retention');
  const client = new pg.Client({ connectionString: url, application_name: 'bench-retention' });

  // Service A serves the API throughout steps 1–4 and deletes nothing itself.
  const a = await startService({ DATABASE_URL: url, JOB_LOGS_RETENTION_DAYS: '0' });
  await client.connect();
  onCleanup(() => client.end());
  await seedAll(client);

  // 1. idle
  await load(a.base, WARMUP_S);
  const idle = await load(a.base, IDLE_S, 'A idle, before');
  note(`A idle: p99 ${fmt(p99(idle), 2)} ms over ${idle.samples.length} answers`);

  // 2. (a) one DELETE statement
  const naive = await measureWhile(a.base, async () => {
    const { rowCount } = await client.query(`delete from job_logs where started_at < now() - interval '90 days' and status <> 'STARTED'`);
    return `${rowCount} rows in one statement`;
  }, '(a) A, while one DELETE statement runs');
  note(`(a) one DELETE: ${naive.note}, ${fmt(naive.seconds, 1)} s, p99 ${fmt(p99(naive), 2)} ms`);
  await reseedOld(client);

  // 3. (b) a second instance (ROLE=worker) deletes at its start-up
  const b = await startService({ DATABASE_URL: url, ROLE: 'worker' });
  const byWorker = await measureWhile(a.base, () => b.retentionDone.then(describe), '(b) A, while a ROLE=worker instance\'s retention runs');
  const workerLine = await b.retentionDone;
  note(`(b) worker retention: ${byWorker.note}, p99 ${fmt(p99(byWorker), 2)} ms`);
  await b.stop();
  const after = await load(a.base, IDLE_S, 'A idle, after');
  await reseedOld(client);
  await a.stop();

  // 5. (c) one ROLE=all instance serves the API and deletes (the default deployment)
  const c = await startService({ DATABASE_URL: url });
  await load(c.base, WARMUP_S);
  const inProcess = await measureWhile(c.base, () => c.retentionDone.then(describe), '(c) C (ROLE=all), while its own retention runs');
  const allLine = await c.retentionDone;
  note(`(c) in-process retention: ${inProcess.note}, p99 ${fmt(p99(inProcess), 2)} ms`);
  const afterC = await load(c.base, IDLE_S, 'C idle, after');

  const { rows: [left] } = await client.query<{ old: number; recent: number }>(
    `select count(*) filter (where started_at < now() - interval '90 days')::int as old, count(*) filter (where started_at >= now() - interval '90 days')::int as recent from job_logs`,
  );

  // -------------------------------------------------------------------------------------------
  const idleP99 = p99(idle);
  const rows = [idle, naive, byWorker, after, inProcess, afterC].map((phase) => [
    phase.label,
    fmt(phase.seconds, 1),
    String(phase.samples.length),
    fmt(percentile(phase.samples.map((s) => s.ms), 50), 2),
    fmt(p99(phase), 2),
    windows(phase),
    ratio(p99(phase), idleP99),
    `${phase.non2xx} / ${phase.errors}`,
    fmt(phase.load, 1),
    phase.note,
  ]);
  const verdict = (during: Phase, base: Phase) => `${ratio(p99(during), p99(base))} (${fmt(p99(during), 2)} vs ${fmt(p99(base), 2)} ms): **${p99(during) / p99(base) <= TARGET_RATIO ? 'met' : 'missed'}**`;
  console.log(`### job_logs retention: /api/jobs/status while ${OLD >= 1_000_000 ? `${OLD / 1_000_000} M` : `${OLD / 1000} k`} old rows are deleted\n`);
  console.log(
    `${machineLine()} · load average ${startLoad.map((n) => n.toFixed(1)).join(' ')} at the start, ${loadavg().map((n) => n.toFixed(1)).join(' ')} at the end · ${QUICK ? `**quick mode: ${OLD / 1000} k old rows, not the figures to quote** · ` : ''}` +
      `job_logs ${OLD} old rows (100–400 days) + ${RECENT} recent, VACUUM (ANALYZE)d before each deletion · services = \`node src/main.ts\` (LOG_LEVEL=info, the default: a line per request; pool max 10) · ` +
      `autocannon ${CONNECTIONS} keep-alive connections on \`GET /api/jobs/status\`, ${WARMUP_S} s warm-up on a new process · ` +
      `retention batch ${RETENTION_BATCH_SIZE} rows, pause ${RETENTION_PAUSE_MS} ms · wall time ${fmt((performance.now() - started) / 1000, 0)} s\n`,
  );
  console.log(markdownTable(['phase', 's', 'answers', 'p50 ms', 'p99 ms', `p99 per ${WINDOW_S} s window (min–median–max, windows)`, 'p99 vs A idle', 'non-2xx / errors', 'load avg at start', 'deleted'], rows));
  console.log('');
  console.log(`- Target p99 while the retention deletes ≤ ${TARGET_RATIO}× idle. (b) another instance deletes: ${verdict(byWorker, idle)}; against A idle after: ${ratio(p99(byWorker), p99(after))}.`);
  console.log(`- (c) the serving instance deletes: ${verdict(inProcess, afterC)} against its own idle after; ${ratio(p99(inProcess), idleP99)} A idle before.`);
  console.log(
    `- Deletion time: (b) ${describe(workerLine)} in ${fmt(workerLine.ms / 1000, 1)} s (${fmt(workerLine.deleted / (workerLine.ms / 1000), 0)} rows/s); ` +
      `(c) ${describe(allLine)} in ${fmt(allLine.ms / 1000, 1)} s; (a) one statement ${fmt(naive.seconds, 1)} s.`,
  );
  console.log(`- Afterwards: ${left!.old} old rows left (expected 0), ${left!.recent} recent rows (expected ${RECENT}).`);
});

function describe(line: RetentionLine): string {
  return `${line.deleted} rows in ${line.batches} batches`;
}

// ---------------------------------------------------------------------------------------------

function p99(phase: Phase): number {
  return percentile(phase.samples.map((s) => s.ms), 99);
}

/** p99 of each WINDOW_S window of a phase (a partial last window counts if it has 100 answers). */
function windows(phase: Phase): string {
  if (phase.samples.length === 0) return '—';
  const t0 = phase.samples[0]!.at;
  const byWindow = new Map<number, number[]>();
  for (const s of phase.samples) {
    const w = Math.floor((s.at - t0) / (WINDOW_S * 1000));
    byWindow.set(w, [...(byWindow.get(w) ?? []), s.ms]);
  }
  const p = [...byWindow.values()].filter((v) => v.length >= 100).map((v) => percentile(v, 99)).sort((x, y) => x - y);
  return p.length ? `${fmt(p[0]!, 1)}–${fmt(percentile(p, 50), 1)}–${fmt(p.at(-1)!, 1)} (${p.length})` : '—';
}

/** Load for `seconds`; every 2xx latency with the time it arrived. */
async function load(base: string, seconds: number, label = 'warm-up'): Promise<Phase> {
  const samples: Sample[] = [];
  const load = loadavg()[0]!;
  const t0 = performance.now();
  const instance = autocannon({ url: `${base}/api/jobs/status`, connections: CONNECTIONS, duration: seconds, timeout: 60 });
  instance.on('response', (_c, status, _b, ms) => {
    if (status >= 200 && status < 300) samples.push({ at: performance.now(), ms });
  });
  const result = await instance;
  return { label, samples, seconds: (performance.now() - t0) / 1000, errors: result.errors, non2xx: result.non2xx, note: '', load };
}

/** Load while `work` runs; answers that arrive after it ends are not counted. */
async function measureWhile(base: string, work: () => Promise<string>, label: string): Promise<Phase> {
  const samples: Sample[] = [];
  const load = loadavg()[0]!;
  const instance = autocannon({ url: `${base}/api/jobs/status`, connections: CONNECTIONS, duration: 3600, timeout: 60 });
  let end = Number.POSITIVE_INFINITY;
  instance.on('response', (_c, status, _b, ms) => {
    const at = performance.now();
    if (status >= 200 && status < 300 && at <= end) samples.push({ at, ms });
  });
  const t0 = performance.now();
  let what: string;
  try {
    what = await work();
  } finally {
    end = performance.now();
    // Also on failure: a service kept busy by keep-alive connections would not stop gracefully.
    instance.stop();
  }
  const result = await instance;
  return { label, samples, seconds: (end - t0) / 1000, errors: result.errors, non2xx: result.non2xx, note: what, load };
}

// ---------------------------------------------------------------------------------------------
// Data

async function seedAll(client: pg.Client): Promise<void> {
  const now = Date.now();
  const t0 = performance.now();
  await seed(client, RECENT, new Date(now - 80 * DAY), new Date(now - 60_000), 0);
  await seedOld(client);
  await client.query('vacuum (analyze) job_logs');
  await client.query('checkpoint');
  note(`seeded ${OLD} old + ${RECENT} recent job_logs rows in ${fmt((performance.now() - t0) / 1000, 1)} s`);
}

/** Puts the old rows back after a deletion, as they were before it: vacuumed first, analysed after. */
async function reseedOld(client: pg.Client): Promise<void> {
  const t0 = performance.now();
  await client.query('vacuum job_logs');
  await seedOld(client);
  await client.query('vacuum (analyze) job_logs');
  await client.query('checkpoint');
  note(`put ${OLD} old rows back in ${fmt((performance.now() - t0) / 1000, 1)} s`);
}

function seedOld(client: pg.Client): Promise<void> {
  const now = Date.now();
  return seed(client, OLD, new Date(now - 400 * DAY), new Date(now - 100 * DAY), RECENT);
}

/** `n` finished runs evenly spread over [from, to], ~93 % COMPLETED; `offset` varies the pseudo-random fields. */
async function seed(client: pg.Client, n: number, from: Date, to: Date, offset: number): Promise<void> {
  const CHUNK = 250_000;
  const stepMs = (to.getTime() - from.getTime()) / n;
  for (let lo = 1; lo <= n; lo += CHUNK) {
    const hi = Math.min(n, lo + CHUNK - 1);
    await client.query(
      `insert into job_logs (job_name, status, started_at, ended_at, items_processed, items_failed, error_message, metadata)
       select case when h % 2 = 0 then 'extract-blueprints' else 'generate-drops' end,
              case when h % 100 < 7 then 'FAILED' else 'COMPLETED' end,
              $3::timestamptz + i * $4::float8 * interval '1 millisecond',
              $3::timestamptz + i * $4::float8 * interval '1 millisecond' + (2000 + h % 280000) * interval '1 millisecond',
              h % 11, case when h % 10 = 0 then 1 else 0 end,
              case when h % 100 < 7 then 'timed out after 900 s' end,
              jsonb_build_object('job_id', md5((i + $5)::text)::uuid, 'trigger', case when h % 20 = 0 then 'manual' else 'cron' end,
                'attempt', 1, 'duration_ms', 2000 + h % 280000,
                'llm', jsonb_build_object('model', 'gpt-4o-mini', 'calls', h % 14, 'prompt_tokens', (h % 14) * 1800, 'completion_tokens', (h % 14) * 450))
       from (select i, abs(hashint8(i::bigint + $5)) as h from generate_series($1::int, $2::int) as i) as s`,
      [lo, hi, from.toISOString(), stepMs, offset],
    );
  }
}

// ---------------------------------------------------------------------------------------------
// The service process

type RetentionLine = { deleted: number; batches: number; ms: number };
type ServiceHandle = { base: string; retentionDone: Promise<RetentionLine>; stop(): Promise<void> };

/** Spawns `node src/main.ts` (LOG_LEVEL=info, JSON), waits until it is up; stopped by stop() or a cleanup step. */
async function startService(env: Record<string, string>): Promise<ServiceHandle> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let onRetention: (line: RetentionLine) => void = () => {};
  const retentionDone = new Promise<RetentionLine>((resolve) => (onRetention = resolve));
  const service = killOnCleanup(
    spawnNode('src/main.ts', {
      env: { HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', LOG_FORMAT: 'json', SCHEDULER_TIMEZONE: 'UTC', ...env },
      tailChars: 20_000,
      onLine(text) {
        // One `http request` line per answer at info: skip those unparsed, so reading them costs little.
        if (text.includes('"msg":"http request"')) return;
        try {
          const entry = JSON.parse(text) as { level?: number; msg?: string; deleted?: number; batches?: number; ms?: number };
          if (entry.msg?.startsWith('deleted ') && entry.msg.includes('job_logs rows')) onRetention({ deleted: entry.deleted!, batches: entry.batches!, ms: entry.ms! });
          if ((entry.level ?? 0) >= 40) process.stderr.write(`[service] ${entry.msg}\n`);
        } catch {
          process.stderr.write(`[service] ${text.slice(0, 300)}\n`);
        }
      },
    }),
  );
  const stop = async () => void (await stopGracefully(service, 30_000));
  onCleanup(stop);
  // ROLE=worker opens no port: it is up once it logs that it is ready.
  if (env.ROLE === 'worker') await service.waitForLine(SERVICE_READY, 120_000);
  else await service.waitForHealth(base, 120_000);
  return { base, retentionDone, stop };
}
