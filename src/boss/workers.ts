import type { PgBoss, WorkOptions } from 'pg-boss';
import type { JobDefinition } from '../jobs/job.ts';
import type { Registry } from '../jobs/registry.ts';
import type { Runner } from './runner.ts';

/** At most this late does a retry start after its delay (a cheap indexed fetch per queue this often). */
export const RETRY_PICKUP_SECONDS = 5;

/**
 * How a job's worker fetches. By default one run at a time per process (and, with a stately
 * queue, across instances); a job with `worker.batchSize` > 1 fetches that many at once and keeps
 * fetching without a pause while batches come back full.
 */
export function workOptionsOf(def: JobDefinition): WorkOptions {
  const { batchSize = 1, localConcurrency = 1 } = def.worker ?? {};
  return {
    includeMetadata: true,
    perJobResults: true,
    batchSize,
    localConcurrency,
    burstWhenBatchFull: batchSize > 1,
    pollingIntervalSeconds: 2,
    // NOTIFY wakes a worker when a job is created, not when a retry's delay runs out: without a
    // poll of its own, a retry would start up to pg-boss's default 30 s after it is due.
    notifyPollingIntervalSeconds: RETRY_PICKUP_SECONDS,
  };
}

/** Hands pg-boss's batches to the runner (every run goes through it). */
export async function workThroughRunner(boss: PgBoss, def: JobDefinition, runner: Runner, overrides: WorkOptions = {}): Promise<void> {
  await boss.work(def.name, { ...workOptionsOf(def), ...overrides }, (jobs) => runner.runBatch(def, jobs as Parameters<Runner['runBatch']>[1]));
}

export async function registerWorkers(boss: PgBoss, registry: Registry, runner: Runner): Promise<void> {
  for (const def of registry.values()) await workThroughRunner(boss, def, runner);
}
