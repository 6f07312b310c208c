import { PgBoss, type Queue } from 'pg-boss';
import { deadLetterQueueOf } from './job.ts';
import type { Logger } from '../logger.ts';
import type { Registry } from './registry.ts';

export type BossOptions = {
  url: string;
  logger: Logger;
  /** Run cron (false for CLI runs and API-only processes). */
  schedule: boolean;
  cronWorkerIntervalSeconds: number;
  cronMonitorIntervalSeconds: number;
  useListenNotify: boolean;
  applicationName?: string;
};

/** A pg-boss instance tuned for prompt cron: pg-boss's defaults start a scheduled job up to ~37 s late. */
export function createBoss(options: BossOptions): PgBoss {
  const boss = new PgBoss({
    connectionString: options.url,
    application_name: options.applicationName ?? 'memodrops-scheduler:pg-boss',
    max: 10,
    connectionTimeoutMillis: 5_000,
    schedule: options.schedule,
    cronWorkerIntervalSeconds: options.cronWorkerIntervalSeconds,
    cronMonitorIntervalSeconds: options.cronMonitorIntervalSeconds,
    useListenNotify: options.useListenNotify,
    // Expired and heartbeat-lost jobs are noticed within ~10 s, not the default minute: the per-queue
    // monitor pass that fails them runs at the longer of these two intervals.
    superviseIntervalSeconds: 10,
    monitorIntervalSeconds: 10,
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

/** Dead letters wait for an operator: kept 90 days instead of pg-boss's 14. */
const DEAD_LETTER_RETENTION_SECONDS = 90 * 24 * 3600;

/**
 * Creates or updates the queue of every registered job and its dead-letter queue, so their options
 * follow the code. Safe to run from several instances at once.
 */
export async function ensureQueues(boss: PgBoss, registry: Registry): Promise<void> {
  for (const job of registry.values()) {
    const deadLetter = deadLetterQueueOf(job.name);
    await ensureQueue(boss, deadLetter, { retentionSeconds: DEAD_LETTER_RETENTION_SECONDS });
    await ensureQueue(boss, job.name, { ...job.queue, deadLetter, notify: true });
  }
}

async function ensureQueue(boss: PgBoss, name: string, options: Omit<Queue, 'name'>): Promise<void> {
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
