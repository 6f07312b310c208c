/**
 * How late a `* * * * *` job starts after its minute boundary, raw pg-boss vs our service.
 *
 *   (a) raw pg-boss, default options (cron pass every 30 s, send-it poll 5 s, worker poll 2 s)
 *   (b) raw pg-boss, cronWorkerIntervalSeconds = cronMonitorIntervalSeconds = 1
 *   (c) (b) + useListenNotify, queue notify: true
 *   (d) our service (startService), a no-op job on '* * * * *'
 *
 * All four run at once, each on its own databases of one embedded PostgreSQL, so they see the same
 * minute boundaries. Lateness = handler start (Date.now() in the handler) − the minute boundary.
 *
 * An instance's lateness is set by its phase: when its cron pass, its send-it poll and its worker
 * poll happen to fall relative to the minute, all fixed when it starts. One instance gives nearly
 * the same number every minute, so each variant runs INSTANCES instances started at stratified
 * offsets across 30 s (one instance of every variant per offset, so all variants sample the same
 * phases), and the schedules are switched on together, 1–20 s after a boundary, through
 * boss.schedule() for raw pg-boss and PUT /api/jobs/schedules/:name for the service.
 *
 *   cd /work/main && npm exec -- node bench/cron-latency.ts
 */
import pg from 'pg';
import { PgBoss, type ConstructorOptions } from 'pg-boss';
import { createRegistry } from '../src/boss/registry.ts';
import { runMigrations } from '../src/db/migrate.ts';
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
  quietLogger,
  ratio,
  seededRandom,
  sleep,
  startPostgres,
  withClient,
} from './lib.ts';

const CRON = '* * * * *';
const QUEUE = 'bench-noop';
/** Instances per variant, started at stratified offsets across (a)'s 30 s cron-pass period. */
const INSTANCES = 5;
const STAGGER_MS = 30_000;
/** Minute boundaries measured after the schedules are switched on. */
const OCCURRENCES = 2;
const MINUTE = 60_000;
/** The default cron pass (30 s) + send-it poll (5 s) + worker poll (2 s), plus a margin. */
const MAX_LATENESS_MS = 42_000;

type Variant = 'a' | 'b' | 'c' | 'd';
const VARIANTS = ['a', 'b', 'c', 'd'] as const;
const LABELS: Record<Variant, string> = {
  a: '(a) raw pg-boss, default options',
  b: '(b) raw, cron worker/monitor intervals 1 s',
  c: '(c) (b) + LISTEN/NOTIFY, queue notify',
  d: '(d) our service (startService)',
};

type Instance = { variant: Variant; index: number; starts: number[]; activate(): Promise<void>; loggedStarts?: () => Promise<number[]> };

await main(async () => {
  const postgres = await startPostgres('cron');
  const random = seededRandom(1_904);
  const offsets = Array.from({ length: INSTANCES }, (_, i) => ((i + random()) * STAGGER_MS) / INSTANCES);

  const rawInstance = async (variant: 'a' | 'b' | 'c', index: number): Promise<Instance> => {
    const url = await postgres.createDatabase(`bench_cron_${variant}_${index}`);
    const options: Partial<ConstructorOptions> =
      variant === 'a' ? {} : { cronWorkerIntervalSeconds: 1, cronMonitorIntervalSeconds: 1, ...(variant === 'c' ? { useListenNotify: true } : {}) };
    const boss = new PgBoss({ connectionString: url, ...options });
    boss.on('error', (error) => note(`pg-boss (${variant}${index}) error: ${error.message}`));
    await boss.start();
    onCleanup(() => boss.stop({ graceful: false, timeout: 5_000 }));
    await boss.createQueue(QUEUE, { policy: 'stately', ...(variant === 'c' ? { notify: true } : {}) });
    const starts: number[] = [];
    await boss.work(QUEUE, async () => {
      starts.push(Date.now());
    });
    return { variant, index, starts, activate: () => boss.schedule(QUEUE, CRON, {}, { tz: 'UTC' }) };
  };

  const serviceInstance = async (index: number): Promise<Instance> => {
    const url = await postgres.createDatabase(`bench_cron_d_${index}`);
    // The schedule row exists but is off, so the service starts without scheduling the job; it is
    // switched on through the API at the same moment as the raw schedules.
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    try {
      await runMigrations(pool);
      await pool.query(`insert into job_schedule (job_name, cron_expression, timezone, is_active) values ($1, $2, 'UTC', false)`, [QUEUE, CRON]);
    } finally {
      await pool.end();
    }
    const env = parseEnv({ DATABASE_URL: url, PORT: '0', SCHEDULER_TIMEZONE: 'UTC', LOG_LEVEL: 'info' });
    const starts: number[] = [];
    const registry = createRegistry([noopJob(() => starts.push(Date.now()), { name: QUEUE, defaultCron: CRON })]);
    const service = await startService(env, quietLogger(), registry);
    onCleanup(() => service.stop());
    return {
      variant: 'd',
      index,
      starts,
      async activate() {
        const response = await fetch(`${service.url}/api/jobs/schedules/${QUEUE}`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ is_active: true }),
        });
        if (!response.ok) throw new Error(`PUT /api/jobs/schedules answered ${response.status}: ${await response.text()}`);
      },
      async loggedStarts() {
        const { rows } = await service.database.pool.query<{ started_at: Date }>(`select started_at from job_logs where job_name = $1 order by id`, [QUEUE]);
        return rows.map((r) => r.started_at.getTime());
      },
    };
  };

  // Start the instances: one of each variant at each offset, so every variant samples the same phases.
  note(`starting ${INSTANCES} instances per variant over ${STAGGER_MS / 1000} s`);
  const t0 = Date.now();
  const instances = (
    await Promise.all(
      offsets.map(async (offset, i) => {
        await sleep(t0 + offset - Date.now());
        return Promise.all([rawInstance('a', i), rawInstance('b', i), rawInstance('c', i), serviceInstance(i)]);
      }),
    )
  ).flat();
  const connections = await withClient(postgres.adminUrl, async (c) => (await c.query<{ n: number }>(`select count(*)::int as n from pg_stat_activity where backend_type = 'client backend'`)).rows[0]!.n);
  note(`${instances.length} instances up after ${((Date.now() - t0) / 1000).toFixed(1)} s (${connections} client connections)`);

  // Switch every schedule on 1–20 s after a boundary. pg-boss fires an occurrence up to 60 s after
  // it, so the boundary just passed fires too (within (a)'s 37 s worst case); that run lands before
  // the next boundary and is not counted. The boundaries after it are.
  const second = (Date.now() % MINUTE) / 1000;
  const activation = second >= 1 && second <= 20 ? Date.now() : Math.ceil(Date.now() / MINUTE) * MINUTE + 1_000;
  note(`switching the schedules on at ${new Date(activation).toISOString().slice(11, 19)}`);
  await sleep(activation - Date.now());
  await Promise.all(instances.map((i) => i.activate()));
  const first = Math.ceil(Date.now() / MINUTE) * MINUTE;
  const boundaries = Array.from({ length: OCCURRENCES }, (_, i) => first + i * MINUTE);
  const deadline = boundaries.at(-1)! + MAX_LATENESS_MS;
  note(`measuring the boundaries ${boundaries.map((b) => new Date(b).toISOString().slice(11, 19)).join(', ')} (done by ${new Date(deadline).toISOString().slice(11, 19)} at the latest)`);

  const complete = () => instances.every((i) => byBoundary(i.starts, boundaries).samples.length === OCCURRENCES);
  let lastNote = 0;
  while (Date.now() < deadline && !complete()) {
    await sleep(250);
    if (Date.now() - lastNote > 30_000) {
      lastNote = Date.now();
      note(VARIANTS.map((v) => `${v}: ${instances.filter((i) => i.variant === v).reduce((n, i) => n + byBoundary(i.starts, boundaries).samples.length, 0)}/${INSTANCES * OCCURRENCES}`).join(', '));
    }
  }

  const collect = (list: Array<{ times: number[] }>) => {
    const per = list.map((l) => byBoundary(l.times, boundaries));
    return { samples: per.flatMap((p) => p.samples), duplicates: per.reduce((n, p) => n + p.duplicates, 0), perInstance: per.map((p) => p.samples) };
  };
  const results = VARIANTS.map((v) => ({ v, ...collect(instances.filter((i) => i.variant === v).map((i) => ({ times: i.starts }))) }));
  const logged = collect(await Promise.all(instances.filter((i) => i.loggedStarts).map(async (i) => ({ times: await i.loggedStarts!() }))));

  const base = results[0]!;
  const rowOf = (label: string, r: { samples: number[]; duplicates: number; perInstance: number[][] }) => [
    label,
    `${r.samples.length}/${INSTANCES * OCCURRENCES}` + (r.duplicates ? ` (+${r.duplicates} extra)` : ''),
    fmt(min(r.samples), 2),
    fmt(median(r.samples), 2),
    fmt(mean(r.samples), 2),
    fmt(max(r.samples), 2),
    r.perInstance.map((s) => s.map((x) => x.toFixed(1)).join('/')).join(', '),
    ratio(median(r.samples), median(base.samples), 3),
    ratio(mean(r.samples), mean(base.samples), 3),
  ];
  const table = markdownTable(
    ['variant', 'n', 'min s late', 'median s late', 'mean s late', 'max s late', 'per instance (s)', 'median vs (a)', 'mean vs (a)'],
    [...results.map((r) => rowOf(LABELS[r.v], r)), rowOf('(d) same runs, job_logs.started_at', logged)],
  );
  console.log(`### Cron latency: seconds from the minute boundary to handler start (\`${CRON}\`)\n`);
  console.log(
    `${machineLine()} · ${INSTANCES} instances per variant started at offsets ${offsets.map((o) => (o / 1000).toFixed(1)).join(', ')} s · boundaries ${boundaries.map((b) => new Date(b).toISOString().slice(11, 16)).join(', ')} UTC\n`,
  );
  console.log(table);
});

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN;
}

/** Lateness (s) of the first start after each boundary; extra starts in one minute are counted, not used. */
function byBoundary(times: number[], boundaries: number[]): { samples: number[]; duplicates: number } {
  const samples: number[] = [];
  let duplicates = 0;
  for (const boundary of boundaries) {
    const inMinute = times.filter((t) => t >= boundary && t < boundary + MINUTE).sort((x, y) => x - y);
    if (inMinute.length) samples.push((inMinute[0]! - boundary) / 1000);
    duplicates += Math.max(0, inMinute.length - 1);
  }
  return { samples, duplicates };
}
