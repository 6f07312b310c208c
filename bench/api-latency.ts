/**
 * B2. Control API latency as `job_logs` grows: 10 k rows, then 1 M rows.
 *
 * What is measured: the latency (p50, p99, max) and throughput of the read routes of the control
 * API, served by the real service process (`node src/main.ts`, ROLE=all, the default deployment),
 * under a closed-loop load of CONNECTIONS keep-alive connections from autocannon:
 *
 *   - `GET /healthz`                          one `select 1` through the same HTTP + pool stack: the floor
 *   - `GET /api/jobs/status`                  schedules + latest log per job + totalLogs
 *   - `GET /api/jobs/logs?limit=100`          newest 100 log rows
 *   - `GET /api/jobs/logs/extract-blueprints/latest`
 *
 * How: an embedded PostgreSQL (bench/lib.ts) with one fresh database; the service is spawned on it
 * and runs its migrations; `job_logs` is then filled from this process with plain SQL
 * (generate_series, deterministic pseudo-random rows shaped like the runner's: the two registered
 * jobs plus a few retired names, ~93 % COMPLETED / 7 % FAILED, started_at spread over months,
 * metadata with job_id, trigger, attempt, duration_ms, llm {…}), then `VACUUM (ANALYZE) job_logs`
 * (a production table has been vacuumed and analysed by autovacuum; doing it explicitly keeps
 * autovacuum from kicking in halfway through a measurement). First 10 k rows, measured; then the
 * table grows to 1 M rows (the newer history appended), vacuumed/analysed, measured again.
 * Each size: a warm-up of WARMUP_S per route, then REPEATS rounds, each running every route for
 * DURATION_S in turn (the order rotates each round). A route too slow to answer MIN_ANSWERS times
 * in DURATION_S (judged from its warm-up) is run for a fixed MIN_ANSWERS requests instead, all of
 * which complete: with a duration, requests still in flight at the end are dropped, so a route
 * slower than the window would show no latency at all, or only its faster answers. After every
 * run the script waits until the service's pool has no query left running (pg_stat_activity),
 * so work abandoned by one run does not weigh on the next. Latencies are taken per response from
 * autocannon's `response` event (sub-millisecond precision; autocannon's own histogram rounds to
 * whole ms); only 2xx responses count as latencies, non-2xx and errors are counted and reported.
 * Figures are the median over rounds of each round's p50/p99/max and req/s.
 *
 * Compared against: `/healthz` in the same run (p99 as a ratio to its p99), and each route at
 * 1 M vs at 10 k rows (p99 ratio). Targets (issue): p99 of `/status` ≤ 10 ms at 1 M rows, and
 * p99(1 M) / p99(10 k) ≤ 1.5.
 *
 * Also recorded: the /status answer at each size (totalLogs vs the true row count, and whether
 * latestLogs has a row for both jobs).
 *
 * `--quick`: 10 k and 100 k rows (not 1 M), 1 round of 2 s per route; ~35 s. Not the figures to quote.
 * Full mode: ~4 min (longer while a route is slow at 1 M rows: each slow run is 20 requests).
 *
 *   cd /work/main && npm exec -- node bench/api-latency.ts [--quick]
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { sleep } from '../testkit/poll.ts';
import { freePort } from '../testkit/ports.ts';
import { spawnNode } from '../testkit/processes.ts';
import {
  fmt,
  killOnCleanup,
  loadRoute,
  type LoadLength,
  machineLine,
  main,
  markdownTable,
  median,
  note,
  onCleanup,
  QUICK,
  ratio,
  sized,
  startPostgres,
  stopGracefully,
} from './lib.ts';

// ---------------------------------------------------------------------------------------------
// Parameters

const CONNECTIONS = 10;
const SMALL = 10_000;
const LARGE = sized(100_000, 1_000_000);
const DURATION_S = sized(2, 10);
const WARMUP_S = 1;
const REPEATS = sized(1, 3);
/** Per-request timeout: a slow answer must show up as a latency, not as a timeout error. */
const TIMEOUT_S = 120;
/** Fewest answers a run should give; slower routes are run for a fixed number of requests instead of a duration. */
const MIN_ANSWERS = 2 * CONNECTIONS;
const TARGET_STATUS_P99_MS = 10;
const TARGET_GROWTH = 1.5;

const JOBS = ['extract-blueprints', 'generate-drops'] as const;
const ROUTES = [
  { label: 'GET /healthz (floor)', path: '/healthz' },
  { label: 'GET /api/jobs/status', path: '/api/jobs/status' },
  { label: 'GET /api/jobs/logs?limit=100', path: '/api/jobs/logs?limit=100' },
  { label: 'GET /api/jobs/logs/extract-blueprints/latest', path: '/api/jobs/logs/extract-blueprints/latest' },
] as const;
type Route = (typeof ROUTES)[number];
const STATUS = ROUTES[1];

/** Warnings and errors the service logged, by message. */
const serviceLog = new Map<string, number>();

/** The bench's own connection to the service's database, for drain() (set once connected). */
let drainClient: pg.Client | undefined;

/** A run of a fixed duration, or of a fixed number of requests (all of which complete). */
type Load = LoadLength;
type Run = { mode: string; p50: number; p99: number; max: number; rps: number; ok: number; non2xx: number; errors: number; timeouts: number; codes: string };
type Measured = { size: number; route: Route; runs: Run[]; bodyBytes: number };
type StatusAnswer = { size: number; trueRows: number; totalLogs: unknown; estimated: unknown; bothJobs: boolean; latestIds: string; trueLatestIds: string; ms: number };

await main(async () => {
  const started = performance.now();
  const postgres = await startPostgres('api-latency');
  const databaseUrl = await postgres.createDatabase('bench_api_latency');

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  note(`starting the service on ${base}`);
  await startServiceProcess({
    DATABASE_URL: databaseUrl,
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    LOG_FORMAT: 'json',
    SCHEDULER_TIMEZONE: 'UTC',
    // The seeded history goes back 360 days: an hourly retention pass must not delete it mid-run.
    JOB_LOGS_RETENTION_DAYS: '0',
  }, base);

  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'bench-api-latency' });
  await client.connect();
  onCleanup(() => client.end());
  drainClient = client;

  const measured: Measured[] = [];
  const answers: StatusAnswer[] = [];
  // Time line: the first SMALL rows over the 180 days before the last 180 days; the rest appended after them up to now.
  const now = Date.now();
  const DAY = 86_400_000;
  let seeded = 0;
  for (const [size, from, to] of [
    [SMALL, now - 360 * DAY, now - 180 * DAY],
    [LARGE, now - 180 * DAY, now],
  ] as const) {
    const t0 = performance.now();
    await seed(client, seeded + 1, size, new Date(from), new Date(to));
    note(`seeded job_logs rows ${seeded + 1}–${size} in ${fmt((performance.now() - t0) / 1000, 1)} s`);
    seeded = size;
    const t1 = performance.now();
    await client.query('vacuum (analyze) job_logs');
    note(`VACUUM (ANALYZE) job_logs in ${fmt((performance.now() - t1) / 1000, 1)} s`);

    answers.push(await statusAnswer(client, base, size));
    const bodyBytes = new Map<Route, number>();
    for (const route of ROUTES) {
      const response = await fetch(base + route.path);
      const body = await response.arrayBuffer();
      if (!response.ok) throw new Error(`${route.path} answered ${response.status}: ${Buffer.from(body).toString()}`);
      bodyBytes.set(route, body.byteLength);
    }

    note(`${size} rows: warm-up ${WARMUP_S} s per route`);
    // The warm-up also tells how fast each route answers: one that would answer fewer than
    // MIN_ANSWERS times in DURATION_S is measured over a fixed MIN_ANSWERS requests instead.
    const plan = new Map<Route, Load>();
    for (const route of ROUTES) {
      const warm = await load(base + route.path, { durationS: WARMUP_S });
      plan.set(route, warm.rps * DURATION_S >= MIN_ANSWERS ? { durationS: DURATION_S } : { amount: MIN_ANSWERS });
    }
    const runs = new Map<Route, Run[]>(ROUTES.map((r) => [r, []]));
    for (let round = 0; round < REPEATS; round++) {
      // Rotate the order each round so no route always runs first (or right after the heaviest one).
      const order = ROUTES.map((_, i) => ROUTES[(i + round) % ROUTES.length]!);
      for (const route of order) {
        const run = await load(base + route.path, plan.get(route)!);
        runs.get(route)!.push(run);
        note(`${size} rows, round ${round + 1}/${REPEATS}, ${route.path} (${run.mode}): p50 ${fmt(run.p50, 2)} ms, p99 ${fmt(run.p99, 2)} ms, ${fmt(run.rps, 0)} req/s, codes ${run.codes}, errors ${run.errors}`);
      }
    }
    for (const route of ROUTES) measured.push({ size, route, runs: runs.get(route)!, bodyBytes: bodyBytes.get(route)! });
  }
  const { rows: [after] } = await client.query<{ n: string }>('select count(*)::text as n from job_logs');
  const addedByService = Number(after!.n) - LARGE;

  // -------------------------------------------------------------------------------------------
  // Output

  const med = (runs: Run[], key: 'p50' | 'p99' | 'max' | 'rps') => median(runs.map((r) => r[key]));
  const sum = (runs: Run[], key: 'non2xx' | 'errors' | 'timeouts' | 'ok') => runs.reduce((acc, r) => acc + r[key], 0);
  const find = (size: number, route: Route) => measured.find((m) => m.size === size && m.route === route)!;
  const sizeLabel = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000} M` : `${n / 1_000} k`);

  const latencyRows = measured.map((m) => {
    const floor = find(m.size, ROUTES[0]);
    return [
      sizeLabel(m.size),
      '`' + m.route.label.replace(/^GET /, '').replace(' (floor)', '') + '`',
      [...new Set(m.runs.map((r) => `${m.runs.length} × ${r.mode}`))].join(', '),
      fmt(med(m.runs, 'p50'), 2),
      fmt(med(m.runs, 'p99'), 2),
      m.runs.map((r) => fmt(r.p99, 1)).join(' / '),
      fmt(med(m.runs, 'max'), 1),
      fmt(med(m.runs, 'rps'), 0),
      m.route === ROUTES[0] ? '×1.00' : ratio(med(m.runs, 'p99'), med(floor.runs, 'p99')),
      String(sum(m.runs, 'ok')),
      `${sum(m.runs, 'non2xx')} / ${sum(m.runs, 'errors')} / ${sum(m.runs, 'timeouts')}`,
      String(m.bodyBytes),
    ];
  });

  const growthRows = ROUTES.map((route) => {
    const small = med(find(SMALL, route).runs, 'p99');
    const large = med(find(LARGE, route).runs, 'p99');
    const growth = large / small;
    return [
      '`' + route.path + '`',
      fmt(small, 2),
      fmt(large, 2),
      ratio(large, small),
      route === ROUTES[0] ? '(floor)' : growth <= TARGET_GROWTH ? `met (≤ ${TARGET_GROWTH})` : `missed (> ${TARGET_GROWTH})`,
    ];
  });

  const answerRows = answers.map((a) => [
    sizeLabel(a.size),
    String(a.trueRows),
    JSON.stringify(a.totalLogs),
    a.estimated === undefined ? '(absent)' : JSON.stringify(a.estimated),
    a.bothJobs ? 'yes' : 'NO',
    `${a.latestIds}${a.latestIds === a.trueLatestIds ? ' (right)' : ` (WRONG: newest are ${a.trueLatestIds})`}`,
    fmt(a.ms, 1),
  ]);

  const statusLarge = med(find(LARGE, STATUS).runs, 'p99');
  const statusSmall = med(find(SMALL, STATUS).runs, 'p99');
  const trouble = measured.filter((m) => sum(m.runs, 'non2xx') + sum(m.runs, 'errors') + sum(m.runs, 'timeouts') > 0);

  console.log('### B2. Control API latency as job_logs grows (10 k → 1 M rows)\n');
  console.log(
    `${machineLine()} · ${QUICK ? '**quick mode: 100 k rows instead of 1 M, not the figures to quote** · ' : ''}` +
      `service = \`node src/main.ts\` (ROLE=all, LOG_LEVEL=warn, pool max 10) on its own database · autocannon ${CONNECTIONS} keep-alive connections, ` +
      `${DURATION_S} s per route per round (routes slower than ${MIN_ANSWERS} answers in that time: ${MIN_ANSWERS} requests) after ${WARMUP_S} s warm-up, ${REPEATS} round(s) with rotating route order · ` +
      `job_logs ${SMALL} then ${LARGE} rows, each followed by VACUUM (ANALYZE) job_logs (a production table has autovacuum's statistics and visibility map) · ` +
      `latency = per-response time of 2xx answers; figures are the median over rounds · wall time ${fmt((performance.now() - started) / 1000, 0)} s\n`,
  );
  console.log(
    markdownTable(
      ['rows', 'route', 'runs', 'p50 ms', 'p99 ms', 'p99 per round', 'max ms', 'req/s', 'p99 vs /healthz', '2xx answers', 'non-2xx / errors / timeouts', 'body bytes'],
      latencyRows,
    ),
  );
  console.log('');
  console.log(markdownTable(['route', `p99 ms at ${sizeLabel(SMALL)}`, `p99 ms at ${sizeLabel(LARGE)}`, `p99 ${sizeLabel(LARGE)} / ${sizeLabel(SMALL)}`, `target ≤ ${TARGET_GROWTH}`], growthRows));
  console.log('');
  console.log(markdownTable(['rows', 'true count(*)', '/status totalLogs', 'totalLogsEstimated', 'latestLogs has both jobs', 'latestLogs ids (extract / drops)', 'one sequential /status ms'], answerRows));
  console.log('');
  console.log(
    `- Target p99 of \`/status\` ≤ ${TARGET_STATUS_P99_MS} ms at ${sizeLabel(LARGE)} rows: **${statusLarge <= TARGET_STATUS_P99_MS ? 'met' : 'missed'}** (${fmt(statusLarge, 2)} ms${QUICK ? '; quick mode, 100 k rows' : ''}).`,
  );
  console.log(
    `- Target p99(${sizeLabel(LARGE)}) / p99(${sizeLabel(SMALL)}) ≤ ${TARGET_GROWTH} for \`/status\`: **${statusLarge / statusSmall <= TARGET_GROWTH ? 'met' : 'missed'}** (${ratio(statusLarge, statusSmall)}); ` +
      ROUTES.slice(2)
        .map((route) => {
          const g = med(find(LARGE, route).runs, 'p99') / med(find(SMALL, route).runs, 'p99');
          return `\`${route.path}\` ${g <= TARGET_GROWTH ? 'met' : 'missed'} (${ratio(g, 1)})`;
        })
        .join(', ') +
      '.',
  );
  console.log(
    `- \`/status\` p99 is ${ratio(statusLarge, med(find(LARGE, ROUTES[0]).runs, 'p99'))} the \`/healthz\` floor at ${sizeLabel(LARGE)} rows (${ratio(statusSmall, med(find(SMALL, ROUTES[0]).runs, 'p99'))} at ${sizeLabel(SMALL)}).`,
  );
  console.log(
    `- totalLogs: ${answers.map((a) => `${JSON.stringify(a.totalLogs)}${a.estimated === true ? ' (estimated)' : a.estimated === false ? ' (exact)' : ''} reported vs ${a.trueRows} rows at ${sizeLabel(a.size)} (${ratio(Number(a.totalLogs), a.trueRows, 4)})`).join('; ')}.`,
  );
  console.log(
    trouble.length
      ? `- **Non-2xx answers or errors**: ${trouble.map((m) => `${sizeLabel(m.size)} \`${m.route.path}\` ${sum(m.runs, 'non2xx')} non-2xx (${[...new Set(m.runs.map((r) => r.codes))].join(', ')}), ${sum(m.runs, 'errors')} errors, ${sum(m.runs, 'timeouts')} timeouts`).join('; ')} — excluded from the latencies.`
      : '- Every answer was a 2xx; no connection errors or timeouts.',
  );
  if (serviceLog.size) {
    console.log(`- The service logged: ${[...serviceLog].map(([key, n]) => `${n} × \`${key}\``).join('; ')}.`);
  }
  if (addedByService !== 0) console.log(`- The service itself added ${addedByService} job_logs rows during the run (a cron occurrence fired).`);
});

// ---------------------------------------------------------------------------------------------
// The service process

/** A service log line (pino JSON) as `level msg: error message`, without stacks or timestamps. */
function serviceLogKey(line: string): string {
  try {
    const entry = JSON.parse(line) as { level?: number; msg?: string; path?: string; err?: { message?: string } };
    const level = entry.level === 40 ? 'warn' : entry.level === 50 ? 'error' : entry.level === 60 ? 'fatal' : `level ${entry.level}`;
    const error = entry.err?.message?.split('\n').filter(Boolean).at(-1) ?? '';
    return `${level} ${entry.msg ?? ''}${entry.path ? ` (${entry.path})` : ''}${error ? `: ${error}` : ''}`;
  } catch {
    return line.slice(0, 300);
  }
}

/** Spawns `node src/main.ts` and waits for GET /healthz to answer 200; stopped by a cleanup step. */
async function startServiceProcess(env: Record<string, string>, base: string): Promise<void> {
  const service = killOnCleanup(
    spawnNode('src/main.ts', {
      env,
      tailChars: 20_000,
      // LOG_LEVEL=warn: every line is a warning or an error; count them by message, one short line each on stderr.
      onLine(line) {
        const key = serviceLogKey(line);
        serviceLog.set(key, (serviceLog.get(key) ?? 0) + 1);
        process.stderr.write(`[service] ${key}\n`);
      },
    }),
  );
  onCleanup(async () => void (await stopGracefully(service, 15_000)));
  await service.waitForHealth(base, 120_000);
}

// ---------------------------------------------------------------------------------------------
// Seeding

/**
 * Appends rows `from`..`to` (ids in time order) with started_at evenly spread over [start, end)
 * plus jitter. Deterministic: every pseudo-random choice is a hash of the row number. In chunks
 * of 250 k rows so progress shows.
 */
async function seed(client: pg.Client, from: number, to: number, start: Date, end: Date): Promise<void> {
  const stepMs = (end.getTime() - start.getTime()) / (to - from + 1);
  const CHUNK = 250_000;
  for (let lo = from; lo <= to; lo += CHUNK) {
    const hi = Math.min(to, lo + CHUNK - 1);
    await client.query(seedSql(), [lo, hi, from, start.toISOString(), stepMs]);
  }
}

/** u(k): a uniform number in [0, 1) from row i and salt k. */
function u(k: number): string {
  return `((hashint8(i::bigint * 16 + ${k}) & 2147483647)::float8 / 2147483648.0)`;
}

/** $1..$2: the rows to insert; $3: the phase's first row; $4: its start time; $5: ms between rows. */
function seedSql(): string {
  return `
insert into job_logs (job_name, status, started_at, ended_at, items_processed, items_failed, error_message, metadata)
select
  job_name,
  case when failed then 'FAILED' else 'COMPLETED' end,
  started_at,
  started_at + duration_ms * interval '1 millisecond',
  case when failed then 0 else processed end,
  case when failed then 0 else item_failures end,
  case when failed then (array[
    'OPENAI_API_KEY is not set',
    'timed out after 900 s',
    'interrupted: worker lost',
    '401 Incorrect API key provided',
    'interrupted: the worker stopped before the run finished (shutdown)'])[1 + (${u(9)} * 5)::int % 5] end,
  jsonb_build_object(
    'job_id', md5(i::text)::uuid,
    'trigger', case when r_trigger < 0.85 then 'cron' when r_trigger < 0.97 then 'manual' else 'cli' end,
    'attempt', attempt,
    'duration_ms', duration_ms,
    'llm', jsonb_build_object('model', 'gpt-4o-mini', 'calls', calls, 'prompt_tokens', calls * 1800, 'completion_tokens', calls * 450, 'total_tokens', calls * 2250))
  || case
       when failed then jsonb_build_object('will_retry', attempt <= 3)
       when job_name like 'extract-blueprints%' then jsonb_build_object('items_claimed', processed + item_failures)
       when job_name like 'generate-drops%' then jsonb_build_object('blueprints', 1 + processed / 8, 'blueprints_completed', 1 + processed / 10, 'cache_hits', processed / 5)
       else '{}'::jsonb
     end
from (
  select
    i,
    case
      when r_name < 0.45 then 'extract-blueprints'
      when r_name < 0.90 then 'generate-drops'
      when r_name < 0.95 then 'extract-blueprints-v1'
      when r_name < 0.98 then 'harvest-notices'
      else 'generate-drops-legacy'
    end as job_name,
    r_failed < 0.07 as failed,
    r_trigger,
    case when r_failed < 0.07 then 1 + (r_attempt * 4)::int % 4 else case when r_attempt < 0.97 then 1 else 2 end end as attempt,
    $4::timestamptz + (((i - $3) + r_jitter) * $5::float8) * interval '1 millisecond' as started_at,
    (2000 + r_duration * 280000)::int as duration_ms,
    (r_items * 11)::int % 11 as processed,
    case when r_items > 0.9 then 1 + (r_items * 100)::int % 2 else 0 end as item_failures,
    (r_items * 14)::int % 14 as calls
  from (
    select i, ${u(1)} as r_name, ${u(2)} as r_failed, ${u(3)} as r_trigger, ${u(4)} as r_attempt,
           ${u(5)} as r_jitter, ${u(6)} as r_duration, ${u(7)} as r_items
    from generate_series($1::int, $2::int) as i
  ) r
) s`;
}

// ---------------------------------------------------------------------------------------------
// Measuring

/** One autocannon run against `url` (a duration or a number of requests); latencies of 2xx answers only. */
async function load(url: string, how: Load): Promise<Run> {
  const run = await loadRoute(url, '', { connections: CONNECTIONS, timeoutS: TIMEOUT_S, ...how });
  // autocannon drops the connections at the end; the service still finishes what they asked for.
  // Wait for that, so it does not weigh on the next run.
  await drain();
  return { mode: 'amount' in how ? `${how.amount} requests` : `${how.durationS} s`, ...run };
}

/** Waits until no query of the service's own pool (application_name memodrops-scheduler) is running. */
async function drain(): Promise<void> {
  if (!drainClient) return;
  const t0 = performance.now();
  for (;;) {
    const { rows: [row] } = await drainClient.query<{ n: number }>(
      "select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name = 'memodrops-scheduler' and state = 'active'",
    );
    if (row!.n === 0) break;
    if (performance.now() - t0 > 300_000) throw new Error('the service still had queries running 300 s after a load run');
    await sleep(50);
  }
  const waited = performance.now() - t0;
  if (waited > 100) note(`waited ${fmt(waited / 1000, 1)} s for the service to finish abandoned requests`);
}

async function statusAnswer(client: pg.Client, base: string, size: number): Promise<StatusAnswer> {
  const t0 = performance.now();
  const response = await fetch(`${base}/api/jobs/status`);
  const body = (await response.json()) as { totalLogs?: unknown; totalLogsEstimated?: unknown; latestLogs?: Record<string, { id: number } | null> };
  const ms = performance.now() - t0;
  if (!response.ok) throw new Error(`/api/jobs/status answered ${response.status}: ${JSON.stringify(body)}`);
  const { rows: [row] } = await client.query<{ n: string }>('select count(*)::text as n from job_logs');
  const latest = JOBS.map((job) => body.latestLogs?.[job] ?? null);
  const trueLatest: string[] = [];
  for (const job of JOBS) {
    const { rows } = await client.query<{ id: number }>('select id from job_logs where job_name = $1 order by started_at desc, id desc limit 1', [job]);
    trueLatest.push(rows[0] ? String(rows[0].id) : 'null');
  }
  return {
    size,
    trueRows: Number(row!.n),
    totalLogs: body.totalLogs,
    estimated: body.totalLogsEstimated,
    bothJobs: latest.every((log) => log !== null),
    latestIds: latest.map((log) => (log ? String(log.id) : 'null')).join(' / '),
    trueLatestIds: trueLatest.join(' / '),
    ms,
  };
}
