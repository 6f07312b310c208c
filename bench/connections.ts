/**
 * PostgreSQL connections one instance holds, idle and busy, per ROLE, and a CLI run: what an
 * operator on a small managed PostgreSQL (max_connections 25–100) sizes a deployment with.
 *
 * Each scenario is a real process (`node src/main.ts`, or `node src/cli/run-job.ts`) on a database
 * of its own, with DATABASE_URL, a fake OpenAI server answering every call after 250 ms, and the
 * pool sizes of the scenario (DB_POOL_MAX / PGBOSS_POOL_MAX). pg_stat_activity is sampled every
 * 100 ms and each client backend of that database is counted by application_name:
 *   - `memodrops-scheduler` (`…:cli`): our pool (src/db/client.ts), ≤ DB_POOL_MAX;
 *   - `memodrops-scheduler:pg-boss` (`…:cli:pg-boss`): pg-boss's pool, ≤ PGBOSS_POOL_MAX, and its
 *     LISTEN connection (told apart by its statement: LISTEN, or its pg_listening_channels heartbeat);
 *   - `memodrops-scheduler:probe`: the two short-lived connections of the startup LISTEN/NOTIFY check.
 * Phases:
 *   - startup: spawn → ready (`/healthz` 200, or the "job scheduler ready" line for ROLE=worker) + 12 s
 *     (our pool's idle connections close after 10 s);
 *   - idle: IDLE_S of nothing but the service's own loops (cron pass every 1 s, schedule sync every
 *     2 s, reaper, pg-boss supervision);
 *   - busy: BUSY_S with, as the role allows, a run of each job in progress (LLM_CONCURRENCY 8, sized
 *     to last about the window: items and topics are seeded with SQL) and HTTP load (autocannon, 20
 *     keep-alive connections, half on GET /api/jobs/status and half on GET /api/jobs/logs?limit=20,
 *     so the API wants more connections than DB_POOL_MAX). ROLE=worker gets its runs from a plain
 *     pg-boss send() (the bench's own connection, not counted); ROLE=api has no workers, its POSTs
 *     only enqueue.
 * The CLI scenario spawns `run-job.ts extract-blueprints` (no service running, so it runs the job
 * itself) and samples from spawn to exit.
 *
 *   cd /work/main && npm exec -- node bench/connections.ts            # ~10 min
 *   cd /work/main && npm exec -- node bench/connections.ts --quick    # ~4 min
 */
import { loadavg } from 'node:os';
// @ts-ignore -- autocannon ships no type declarations; the minimal type used here is below.
import autocannonUntyped from 'autocannon';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { startFakeOpenAI, type FakeReply, type FakeRequest } from '../testkit/fake-openai.ts';
import { withClient } from '../src/db/with-client.ts';
import { sleep } from '../testkit/poll.ts';
import { freePort } from '../testkit/ports.ts';
import { SERVICE_READY, spawnNode, type RunningProcess } from '../testkit/processes.ts';
import { fmt, killOnCleanup, machineLine, main, markdownTable, max, median, note, onCleanup, percentile, sized, startPostgres, stopGracefully } from './lib.ts';

type AutocannonResult = { non2xx: number; errors: number };
type AutocannonInstance = Promise<AutocannonResult> & {
  on(event: 'response', listener: (client: unknown, statusCode: number, bytes: number, responseTimeMs: number) => void): AutocannonInstance;
  stop(): void;
};
const autocannon = autocannonUntyped as (options: { url: string; connections: number; duration: number; timeout: number }) => AutocannonInstance;

const LATENCY_MS = 250;
const CONCURRENCY = 8;
const IDLE_S = sized(5, 30);
const BUSY_S = sized(6, 25);
const SETTLE_S = 12;
const SAMPLE_MS = 100;
const HTTP_CONNECTIONS = 20;
/** Items (topics) a run does in about BUSY_S: CONCURRENCY calls per LATENCY_MS. */
const BUSY_ITEMS = Math.round((CONCURRENCY * 1000 * BUSY_S) / LATENCY_MS);
const TOPICS_PER_BLUEPRINT = 5;

type Role = 'all' | 'api' | 'worker';
type Scenario = { label: string; role: Role | 'cli'; dbPoolMax: number; bossPoolMax: number; listenNotify: boolean };
const SCENARIOS: Scenario[] = [
  { label: 'ROLE=all', role: 'all', dbPoolMax: 10, bossPoolMax: 10, listenNotify: true },
  { label: 'ROLE=api', role: 'api', dbPoolMax: 10, bossPoolMax: 10, listenNotify: true },
  { label: 'ROLE=worker', role: 'worker', dbPoolMax: 10, bossPoolMax: 10, listenNotify: true },
  { label: 'ROLE=all, smallest pools', role: 'all', dbPoolMax: 2, bossPoolMax: 2, listenNotify: true },
  { label: 'ROLE=all, USE_LISTEN_NOTIFY=false', role: 'all', dbPoolMax: 10, bossPoolMax: 10, listenNotify: false },
  { label: 'CLI run (`npm run job:extract-blueprints`)', role: 'cli', dbPoolMax: 10, bossPoolMax: 10, listenNotify: true },
];

// ---------------------------------------------------------------------------------------------
// Counting

type Sample = { ours: number; boss: number; listener: number; probe: number; active: number };
const total = (s: Sample) => s.ours + s.boss + s.listener + s.probe;

/** Samples pg_stat_activity for `database` every SAMPLE_MS until stopped. */
function sampler(adminUrl: string, database: string) {
  const samples: Array<{ at: number; sample: Sample }> = [];
  let stopped = false;
  const client = new pg.Client({ connectionString: adminUrl, application_name: 'bench-connections' });
  const loop = (async () => {
    await client.connect();
    while (!stopped) {
      const { rows } = await client.query<{ app: string; state: string | null; query: string }>(
        `select application_name as app, state, query from pg_stat_activity
          where datname = $1 and backend_type = 'client backend' and application_name like 'memodrops-scheduler%'`,
        [database],
      );
      const sample: Sample = { ours: 0, boss: 0, listener: 0, probe: 0, active: 0 };
      for (const row of rows) {
        if (row.state !== 'idle') sample.active += 1;
        if (row.app.endsWith(':probe')) sample.probe += 1;
        else if (row.app.endsWith(':pg-boss')) {
          if (/^LISTEN |pg_listening_channels/.test(row.query.trim())) sample.listener += 1;
          else sample.boss += 1;
        } else sample.ours += 1;
      }
      samples.push({ at: Date.now(), sample });
      await sleep(SAMPLE_MS);
    }
    await client.end();
  })();
  return {
    /** Samples taken in [from, to). */
    window: (from: number, to = Infinity) => samples.filter((s) => s.at >= from && s.at < to).map((s) => s.sample),
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

type Stats = { n: number; p50: number; max: number; ours: number; boss: number; listener: number; probe: number; activeMax: number };
function stats(samples: Sample[]): Stats {
  const totals = samples.map(total);
  return {
    n: samples.length,
    p50: median(totals),
    max: max(totals),
    ours: max(samples.map((s) => s.ours)),
    boss: max(samples.map((s) => s.boss)),
    listener: max(samples.map((s) => s.listener)),
    probe: max(samples.map((s) => s.probe)),
    activeMax: max(samples.map((s) => s.active)),
  };
}

// ---------------------------------------------------------------------------------------------
// The fake LLM and the seeded work

const userMessage = (req: FakeRequest) => req.messages.find((m) => m.role === 'user')?.content ?? '';
async function answer(req: FakeRequest): Promise<FakeReply> {
  await sleep(LATENCY_MS);
  if (req.responseFormatName === 'exam_blueprint') {
    const key = /\[\[item:(\d+)\]\]/.exec(userMessage(req))?.[1] ?? '0';
    return { content: { exam_name: `Concurso ${key}`, organization: null, topics: [{ code: 'T1', name: 'Crase', discipline: 'Língua Portuguesa' }] } };
  }
  return { content: { drops: [1, 2, 3].map((k) => ({ title: `Drop ${k}`, content: `Lição ${k}: crase antes de palavras femininas.` })) } };
}

/** Pending harvest items for one extract run, and blueprints without drops for one generate-drops run. */
async function seedWork(url: string, items: number, topics: number): Promise<void> {
  await withClient(url, async (c) => {
    await c.query(`insert into harvest_items (title, content) select 'Edital ' || i, 'Conteúdo programático [[item:' || i || ']]' from generate_series(1, $1::int) i`, [items]);
    const blueprints = Math.ceil(topics / TOPICS_PER_BLUEPRINT);
    const topicList = JSON.stringify(Array.from({ length: TOPICS_PER_BLUEPRINT }, (_, k) => ({ code: `T${k + 1}`, name: `Tópico ${k + 1}`, discipline: 'Geral' })));
    await c.query(
      `with done as (insert into harvest_items (title, content, status) select 'Seed ' || i, 'seed', 'BLUEPRINT_DONE' from generate_series(1, $1::int) i returning id)
       insert into exam_blueprints (harvest_item_id, exam_name, topics, raw_output, model) select id, 'Seed', $2::jsonb, '{}'::jsonb, 'seed' from done`,
      [blueprints, topicList],
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Processes

/** `node script args`; its warnings and errors are noted; killed by a cleanup step if still running. */
function spawnQuiet(script: string, args: string[], env: Record<string, string>): RunningProcess {
  const proc = killOnCleanup(
    spawnNode(script, {
      args,
      env,
      tailChars: 20_000,
      onLine: (line) => {
        if (/"level":(40|50|60)/.test(line)) note(`${script} ${proc.child.pid}: ${line.slice(0, 300)}`);
      },
    }),
  );
  return proc;
}

/** Up once /healthz answers 200, or (ROLE=worker: no HTTP) once it logs that it is ready. */
async function waitReady(proc: RunningProcess, url: string | undefined, timeoutMs = 60_000): Promise<void> {
  if (url) await proc.waitForHealth(url, timeoutMs, 20);
  else await proc.waitForLine(SERVICE_READY, timeoutMs);
}

function httpLoad(base: string): Promise<{ ok: number; p99: number; non2xx: number; errors: number }> {
  const latencies: number[] = [];
  const run = (path: string) => {
    const instance = autocannon({ url: `${base}${path}`, connections: HTTP_CONNECTIONS / 2, duration: BUSY_S, timeout: 30 });
    instance.on('response', (_c, status, _b, ms) => {
      if (status >= 200 && status < 300) latencies.push(ms);
    });
    return instance;
  };
  return Promise.all([run('/api/jobs/status'), run('/api/jobs/logs?limit=20')]).then((results) => ({
    ok: latencies.length,
    p99: percentile(latencies, 99),
    non2xx: results.reduce((n, r) => n + r.non2xx, 0),
    errors: results.reduce((n, r) => n + r.errors, 0),
  }));
}

// ---------------------------------------------------------------------------------------------

type Result = {
  scenario: Scenario;
  startup: Stats;
  idle?: Stats;
  busy: Stats;
  work: string;
  http?: { ok: number; p99: number; non2xx: number; errors: number };
  /** 1-minute load average when the busy phase started: the machine is shared. */
  load: number;
};

async function runScenario(scenario: Scenario, index: number, postgres: Awaited<ReturnType<typeof startPostgres>>, llmUrl: string): Promise<Result> {
  const database = `bench_conn_${index}`;
  const url = await postgres.createDatabase(database);
  const watch = sampler(postgres.adminUrl, database);
  onCleanup(() => watch.stop());
  const env = {
    DATABASE_URL: url,
    OPENAI_API_KEY: 'sk-bench-connections',
    OPENAI_BASE_URL: llmUrl,
    LLM_CONCURRENCY: String(CONCURRENCY),
    EXTRACT_BATCH_SIZE: String(BUSY_ITEMS),
    DROPS_BATCH_SIZE: String(Math.ceil(BUSY_ITEMS / TOPICS_PER_BLUEPRINT)),
    DB_POOL_MAX: String(scenario.dbPoolMax),
    PGBOSS_POOL_MAX: String(scenario.bossPoolMax),
    USE_LISTEN_NOTIFY: String(scenario.listenNotify),
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
    SHUTDOWN_TIMEOUT_SECONDS: '5',
    RUN_RATE_LIMIT_PER_MINUTE: '10000',
  };

  if (scenario.role === 'cli') {
    // The schema first (a service start would do it), so the CLI's run is what is counted.
    const setup = spawnQuiet('src/main.ts', [], { ...env, ROLE: 'api', PORT: String(await freePort()) });
    await waitReady(setup, undefined);
    await stopGracefully(setup, 20_000);
    await sleep(500);
    await seedWork(url, BUSY_ITEMS, 0);
    const t0 = Date.now();
    const cli = spawnQuiet('src/cli/run-job.ts', ['extract-blueprints'], env);
    const code = (await cli.exited) ?? cli.child.signalCode;
    const all = stats(watch.window(t0));
    await watch.stop();
    const summary = cli.output().split('\n').find((l) => l.startsWith('extract-blueprints ')) ?? `exit ${code}`;
    return { scenario, startup: all, busy: all, work: `exit ${code}: ${summary.replace(/ \(log .*$/, '')}`, load: loadavg()[0]! };
  }

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const t0 = Date.now();
  const proc = spawnQuiet('src/main.ts', [], { ...env, ROLE: scenario.role, PORT: String(port) });
  await waitReady(proc, scenario.role === 'worker' ? undefined : base);
  await sleep(SETTLE_S * 1000);
  const startup = stats(watch.window(t0));
  const idleFrom = Date.now();
  await sleep(IDLE_S * 1000);
  const idle = stats(watch.window(idleFrom));

  await seedWork(url, BUSY_ITEMS, BUSY_ITEMS);
  const load = loadavg()[0]!;
  const busyFrom = Date.now();
  let http: Result['http'];
  const jobIds: string[] = [];
  if (scenario.role === 'worker') {
    const boss = new PgBoss({ connectionString: url, application_name: 'bench-trigger', max: 2, schedule: false, supervise: false });
    boss.on('error', (error) => note(`trigger pg-boss: ${error.message}`));
    await boss.start();
    for (const job of ['extract-blueprints', 'generate-drops']) jobIds.push((await boss.send(job, { trigger: 'manual' }))!);
    await sleep(BUSY_S * 1000);
    await boss.stop({ graceful: false, timeout: 5_000 });
  } else {
    for (const job of ['extract-blueprints', 'generate-drops']) {
      const res = await fetch(`${base}/api/jobs/run/${job}`, { method: 'POST' });
      const body = (await res.json()) as { jobId?: string };
      if (res.status !== 202 || !body.jobId) throw new Error(`POST /api/jobs/run/${job}: ${res.status} ${JSON.stringify(body)}`);
      jobIds.push(body.jobId);
    }
    http = await httpLoad(base);
  }
  const busy = stats(watch.window(busyFrom, busyFrom + BUSY_S * 1000));

  let work = 'no workers: runs only enqueued';
  if (scenario.role !== 'api') {
    // Let the runs finish, to show they did their work with these pool sizes.
    const deadline = Date.now() + 120_000;
    let rows: Array<{ job_name: string; status: string; items_processed: number; items_failed: number }> = [];
    while (Date.now() < deadline) {
      rows = await withClient(url, async (c) =>
        (await c.query(`select job_name, status, items_processed, items_failed from job_logs where metadata->>'job_id' = any($1) and status <> 'STARTED' order by job_name`, [jobIds])).rows,
      );
      if (rows.length === jobIds.length) break;
      await sleep(250);
    }
    const noun = (job: string) => (job === 'generate-drops' ? 'topics' : 'items');
    work = rows.map((r) => `${r.job_name} ${r.status}, ${r.items_processed} ${noun(r.job_name)}${r.items_failed ? ` (${r.items_failed} failed)` : ''}`).join('; ') || 'runs not closed';
  }
  const code = await stopGracefully(proc, 20_000);
  await watch.stop();
  if (code !== 0) note(`${scenario.label}: exit ${code}`);
  return { scenario, startup, idle, busy, work, http, load };
}

await main(async () => {
  const loadBefore = loadavg()[0]!;
  const postgres = await startPostgres('connections');
  const fake = await startFakeOpenAI();
  onCleanup(() => fake.close());
  fake.respond(answer);
  const maxConnections = await withClient(postgres.adminUrl, async (c) => (await c.query('show max_connections')).rows[0].max_connections as string);

  const results: Result[] = [];
  for (const [i, scenario] of SCENARIOS.entries()) {
    note(`${scenario.label}: DB_POOL_MAX=${scenario.dbPoolMax} PGBOSS_POOL_MAX=${scenario.bossPoolMax}`);
    const r = await runScenario(scenario, i, postgres, fake.url);
    note(`  startup max ${r.startup.max}, idle p50 ${r.idle?.p50 ?? '—'} max ${r.idle?.max ?? '—'}, busy p50 ${r.busy.p50} max ${r.busy.max}; ${r.work}`);
    results.push(r);
  }

  const ceiling = (s: Scenario) => {
    const listener = s.listenNotify && s.role !== 'api' ? 1 : 0;
    return `${s.dbPoolMax + s.bossPoolMax + listener} (${s.dbPoolMax} + ${s.bossPoolMax}${listener ? ' + 1' : ''})`;
  };
  const pair = (st: Stats | undefined) => (st ? `${fmt(st.p50, 0)} / ${st.max}` : '—');
  const split = (st: Stats) => `${st.ours} / ${st.boss} / ${st.listener}${st.probe ? ` (+${st.probe} probe)` : ''}`;
  console.log('### Connections per instance (pg_stat_activity, client backends of the instance\'s database)\n');
  console.log(
    `${machineLine()} · PostgreSQL max_connections ${maxConnections} · sampled every ${SAMPLE_MS} ms · idle ${IDLE_S} s after a ${SETTLE_S} s settle, busy ${BUSY_S} s · ` +
      `fake LLM ${LATENCY_MS} ms per call, LLM_CONCURRENCY ${CONCURRENCY}, ${BUSY_ITEMS} items and ${BUSY_ITEMS} topics seeded · HTTP load ${HTTP_CONNECTIONS} keep-alive connections · load average (1 min) ${loadBefore.toFixed(1)} at start, ${loadavg()[0]!.toFixed(1)} at end\n`,
  );
  console.log(
    markdownTable(
      ['scenario', 'ceiling: DB_POOL_MAX + PGBOSS_POOL_MAX (+ listener)', 'startup max', 'idle p50 / max', 'idle max: ours / pg-boss pool / listener', 'busy p50 / max', 'busy max: ours / pg-boss pool / listener', 'busy max active', 'runs', 'HTTP under load: 2xx answers, p99 ms, non-2xx', 'load avg'],
      results.map((r) => [
        r.scenario.label,
        ceiling(r.scenario),
        `${r.startup.max}${r.startup.probe ? ` (${r.startup.probe} probe)` : ''}`,
        r.scenario.role === 'cli' ? '—' : pair(r.idle),
        r.idle ? split(r.idle) : '—',
        pair(r.busy),
        split(r.busy),
        String(r.busy.activeMax),
        r.work,
        r.http ? `${r.http.ok}, ${fmt(r.http.p99, 1)}, ${r.http.non2xx + r.http.errors}` : '—',
        r.load.toFixed(1),
      ]),
    ),
  );
  const limit = (s: Scenario) => s.dbPoolMax + s.bossPoolMax + (s.listenNotify && s.role !== 'api' ? 1 : 0);
  const over = results.filter((r) => Math.max(r.startup.max, r.idle?.max ?? 0, r.busy.max) > limit(r.scenario));
  console.log('');
  // The startup check's two connections close before the pools open, so they never add to the ceiling.
  console.log(over.length ? `- **Over the ceiling**: ${over.map((r) => r.scenario.label).join(', ')}.` : '- No scenario went over its ceiling, in any phase.');
  console.log('- The CLI row is from spawn to exit (startup, migrations check and the run); "busy max" is the same window.');
  console.log('- The HTTP column shows that every request got an answer with these pools; its latency moves with the load of the shared machine (last column), so it is not compared across rows.');
});
