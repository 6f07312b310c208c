/**
 * B1 (and the run half of B6): no-op runs completed per second, our runner against raw pg-boss.
 *
 *   (a) raw:   pg-boss work() with a no-op handler; nothing else is written.
 *   (b) tx:    a minimal hand-written pg-boss handler that makes the same two writes our runner
 *              makes (a job_logs row per run, job_schedule.last_run_at) inside the job's
 *              transaction (`transactional: true`): one multi-row insert and one update per batch.
 *   (c) ours:  startService() with a registry of one no-op job; every run goes through the runner
 *              (job_logs STARTED, handler, COMPLETED, job_schedule), settled per run.
 *
 * Every variant uses the same worker settings (batchSize, localConcurrency, burstWhenBatchFull, a
 * notify queue with policy `standard`) on a fresh database migrated with our schema. 1, 2 or 3
 * worker processes start, and each works BENCH_WARMUP untimed jobs on a queue of its own (a
 * process's first thousands of runs pay for JIT compilation; a service that has been up a while
 * does not); then one insert makes every timed job ready, and the clock runs from the first timed
 * handler call in any of them until pg-boss reports every timed job completed. CPU per run is
 * the workers' own process.cpuUsage() over that time, and PostgreSQL's (its processes in /proc)
 * from the first completed job to the last.
 *
 * First a sweep of worker settings with one instance; the settings that suit (b) best are then
 * used for 1, 2 and 3 instances (B6). Each point is measured ROUNDS times, alternating variants;
 * the figure is the median.
 *
 *   cd /work/main && npm exec -- node bench/throughput.ts [--quick]
 *   BENCH_SETTINGS=100x2,500x2 (batchSize x localConcurrency), BENCH_INSTANCES=1,2,3, BENCH_JOBS,
 *   BENCH_ROUNDS, BENCH_WARMUP (0: cold processes), BENCH_VARIANTS=tx,ours to change what is measured.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { PgBoss, type JobWithMetadata } from 'pg-boss';
import { createBoss, ensureQueues } from '../src/boss/client.ts';
import type { JobDefinition } from '../src/jobs/job.ts';
import { createRegistry } from '../src/jobs/registry.ts';
import { runMigrations } from '../src/db/migrate.ts';
import { parseEnv } from '../src/env.ts';
import { startService } from '../src/service.ts';
import { withClient } from '../src/db/with-client.ts';
import { sleep } from '../testkit/poll.ts';
import { spawnNode, type RunningProcess } from '../testkit/processes.ts';
import {
  fmt,
  killOnCleanup,
  machineLine,
  main,
  markdownTable,
  median,
  mib,
  NEVER_CRON,
  NOOP_OUTCOME,
  note,
  onCleanup,
  machineCpuTicks,
  postgresCpuUs,
  quietLogger,
  ratio,
  sized,
  startPostgres,
} from './lib.ts';

const QUEUE = 'bench-throughput';
const JOBS = Number(process.env.BENCH_JOBS ?? sized(5_000, 20_000));
/** Untimed jobs each worker process works first, on a queue of its own (BENCH_WARMUP=0: none). */
const WARMUP = Number(process.env.BENCH_WARMUP ?? sized(1_000, 5_000));
const warmupQueue = (instance: number) => `${QUEUE}-warmup-${instance}`;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? sized(1, 3));
type Settings = { batchSize: number; localConcurrency: number };
const SETTINGS: Settings[] = (process.env.BENCH_SETTINGS ?? sized('100x2,500x2', '100x2,100x4,500x2,500x4,1000x4'))
  .split(',')
  .map((s) => s.split('x').map(Number))
  .map(([batchSize, localConcurrency]) => ({ batchSize: batchSize!, localConcurrency: localConcurrency! }));
const label = (s: Settings) => `${s.batchSize} × ${s.localConcurrency}`;
const INSTANCES = (process.env.BENCH_INSTANCES ?? sized('1,2', '1,2,3')).split(',').map(Number);

const ALL_VARIANTS = ['raw', 'tx', 'ours'] as const;
type Variant = (typeof ALL_VARIANTS)[number];
/** BENCH_VARIANTS=tx,ours to measure some of them only (the ratios need all three). */
const VARIANTS = (process.env.BENCH_VARIANTS?.split(',') as Variant[] | undefined) ?? ALL_VARIANTS;
const LABELS: Record<Variant, string> = {
  raw: '(a) raw pg-boss work(), no-op',
  tx: '(b) hand-written transactional handler, same two writes',
  ours: '(c) our service: runner + no-op job',
};

/** The job under test, as our registry sees it; (a) and (b) use the same queue options. */
const noopJob = ({ batchSize, localConcurrency }: Settings, name = QUEUE): JobDefinition => ({
  name,
  description: 'benchmark no-op',
  defaultCron: NEVER_CRON,
  queue: { policy: 'standard' },
  worker: { batchSize, localConcurrency },
  handler: async () => NOOP_OUTCOME,
});

/** Worker options for (a) and (b): what src/boss/workers.ts gives our job. */
const workOptions = ({ batchSize, localConcurrency }: Settings) =>
  ({ includeMetadata: true, batchSize, localConcurrency, burstWhenBatchFull: true, pollingIntervalSeconds: 2 }) as const;

type ChildReport = { firstHandlerAt: number; rssPeak: number; cpuMs: number };

if (process.argv[2] === '--child') {
  await child(process.argv[3] as Variant, process.argv[4]!, JSON.parse(process.argv[5]!) as Settings, Number(process.argv[6]));
} else {
  await main(parent);
}

type Sample = { variant: Variant; settings: Settings; instances: number; runsPerSecond: number; rssPeak: number; logs: number | null; cpuUsPerRun: number; pgCpuUsPerRun: number; machineBusy: number };

async function parent(): Promise<void> {
  const postgres = await startPostgres('throughput');
  const pgDir = join(postgres.dataDir, 'postgres');
  const samples: Sample[] = [];
  let database = 0;
  const measureRounds = async (settings: Settings, instances: number) => {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const variant of VARIANTS) {
        const name = `bench_tp_${++database}`;
        const url = await postgres.createDatabase(name);
        note(`${label(settings)}, ${instances} instance(s), round ${round}/${ROUNDS}: ${variant}, ${JOBS} jobs`);
        samples.push({ variant, settings, instances, ...(await measure(variant, instances, url, pgDir, settings)) });
        note(`  → ${fmt(samples.at(-1)!.runsPerSecond, 0)} runs/s`);
        // Gone before the next measurement, so PostgreSQL's after-work on it (autovacuum) is not
        // charged to whichever variant comes next.
        await withClient(postgres.adminUrl, (client) => client.query(`drop database ${client.escapeIdentifier(name)} with (force)`));
      }
    }
  };
  const pick = (variant: Variant, settings: Settings, instances: number) =>
    samples.filter((s) => s.variant === variant && s.settings === settings && s.instances === instances);
  const rate = (variant: Variant, settings: Settings, instances: number) => median(pick(variant, settings, instances).map((s) => s.runsPerSecond));
  const cpu = (variant: Variant, settings: Settings, instances: number) => median(pick(variant, settings, instances).map((s) => s.cpuUsPerRun));
  const pgCpu = (variant: Variant, settings: Settings, instances: number) => median(pick(variant, settings, instances).map((s) => s.pgCpuUsPerRun));
  const busy = (variant: Variant, settings: Settings, instances: number) => median(pick(variant, settings, instances).map((s) => s.machineBusy));

  for (const settings of SETTINGS) await measureRounds(settings, 1);
  const reference: Variant = VARIANTS.includes('tx') ? 'tx' : VARIANTS[0]!;
  const best = SETTINGS.reduce((a, b) => (rate(reference, b, 1) > rate(reference, a, 1) ? b : a));
  for (const instances of INSTANCES.filter((n) => n !== 1)) await measureRounds(best, instances);

  const row = (settings: Settings, instances: number, variant: Variant, first: string) => {
    const runs = pick(variant, settings, instances);
    return [
      first,
      LABELS[variant],
      fmt(rate(variant, settings, instances), 0),
      runs.map((s) => s.runsPerSecond.toFixed(0)).join(', '),
      ratio(rate(variant, settings, instances), rate('raw', settings, instances)),
      ratio(rate(variant, settings, instances), rate('tx', settings, instances)),
      fmt(cpu(variant, settings, instances), 0),
      fmt(pgCpu(variant, settings, instances), 0),
      `${fmt(busy(variant, settings, instances) * 100, 0)} %`,
      mib(median(runs.map((s) => s.rssPeak))),
    ];
  };
  const headers = (first: string) => [first, 'variant', 'runs/s (median)', 'runs/s per round', 'vs (a)', 'vs (b)', 'worker CPU µs/run', 'PostgreSQL CPU µs/run', 'machine CPU busy', 'peak RSS MiB per process'];

  console.log('### B1. Run throughput: no-op runs completed per second (and B6: 1–3 instances)\n');
  console.log(
    `${machineLine()} · ${JOBS} jobs per measurement, inserted in one statement once every worker process is up and has worked ${WARMUP} untimed warm-up jobs · burstWhenBatchFull, queue policy standard + notify · median of ${ROUNDS} round(s), variants alternating, fresh database each\n`,
  );
  console.log('Worker settings (batchSize × localConcurrency), one instance:\n');
  console.log(markdownTable(headers('settings'), SETTINGS.flatMap((settings) => VARIANTS.map((variant) => row(settings, 1, variant, label(settings))))));
  console.log(`\nWith the settings that suit (b) best (${label(best)}), 1–${Math.max(...INSTANCES)} instances on one PostgreSQL (B6):\n`);
  console.log(markdownTable(headers('instances'), INSTANCES.flatMap((n) => VARIANTS.map((variant) => row(best, n, variant, String(n))))));
  const oursLogs = samples.filter((s) => s.variant === 'ours').map((s) => s.logs);
  console.log(`\n- job_logs COMPLETED rows after each run of (c): ${[...new Set(oursLogs)].join(', ')} (expected ${JOBS}).`);
  if (!VARIANTS.includes('ours') || !VARIANTS.includes('tx')) return;
  for (const settings of SETTINGS) {
    const r = rate('ours', settings, 1) / rate('tx', settings, 1);
    console.log(`- ${label(settings)}, 1 instance: (c)/(b) = ${r.toFixed(3)} (target ≥ 0.80: ${r >= 0.8 ? 'met' : 'missed'})${VARIANTS.includes('raw') ? `; (c)/(a) = ${(rate('ours', settings, 1) / rate('raw', settings, 1)).toFixed(2)}` : ''}.`);
  }
  for (const n of INSTANCES.filter((i) => i !== 1)) {
    const r = rate('ours', best, n) / rate('tx', best, n);
    console.log(`- ${label(best)}, ${n} instances: (c)/(b) = ${r.toFixed(3)} (target ≥ 0.80: ${r >= 0.8 ? 'met' : 'missed'}); (c) vs 1 instance ${ratio(rate('ours', best, n), rate('ours', best, 1))}, (b) ${ratio(rate('tx', best, n), rate('tx', best, 1))}.`);
  }
}

/** Starts `instances` worker processes, then inserts the jobs and times them until every job is completed. */
async function measure(variant: Variant, instances: number, url: string, pgDir: string, settings: Settings): Promise<Omit<Sample, 'variant' | 'settings' | 'instances'>> {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  onCleanup(() => pool.end().catch(() => {}));
  await runMigrations(pool);
  // The queue as ours creates it (its dead-letter queue included), for every variant.
  const boss = createBoss({ url, logger: quietLogger(), schedule: false, cronWorkerIntervalSeconds: 1, cronMonitorIntervalSeconds: 1, useListenNotify: false, instanceName: 'bench-throughput' });
  await boss.start();
  const registry = createRegistry([noopJob(settings), ...Array.from({ length: instances }, (_, i) => noopJob(settings, warmupQueue(i)))]);
  await ensureQueues(boss, registry);
  await pool.query(`insert into job_schedule (job_name, cron_expression, is_active, timezone) values ($1, $2, false, 'UTC') on conflict do nothing`, [QUEUE, NEVER_CRON]);

  // Every worker process is started and idle before there is work, so no instance's start-up (a
  // second of module loading on these 2 cores) runs inside another's measurement. Each then works
  // WARMUP untimed jobs of its own, so the timed ones meet warm code (JIT) and full connection pools,
  // as in a service that has been up a while. Then one insert makes every timed job ready at once,
  // and its NOTIFY wakes every worker.
  const children = Array.from({ length: instances }, (_, i) => startChild(variant, url, settings, i));
  const reports = children.map((c) => c.report);
  await Promise.all(children.map((c) => c.ready));
  if (WARMUP > 0) {
    for (let i = 0; i < instances; i++) await boss.insert(warmupQueue(i), Array.from({ length: WARMUP }, () => ({ data: { trigger: 'manual' } })));
    const warmupLeft = async () =>
      (await pool.query<{ left: boolean }>(`select exists (select 1 from pgboss.job where name like $1 and state < 'completed') as left`, [`${QUEUE}-warmup-%`])).rows[0]!.left;
    const deadline = Date.now() + 300_000;
    while (await warmupLeft()) {
      if (Date.now() > deadline) throw new Error(`${variant}: the warm-up jobs did not complete within 5 min`);
      await sleep(50);
    }
  }
  // Dirty pages left by earlier work are written now, not by a checkpoint during the measurement.
  await pool.query('checkpoint');
  await boss.insert(QUEUE, Array.from({ length: JOBS }, () => ({ data: { trigger: 'manual' } })));
  await boss.stop({ graceful: false });
  // Two index probes, cheap however many jobs there are: the poll must not load PostgreSQL itself.
  const progress = async () =>
    (
      await pool.query<{ started: boolean; left: boolean }>(
        `select exists (select 1 from pgboss.job where name = $1 and state = 'completed') as started,
                exists (select 1 from pgboss.job where name = $1 and state < 'completed') as left`,
        [QUEUE],
      )
    ).rows[0]!;
  // PostgreSQL's CPU from the first completed job to the last (start-up queries kept out).
  let pgCpuAtFirst: { us: number; completed: number; machine: { busy: number; total: number } } | undefined;
  const deadline = Date.now() + 600_000;
  for (let state = await progress(); state.left; state = await progress()) {
    if (Date.now() > deadline) throw new Error(`${variant}: not every job completed within 10 min`);
    if (state.started && !pgCpuAtFirst) {
      const us = await postgresCpuUs(pgDir);
      const { n } = (await pool.query<{ n: number }>(`select count(*)::int as n from pgboss.job where name = $1 and state = 'completed'`, [QUEUE])).rows[0]!;
      pgCpuAtFirst = { us, completed: n, machine: await machineCpuTicks() };
    }
    await sleep(20);
  }
  const doneAt = Date.now();
  const pgCpuUsPerRun = pgCpuAtFirst ? ((await postgresCpuUs(pgDir)) - pgCpuAtFirst.us) / (JOBS - pgCpuAtFirst.completed) : Number.NaN;
  const machineNow = await machineCpuTicks();
  // Share of both cores in use over the same span: near 100 %, more processes cannot add throughput.
  const machineBusy = pgCpuAtFirst ? (machineNow.busy - pgCpuAtFirst.machine.busy) / (machineNow.total - pgCpuAtFirst.machine.total) : Number.NaN;
  for (const c of children) c.process.sendSignal('SIGTERM');
  const done = await Promise.all(reports);
  // A process that never got a batch reports 0.
  const firstHandlerAt = Math.min(...done.map((r) => r.firstHandlerAt).filter((t) => t > 0));
  const failed = (await pool.query<{ n: number }>(`select count(*)::int as n from pgboss.job where name = $1 and state <> 'completed'`, [QUEUE])).rows[0]!.n;
  if (failed) throw new Error(`${variant}: ${failed} jobs did not complete`);
  const logs =
    variant === 'raw' ? null : (await pool.query<{ n: number }>(`select count(*)::int as n from job_logs where job_name = $1 and status = 'COMPLETED'`, [QUEUE])).rows[0]!.n;
  await pool.end();
  const cpuUsPerRun = (done.reduce((sum, r) => sum + r.cpuMs, 0) * 1000) / JOBS;
  note(`  CPU per run: workers ${cpuUsPerRun.toFixed(0)} µs, PostgreSQL ${pgCpuUsPerRun.toFixed(0)} µs; machine ${(machineBusy * 100).toFixed(0)} % busy`);
  return { runsPerSecond: JOBS / ((doneAt - firstHandlerAt) / 1000), rssPeak: Math.max(...done.map((r) => r.rssPeak)), logs, cpuUsPerRun, pgCpuUsPerRun, machineBusy };
}

/** A worker process; `ready` resolves when it has started and waits for work. */
function startChild(variant: Variant, url: string, settings: Settings, instance: number): { process: RunningProcess; ready: Promise<string>; report: Promise<ChildReport> } {
  const proc = killOnCleanup(
    spawnNode(fileURLToPath(import.meta.url), {
      args: ['--child', variant, url, JSON.stringify(settings), String(instance)],
      // What the worker notes goes to our stderr, as its own.
      onLine: (line, stream) => stream === 'stderr' && process.stderr.write(`${line}\n`),
    }),
  );
  // A worker that dies while starting fails the wait for ready too, so it ends the measurement.
  const ready = proc.waitForLine(/^ready$/, 300_000);
  const report = proc.exited.then((code) => {
    const line = proc.output().trim().split('\n').reverse().find((l) => l.startsWith('{'));
    if (!line) throw new Error(`${variant} worker exited ${code} without a report: ${proc.output()}`);
    return JSON.parse(line) as ChildReport;
  });
  return { process: proc, ready, report };
}

/**
 * One worker process: works the timed queue and its own warm-up queue with the same handler code,
 * says `ready`, notes its first timed handler call, stops on SIGTERM.
 */
async function child(variant: Variant, url: string, settings: Settings, instance: number): Promise<void> {
  let firstHandlerAt = 0;
  let cpuAtStart: NodeJS.CpuUsage | undefined;
  const started = () => {
    if (!firstHandlerAt) {
      firstHandlerAt = Date.now();
      cpuAtStart = process.cpuUsage();
    }
  };
  let rssPeak = 0;
  const rssTimer = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage.rss())), 100);
  let stop = async () => {};
  // SIGTERM comes as soon as every job is completed: the CPU is read before stopping costs any.
  process.once('SIGTERM', () => {
    const cpu = process.cpuUsage(cpuAtStart);
    void ready
      .catch(() => {})
      .then(() => stop())
      .finally(() => {
        clearInterval(rssTimer);
        const report: ChildReport = { firstHandlerAt, rssPeak, cpuMs: firstHandlerAt ? (cpu.user + cpu.system) / 1000 : 0 };
        process.stdout.write(`${JSON.stringify(report)}\n`);
        process.exit(0);
      });
  });

  const ready = (async () => {
    if (variant === 'ours') {
      const env = parseEnv({ DATABASE_URL: url, PORT: '0', SCHEDULER_TIMEZONE: 'UTC', LOG_LEVEL: 'info' });
      const job: JobDefinition = { ...noopJob(settings), handler: async () => (started(), NOOP_OUTCOME) };
      const registry = createRegistry([job, noopJob(settings, warmupQueue(instance))]);
      const service = await startService(env, quietLogger(), registry);
      stop = service.stop;
    } else {
      // pg-boss as src/boss/client.ts configures it (LISTEN/NOTIFY on), without cron.
      const boss = new PgBoss({ connectionString: url, max: 10, schedule: false, useListenNotify: true, superviseIntervalSeconds: 10, monitorIntervalSeconds: 10 });
      boss.on('error', (error) => note(`pg-boss error: ${error.message}`));
      await boss.start();
      for (const [queue, onStart] of [[QUEUE, started], [warmupQueue(instance), () => {}]] as const) {
        if (variant === 'raw') {
          await boss.work(queue, workOptions(settings), async () => {
            onStart();
          });
        } else {
          await boss.work(queue, { ...workOptions(settings), transactional: true }, async (jobs: JobWithMetadata<unknown>[], tx) => {
            onStart();
            await tx.executeSql(
              `insert into job_logs (job_name, status, ended_at, metadata)
               select $1, 'COMPLETED', now(), jsonb_build_object('job_id', id, 'trigger', 'manual', 'attempt', 1) from unnest($2::text[]) as id`,
              [queue, jobs.map((j) => j.id)],
            );
            await tx.executeSql(`update job_schedule set last_run_at = now() where job_name = $1`, [queue]);
          });
        }
      }
      stop = () => boss.stop({ graceful: true, timeout: 5_000 });
    }
  })();
  ready.then(
    () => process.stdout.write('ready\n'),
    (error) => {
      note(`${variant} worker failed to start: ${String(error)}`);
      process.exit(1);
    },
  );
}
