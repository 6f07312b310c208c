import type { PgBoss } from 'pg-boss';
import type { Registry } from './registry.ts';
import type { Runner } from './runner.ts';

/** One worker per job, one run at a time in this process; the queue policy makes it one across instances. */
export async function registerWorkers(boss: PgBoss, registry: Registry, runner: Runner): Promise<void> {
  for (const def of registry.values()) {
    await boss.work(def.name, { includeMetadata: true, batchSize: 1, localConcurrency: 1, pollingIntervalSeconds: 2 }, async ([job]) => {
      if (job) return runner.run(def, job);
    });
  }
}
