/**
 * B8. Data at scale (issue 12, "At any size"): the claim statements of both jobs and the read routes
 * over our tables, at 10 k rows and at 1 M harvest_items / 100 k blueprints / 5 M drops.
 *
 * What is measured:
 *   - statements, timed from this process, each inside a transaction that is rolled back (the data
 *     stays the same), one after another: the claims of extract-blueprints and generate-drops
 *     (src/db/claims.ts, with the env's default batch sizes), the release at the end of every run
 *     and the reaper's release of orphaned claims;
 *   - routes, served by the real service process (`node src/main.ts`, ROLE=api: no workers, no cron,
 *     so nothing changes the data) under 10 keep-alive autocannon connections, and under 1; median over
 *     ROUNDS of each round's p50/p99/max. `/api/drops?blueprintId=` asks for a different blueprint
 *     with drops on every request. The preview and queue routes are measured when their folders
 *     exist (src/http/routes/cron/, src/http/routes/queue/).
 * Each size is a database of its own (bench/data-at-scale-seed.ts: generate_series, then VACUUM
 * (ANALYZE) of every table) with its own service; both are up at once and measured side by side
 * (statements rep by rep, routes run by run, the order alternating), so the machine's other work
 * weighs on both sizes alike.
 *
 * Compared: each figure at scale against the same at 10 k (target p99 ≤ ×1.5) and p99 ≤ 20 ms.
 * The plans (EXPLAIN (ANALYZE, BUFFERS)) of the statements and of the routes' SQL go to the output,
 * with and without the indexes of migration 0006 (dropped inside a rolled-back transaction), and
 * the statements are also timed without them. Plans only: a deep offset and a topic filter without
 * a blueprint. At scale, the time to build each 0006 index.
 *
 * `--quick`: 100 k items / 10 k blueprints / 495 k drops, 1 round of 2 s; ~2 min, not for quoting.
 * Full mode: ~20 min, a third of it seeding 5 M drops.
 *
 *   cd /work/main && npm run bench:scale [-- --quick]
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { claimBlueprintsWithoutDrops, claimPendingHarvestItems, releaseClaims, releaseOrphanedClaims } from '../src/db/claims.ts';
import type { Db } from '../src/db/client.ts';
import { listBlueprints } from '../src/db/blueprints.ts';
import { listDrops } from '../src/db/drops.ts';
import { listHarvestItems } from '../src/db/harvest-items.ts';
import * as schema from '../src/db/schema.ts';
import { parseEnv } from '../src/env.ts';
import { freePort } from '../testkit/ports.ts';
import { spawnNode } from '../testkit/processes.ts';
import { dropsOf, JOB_QUEUES, seedBlueprints, seedBossJobs, seedDrops, seedHarvestItems, seedJobLogs, type Scale } from './data-at-scale-seed.ts';
import { explainLines, NEW_INDEXES, planShape, routeExists, withoutNewIndexes } from './data-at-scale-plans.ts';
import { fmt, killOnCleanup, loadRoute, machineLine, main, markdownTable, median, note, onCleanup, percentile, QUICK, ratio, seededRandom, sized, startPostgres, stopGracefully, type LoadRun } from './lib.ts';

const SMALL: Scale = { label: '10 k', harvestItems: 10_000, pending: 100, blueprints: 1_000, withoutDrops: 10, jobLogs: 10_000, finishedJobs: 1_000 };
const LARGE: Scale = sized(
  { label: '100 k', harvestItems: 100_000, pending: 1_000, blueprints: 10_000, withoutDrops: 100, jobLogs: 100_000, finishedJobs: 10_000 },
  { label: '1 M', harvestItems: 1_000_000, pending: 10_000, blueprints: 100_000, withoutDrops: 1_000, jobLogs: 1_000_000, finishedJobs: 100_000 },
);
/** Closed-loop clients: 10 as in B2 (throughput-bound on 2 cores), and 1 (one request at a time: the latency of the work itself). */
const CONNECTION_SETS = [10, 1] as const;
const loadKey = (route: Route, connections: number) => `${route.label} @${connections}`;
const ROUNDS = sized(1, 3);
const DURATION_S = sized(2, 8);
const WARMUP_S = 1;
const REPS = sized(50, 300);
/** A vacuum after this many rolled-back repetitions, so their dead row versions do not pile up in front of the next claim. */
const VACUUM_EVERY = 50;
const TARGET_MS = 20;
const TARGET_GROWTH = 1.5;
/** The run the statements claim for (no foreign key: any id). */
const LOG_ID = 2_000_000_000;
const env = parseEnv({});

type Statement = { label: string; run: (db: Db) => Promise<unknown>; table: string };
const STATEMENTS: Statement[] = [
  { label: `claimPendingHarvestItems (extract-blueprints, ${env.EXTRACT_BATCH_SIZE})`, table: 'harvest_items', run: (db) => claimPendingHarvestItems(db, LOG_ID, env.EXTRACT_BATCH_SIZE) },
  { label: `claimBlueprintsWithoutDrops (generate-drops, ${env.DROPS_BATCH_SIZE})`, table: 'exam_blueprints', run: (db) => claimBlueprintsWithoutDrops(db, LOG_ID, env.DROPS_BATCH_SIZE) },
  { label: 'releaseClaims (end of every run)', table: 'exam_blueprints', run: (db) => releaseClaims(db, [LOG_ID]) },
  { label: 'releaseOrphanedClaims (every reaper pass)', table: 'exam_blueprints', run: (db) => releaseOrphanedClaims(db) },
];

type Route = { label: string; path: string | ((scale: Scale) => () => string); folder?: string; sql?: (db: Db, scale: Scale) => Promise<unknown> };
/** A blueprint with drops, a different one on each call (the same sequence at both sizes). */
const anyBlueprintWithDrops = (scale: Scale) => {
  const random = seededRandom(8);
  return () => `/api/drops?blueprintId=${1 + Math.floor(random() * (scale.blueprints - scale.withoutDrops))}`;
};
const ROUTES: Route[] = [
  { label: '/healthz (floor)', path: '/healthz' },
  { label: '/api/harvest-items?status=PENDING', path: '/api/harvest-items?status=PENDING', sql: (db) => listHarvestItems(db, { status: 'PENDING', limit: 20, offset: 0 }) },
  { label: '/api/drops?blueprintId=(any)', path: anyBlueprintWithDrops, sql: (db, scale) => listDrops(db, { blueprintId: Math.floor((scale.blueprints - scale.withoutDrops) / 2), limit: 20, offset: 0 }) },
  { label: '/api/blueprints', path: '/api/blueprints', sql: (db) => listBlueprints(db, { limit: 20, offset: 0 }) },
  { label: '/api/jobs/schedules/extract-blueprints/preview?count=10', path: '/api/jobs/schedules/extract-blueprints/preview?count=10', folder: 'cron' },
  { label: '/api/cron/preview', path: `/api/cron/preview?cron_expression=${encodeURIComponent('0 6 * * 1-5')}&timezone=America/Sao_Paulo&count=10`, folder: 'cron' },
  { label: '/api/jobs/queue', path: '/api/jobs/queue', folder: 'queue', sql: async (db) => (await import('../src/boss/queue.ts')).listQueue(db, { jobNames: JOB_QUEUES }) },
];
/** Not in the issue's list, plans only: what deep offsets and a topic filter without a blueprint cost at scale. */
const PLAN_ONLY: Array<{ label: string; sql: (db: Db, scale: Scale) => Promise<unknown> }> = [
  { label: 'listHarvestItems, the last page (offset = rows − 20)', sql: (db, scale) => listHarvestItems(db, { limit: 20, offset: scale.harvestItems - 20 }) },
  { label: 'listDrops, ?topicCode= of no drop, no blueprintId', sql: (db) => listDrops(db, { topicCode: 'NONE-00', limit: 20, offset: 0 }) },
];
const routes = ROUTES.filter((route) => !route.folder || routeExists(route.folder));
const skipped = ROUTES.filter((route) => !routes.includes(route));

type Timing = { p50: number; p99: number; max: number; n: number };
type Measured = { scale: Scale; statements: Map<string, { with: Timing; without: Timing }>; routes: Map<string, LoadRun[] | string>; plans: Map<string, { with: string[]; without: string[] }>; seedS: number; builds: Map<string, number> };
/** One size: its database, a service on it, and this process's connection to it. */
type Target = Measured & { base: string; client: pg.Client; db: Db; capture(): Array<{ sql: string; params: unknown[] }>; paths: Map<Route, string | (() => string)> };

await main(async () => {
  const started = performance.now();
  const loadBefore = loadavg()[0]!;
  const postgres = await startPostgres('data-at-scale');
  // Both sizes are up at once and measured side by side (alternating), so the machine's other work
  // weighs on both alike.
  const targets: Target[] = [];
  for (const scale of [SMALL, LARGE]) targets.push(await prepare(await postgres.createDatabase(`bench_scale_${scale.harvestItems}`), scale));
  for (const target of targets) await explainAll(target);
  await timeStatements(targets);
  await loadRoutes(targets);
  await timeBuilds(targets[1]!);
  report(targets, loadBefore, (performance.now() - started) / 1000);
});

async function prepare(url: string, scale: Scale): Promise<Target> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const service = killOnCleanup(spawnNode('src/main.ts', {
    env: { DATABASE_URL: url, PORT: String(port), HOST: '127.0.0.1', ROLE: 'api', LOG_LEVEL: 'warn', LOG_FORMAT: 'json', SCHEDULER_TIMEZONE: 'UTC', JOB_LOGS_RETENTION_DAYS: '0' },
    tailChars: 20_000,
    onLine: (line) => process.stderr.write(`[service ${scale.label}] ${line.slice(0, 300)}\n`),
  }));
  onCleanup(async () => void (await stopGracefully(service, 15_000)));
  await service.waitForHealth(base, 120_000);

  const client = new pg.Client({ connectionString: url, application_name: 'bench-data-at-scale' });
  client.on('error', (error) => note(`bench connection: ${error.message}`));
  await client.connect();
  onCleanup(() => client.end().catch(() => {}));
  // Every statement the domain functions send goes through here, so its plan can be asked for.
  let captured: Array<{ sql: string; params: unknown[] }> = [];
  const db = drizzle(client, { schema, logger: { logQuery: (sql, params) => void captured.push({ sql, params }) } }) as unknown as Db;

  const t0 = performance.now();
  const step = (what: string, total: number) => (done: number) => note(`${scale.label}: ${what} ${done} / ${total}`);
  await seedHarvestItems(client, scale, step('harvest_items', scale.harvestItems));
  await seedBlueprints(client, scale, step('exam_blueprints', scale.blueprints));
  await seedDrops(client, scale, step('drops', dropsOf(scale)));
  await seedBossJobs(client, scale);
  await seedJobLogs(client, scale, step('job_logs', scale.jobLogs));
  for (const table of ['harvest_items', 'exam_blueprints', 'drops', 'job_logs', 'pgboss.job_common', 'pgboss.queue']) await client.query(`vacuum (analyze) ${table}`);
  const seedS = (performance.now() - t0) / 1000;
  note(`${scale.label}: seeded and vacuumed in ${fmt(seedS, 0)} s`);
  return {
    scale, base, client, db, seedS,
    capture: () => captured.splice(0),
    paths: new Map(routes.map((route) => [route, typeof route.path === 'string' ? route.path : route.path(scale)])),
    statements: new Map(), routes: new Map(), plans: new Map(), builds: new Map(),
  };
}

/** Plans: what each call sends (in a transaction rolled back), then each statement's plan in another, with the 0006 indexes and without them. */
async function explainAll({ scale, client, db, capture, plans }: Target): Promise<void> {
  const explained = [...STATEMENTS.map((s) => ({ label: s.label, sql: s.run })), ...[...routes, ...PLAN_ONLY].filter((r) => r.sql).map((r) => ({ label: r.label, sql: (d: Db) => r.sql!(d, scale) }))];
  for (const { label, sql } of explained) {
    await client.query('begin');
    capture();
    await sql(db).finally(() => client.query('rollback'));
    const sent = capture();
    const plan = async (dropIndexes: boolean) => {
      await client.query('begin');
      try {
        if (dropIndexes) await withoutNewIndexes(client);
        const lines: string[] = [];
        for (const [i, statement] of sent.entries()) lines.push(...(sent.length > 1 ? [`-- statement ${i + 1} of ${sent.length}`] : []), ...(await explainLines(client, statement.sql, statement.params)));
        return lines;
      } finally {
        await client.query('rollback');
      }
    };
    plans.set(label, { with: await plan(false), without: await plan(true) });
  }
}

/** Each statement REPS times per size and variant, the sizes alternating rep by rep, each rep in a transaction rolled back. */
async function timeStatements(targets: Target[]): Promise<void> {
  const stats = (ms: number[]): Timing => ({ p50: median(ms), p99: percentile(ms, 99), max: Math.max(...ms), n: ms.length });
  for (const statement of STATEMENTS) {
    for (const dropIndexes of [false, true]) {
      const ms = new Map<Target, number[]>(targets.map((target) => [target, []]));
      for (let i = 0; i < REPS; i++) {
        for (const target of i % 2 ? [...targets].reverse() : targets) {
          await target.client.query('begin');
          if (dropIndexes) await withoutNewIndexes(target.client);
          const t = performance.now();
          await statement.run(target.db);
          ms.get(target)!.push(performance.now() - t);
          await target.client.query('rollback');
          if ((i + 1) % VACUUM_EVERY === 0) await target.client.query(`vacuum ${statement.table}`);
        }
      }
      for (const target of targets) {
        const entry = target.statements.get(statement.label) ?? { with: stats([]), without: stats([]) };
        entry[dropIndexes ? 'without' : 'with'] = stats(ms.get(target)!);
        target.statements.set(statement.label, entry);
      }
    }
    note(`${statement.label}: p99 ${targets.map((t) => `${t.scale.label} ${fmt(t.statements.get(statement.label)!.with.p99, 2)} ms (without 0006: ${fmt(t.statements.get(statement.label)!.without.p99, 2)} ms)`).join(', ')}`);
  }
}

/** Every route: a warm-up per size, then ROUNDS rounds in rotating order, each route at both sizes one after the other (the order alternating). */
async function loadRoutes(targets: Target[]): Promise<void> {
  for (const target of targets) {
    for (const route of routes) {
      const path = target.paths.get(route)!;
      const response = await fetch(target.base + (typeof path === 'string' ? path : path()));
      if (!response.ok) target.routes.set(route.label, `answered ${response.status}: ${(await response.text()).slice(0, 200)}`);
      else await loadRoute(target.base, path, { connections: CONNECTION_SETS[0], durationS: WARMUP_S });
    }
  }
  const measured = routes.filter((route) => targets.every((target) => !target.routes.has(route.label)));
  const loads = CONNECTION_SETS.flatMap((connections) => measured.map((route) => ({ route, connections, key: loadKey(route, connections) })));
  for (const target of targets) for (const { key } of loads) target.routes.set(key, []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, { route, connections, key }] of loads.map((_, k) => [k, loads[(k + round) % loads.length]!] as const)) {
      for (const target of (round + i) % 2 ? [...targets].reverse() : targets) {
        const run = await loadRoute(target.base, target.paths.get(route)!, { connections, durationS: DURATION_S });
        (target.routes.get(key) as LoadRun[]).push(run);
        note(`${target.scale.label}, round ${round + 1}/${ROUNDS}, ${key}: p50 ${fmt(run.p50, 2)} ms, p99 ${fmt(run.p99, 2)} ms, codes ${run.codes}`);
      }
    }
  }
}

/** What migration 0006 costs on a table this size: each index built again, alone. */
async function timeBuilds({ client, builds }: Target): Promise<void> {
  for (const name of NEW_INDEXES) {
    const { rows: [found] } = await client.query<{ indexdef: string }>('select indexdef from pg_indexes where indexname = $1', [name]);
    if (!found) continue;
    await client.query(`drop index ${name}`);
    const t = performance.now();
    await client.query(found.indexdef);
    builds.set(name, (performance.now() - t) / 1000);
  }
}

function report(results: Measured[], loadBefore: number, wallS: number): void {
  const [small, large] = results as [Measured, Measured];
  const verdict = (p99Small: number, p99Large: number, floor = false) =>
    floor ? '(floor)' : `${p99Large / p99Small <= TARGET_GROWTH ? 'met' : '**missed**'} / ${p99Large <= TARGET_MS ? 'met' : '**missed**'}`;
  const rows: string[][] = [];
  for (const statement of STATEMENTS) {
    const a = small.statements.get(statement.label)!.with;
    const b = large.statements.get(statement.label)!.with;
    rows.push([`\`${statement.label}\``, fmt(a.p50, 2), fmt(a.p99, 2), fmt(b.p50, 2), fmt(b.p99, 2), fmt(b.max, 1), ratio(b.p99, a.p99), verdict(a.p99, b.p99), `${a.n} + ${b.n} reps`]);
  }
  for (const [connections, route] of CONNECTION_SETS.flatMap((c) => routes.map((route) => [c, route] as const))) {
    const a = small.routes.get(loadKey(route, connections)) ?? small.routes.get(route.label)!;
    const b = large.routes.get(loadKey(route, connections)) ?? large.routes.get(route.label)!;
    if (typeof a === 'string' || typeof b === 'string') {
      rows.push([`\`GET ${route.label}\` ×${connections}`, '', '', '', '', '', '', `not measured: ${typeof a === 'string' ? a : b}`, '']);
      continue;
    }
    const med = (runs: LoadRun[], key: 'p50' | 'p99' | 'max') => median(runs.map((r) => r[key]));
    rows.push([`\`GET ${route.label}\` ×${connections}`, fmt(med(a, 'p50'), 2), fmt(med(a, 'p99'), 2), fmt(med(b, 'p50'), 2), fmt(med(b, 'p99'), 2), fmt(med(b, 'max'), 1), ratio(med(b, 'p99'), med(a, 'p99')), verdict(med(a, 'p99'), med(b, 'p99'), route.path === '/healthz'), `${a.map((r) => fmt(r.p99, 1)).join(' / ')} · ${b.map((r) => fmt(r.p99, 1)).join(' / ')}`]);
  }
  const sizes = (s: Scale) =>
    `${s.harvestItems} harvest_items (${s.pending} PENDING), ${s.blueprints} exam_blueprints (${s.withoutDrops} without drops), ${dropsOf(s)} drops, ${s.jobLogs} job_logs, ${s.finishedJobs} finished pg-boss jobs`;

  console.log(`### B8. Data at scale (${SMALL.label} → ${LARGE.label} harvest_items)\n`);
  console.log(
    `${machineLine()} · ${QUICK ? '**quick mode: not the figures to quote** · ' : ''}load average ${fmt(loadBefore, 1)} at the start, ${fmt(loadavg()[0]!, 1)} at the end (2 cores, shared) · wall time ${fmt(wallS, 0)} s\n\n` +
      `- ${SMALL.label}: ${sizes(small.scale)}; seeded and vacuumed in ${fmt(small.seedS, 0)} s.\n- ${LARGE.label}: ${sizes(large.scale)}; seeded and vacuumed in ${fmt(large.seedS, 0)} s.\n` +
      `- Statements: ${REPS} repetitions each, rolled back, timed from the client. Routes: \`node src/main.ts\` (ROLE=api), autocannon with ${CONNECTION_SETS.join(' and with ')} keep-alive connection(s) (×10, ×1 in the table), ${ROUNDS} round(s) × ${DURATION_S} s after ${WARMUP_S} s warm-up, median over rounds.\n`,
  );
  console.log(markdownTable(['statement / route', `p50 ms ${SMALL.label}`, `p99 ms ${SMALL.label}`, `p50 ms ${LARGE.label}`, `p99 ms ${LARGE.label}`, `max ms ${LARGE.label}`, `p99 ${LARGE.label} / ${SMALL.label}`, `≤ ×${TARGET_GROWTH} / ≤ ${TARGET_MS} ms`, `p99 per round ${SMALL.label} · ${LARGE.label}`], rows));
  console.log('');
  if (skipped.length) console.log(`- Not measured (no src/http/routes/${[...new Set(skipped.map((r) => r.folder))].join('/, src/http/routes/')}/ yet): ${skipped.map((r) => `\`${r.label}\``).join(', ')}.\n`);
  const trouble = results.flatMap((m) => [...m.routes].flatMap(([key, runs]) =>
    Array.isArray(runs) && runs.some((r) => r.non2xx + r.errors + r.timeouts > 0) ? [`${m.scale.label} \`${key}\`: ${runs.map((r) => r.codes).join(', ')}`] : []));
  console.log(trouble.length ? `- **Non-2xx answers or errors** (left out of the latencies): ${trouble.join('; ')}.\n` : '- Every answer was a 2xx.\n');

  console.log(`Without the indexes of migration 0006 (${NEW_INDEXES.map((n) => `\`${n}\``).join(', ')}; dropped inside each rolled-back transaction):\n`);
  console.log(markdownTable(['statement', `p99 ms ${SMALL.label} without / with`, `p99 ms ${LARGE.label} without / with`, `p50 ms ${LARGE.label} without / with`], STATEMENTS.map((s) => {
    const a = small.statements.get(s.label)!;
    const b = large.statements.get(s.label)!;
    return [`\`${s.label}\``, `${fmt(a.without.p99, 2)} / ${fmt(a.with.p99, 2)}`, `${fmt(b.without.p99, 2)} / ${fmt(b.with.p99, 2)}`, `${fmt(b.without.p50, 2)} / ${fmt(b.with.p50, 2)}`];
  })));
  console.log('');
  if (large.builds.size) console.log(`- Building each 0006 index at ${LARGE.label} (what the migration takes, the table write-locked meanwhile): ${[...large.builds].map(([name, s]) => `\`${name}\` ${fmt(s, 2)} s`).join(', ')}.\n`);

  console.log(`#### Plans at ${LARGE.label} (EXPLAIN (ANALYZE, BUFFERS))\n`);
  for (const [label, plan] of large.plans) {
    const changed = planShape(plan.with) !== planShape(plan.without);
    const planOnly = PLAN_ONLY.some((entry) => entry.label === label) ? ' (plan only, not timed)' : '';
    console.log(`\`${label}\`${planOnly}${changed ? ' — **changed by 0006**' : ''}:\n\n\`\`\`\n${plan.with.join('\n')}\n\`\`\`\n`);
    if (changed) console.log(`without the 0006 indexes:\n\n\`\`\`\n${plan.without.join('\n')}\n\`\`\`\n`);
  }
}
