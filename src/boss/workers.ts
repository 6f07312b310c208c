import type { PgBoss, WorkOptions } from 'pg-boss';
import type { JobDefinition } from './job.ts';
import type { Registry } from './registry.ts';
import type { Runner } from './runner.ts';

/**
 * How a job's worker fetches. By default one run at a time per process (and, with a stately
 * queue, across instances); a job with `worker.batchSize` > 1 fetches that many at once and keeps
 * fetching without a pause while batches come back full.
 */
export function workOptionsOf(def: JobDefinition): WorkOptions {
  const { batchSize = 1, localConcurrency = 1 } = def.worker ?? {};
  return { includeMetadata: true, perJobResults: true, batchSize, localConcurrency, burstWhenBatchFull: batchSize > 1, pollingIntervalSeconds: 2 };
}

/** Hands pg-boss's batches to the runner (every run goes through it). */
export async function workThroughRunner(boss: PgBoss, def: JobDefinition, runner: Runner, overrides: WorkOptions = {}): Promise<void> {
  await boss.work(def.name, { ...workOptionsOf(def), ...overrides }, (jobs) => runner.runBatch(def, jobs as Parameters<Runner['runBatch']>[1]));
}

export async function registerWorkers(boss: PgBoss, registry: Registry, runner: Runner): Promise<void> {
  for (const def of registry.values()) await workThroughRunner(boss, def, runner);
}
