import { PgBoss, type Queue } from 'pg-boss';
import { deadLetterQueueOf } from '../jobs/job.ts';
import type { Logger } from '../logger.ts';
import type { Registry } from '../jobs/registry.ts';

export type BossOptions = {
  url: string;
  logger: Logger;
  /** Run cron (false for CLI runs and API-only processes). */
  schedule: boolean;
  cronWorkerIntervalSeconds: number;
  cronMonitorIntervalSeconds: number;
  useListenNotify: boolean;
  applicationName?: string;
  /** Most connections of pg-boss's pool (PGBOSS_POOL_MAX); its LISTEN connection is not one of them. */
  poolMax?: number;
  /** This process's name in pg-boss's instance registry (see instanceNameOf). */
  instanceName: string;
};

/** Registry names: the CLI reads them to tell whether a running service will take its run. */
export const instanceNameOf = (role: 'all' | 'api' | 'worker' | 'cli') => `memodrops-scheduler/${role}`;
export const WORKING_INSTANCE_NAMES: ReadonlySet<string> = new Set([instanceNameOf('all'), instanceNameOf('worker')]);

/** A pg-boss instance tuned for prompt cron: pg-boss's defaults start a scheduled job up to ~37 s late. */
export function createBoss(options: BossOptions): PgBoss {
  const boss = new PgBoss({
    connectionString: options.url,
    application_name: options.applicationName ?? 'memodrops-scheduler:pg-boss',
    instanceName: options.instanceName,
    // A crashed instance reads as gone after three missed beats: 30 s instead of 90.
    instanceHeartbeatSeconds: 10,
    max: options.poolMax ?? 10,
    connectionTimeoutMillis: 5_000,
    schedule: options.schedule,
    cronWorkerIntervalSeconds: options.cronWorkerIntervalSeconds,
    cronMonitorIntervalSeconds: options.cronMonitorIntervalSeconds,
    useListenNotify: options.useListenNotify,
    // Expired and heartbeat-lost jobs are noticed within ~10 s, not the default minute: the per-queue
    // monitor pass that fails them runs at the longer of these two intervals.
    superviseIntervalSeconds: 10,
    monitorIntervalSeconds: 10,
    // Retention (README "Data retention"), explicit rather than pg-boss's defaults. Every instance
    // supervises; pg-boss lets one of them sweep each queue per interval. The sweep deletes jobs past
    // their queue's deleteAfterSeconds / retentionSeconds (ensureQueues): hourly, not the default
    // daily, so a finished job outlives its week by an hour at most.
    supervise: true,
    maintenanceIntervalSeconds: PG_BOSS_MAINTENANCE_INTERVAL_SECONDS,
    // No history tables: warnings go to our log (below), queue counts are read live.
    persistWarnings: false,
    persistQueueStats: false,
  });
  boss.on('error', (error) => options.logger.error({ err: error }, 'pg-boss error'));
  boss.on('warning', (warning) => options.logger.warn({ warning: warning.data }, `pg-boss: ${warning.message}`));
  return boss;
}

/** The internal queue pg-boss's cron pass puts each due occurrence in, for its send-it worker to send. */
const CRON_SEND_IT_QUEUE = '__pgboss__send-it';

/**
 * pg-boss creates its send-it queue without notify, so its worker finds an occurrence only at its
 * next poll (cronWorkerIntervalSeconds): up to a second on top of the cron pass's own. With notify
 * the pass's insert wakes it at once. Call after start() on an instance that runs cron.
 */
export async function wakeCronSenderOnNotify(boss: PgBoss): Promise<void> {
  await boss.updateQueue(CRON_SEND_IT_QUEUE, { notify: true });
}

const DAY_SECONDS = 24 * 3600;

/** How often pg-boss sweeps each queue for jobs past their retention (README "Data retention"). */
export const PG_BOSS_MAINTENANCE_INTERVAL_SECONDS = 3600;

/**
 * A job's queue: pg-boss's rows are the queue's working state, job_logs is the history, so a
 * finished (completed, failed, cancelled) job goes after a week, and a run still waiting to start
 * after two weeks (no worker took it) is dropped. A job definition's `queue` may override both.
 */
export const JOB_QUEUE_RETENTION = { deleteAfterSeconds: 7 * DAY_SECONDS, retentionSeconds: 14 * DAY_SECONDS } as const;

/**
 * Dead letters wait for an operator: kept 90 days (pg-boss's default is 14) whether still waiting
 * (`created`) or failed in place by a redrive that could not place them.
 */
export const DEAD_LETTER_RETENTION = { deleteAfterSeconds: 90 * DAY_SECONDS, retentionSeconds: 90 * DAY_SECONDS } as const;

/**
 * Creates or updates the queue of every registered job and its dead-letter queue, so their options
 * follow the code. Safe to run from several instances at once.
 */
export async function ensureQueues(boss: PgBoss, registry: Registry): Promise<void> {
  for (const job of registry.values()) {
    const deadLetter = deadLetterQueueOf(job.name);
    await ensureQueue(boss, deadLetter, { ...DEAD_LETTER_RETENTION });
    await ensureQueue(boss, job.name, { ...JOB_QUEUE_RETENTION, ...job.queue, deadLetter, notify: true });
  }
}

/** Creates the queue, or brings its options in line with these; several instances may race to create it. */
export async function ensureQueue(boss: PgBoss, name: string, options: Omit<Queue, 'name'>): Promise<void> {
  if (await boss.getQueue(name)) {
    // A queue's policy and partitioning are fixed at creation; the rest can follow the code.
    const { policy, partition, ...updatable } = options;
    await boss.updateQueue(name, updatable);
    return;
  }
  await boss.createQueue(name, options).catch(async (error) => {
    // Another instance created it a moment ago.
    if (!(await boss.getQueue(name))) throw error;
  });
}
