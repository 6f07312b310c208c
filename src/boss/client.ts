import { PgBoss } from 'pg-boss';
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
    // Expired and heartbeat-lost jobs are noticed within seconds, not the default minute.
    superviseIntervalSeconds: 10,
  });
  boss.on('error', (error) => options.logger.error({ err: error }, 'pg-boss error'));
  boss.on('warning', (warning) => options.logger.warn({ warning: warning.data }, `pg-boss: ${warning.message}`));
  return boss;
}

/** Creates or updates the queue of every registered job, so its options follow the code. */
export async function ensureQueues(boss: PgBoss, registry: Registry): Promise<void> {
  for (const job of registry.values()) {
    // A queue's policy is fixed at creation; the rest follows the registry on every start.
    const { policy, partition, ...updatable } = job.queue;
    const existing = await boss.getQueue(job.name);
    if (!existing) {
      await boss.createQueue(job.name, { ...job.queue, notify: true }).catch(async (error) => {
        // Another instance created it a moment ago.
        if (!(await boss.getQueue(job.name))) throw error;
      });
    } else {
      await boss.updateQueue(job.name, { ...updatable, notify: true });
    }
  }
}
