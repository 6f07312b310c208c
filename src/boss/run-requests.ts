import { randomUUID } from 'node:crypto';
import { and, eq, lt, sql } from 'drizzle-orm';
import { fromDrizzle, type PgBoss } from 'pg-boss';
import type { JobPayload } from '../jobs/job.ts';
import type { Db } from '../db/client.ts';
import { runRequests } from '../db/schema.ts';
import type { Logger } from '../logger.ts';

/**
 * Manual runs with an `Idempotency-Key`: the same key for the same job gives the same run.
 *
 * The key is claimed in run_requests and the pg-boss job is created in one transaction, so a crash
 * leaves both or neither. Concurrent requests with one key meet at the unique (job_name,
 * idempotency_key) index: the second insert waits for the first transaction and then, finding the
 * row, answers with its run instead of creating another. A key is remembered for 24 hours; after
 * that it is forgotten and starts a new run. Forgotten rows are deleted now and then.
 */

export const IDEMPOTENCY_KEY_TTL_HOURS = 24;
const TTL = sql`now() - make_interval(hours => ${IDEMPOTENCY_KEY_TTL_HOURS})`;
const CLEANUP_EVERY_MS = 3600_000;

/** 1 to 200 printable ASCII characters. */
export const IDEMPOTENCY_KEY = /^[\x20-\x7e]{1,200}$/;

/** `jobId` null: the queue refused the run (one is already waiting); nothing was recorded. */
export type RunRequest = { jobId: string | null; replayed: boolean };

class Refused extends Error {}

export function createRunRequests({ db, boss, logger }: { db: Db; boss: PgBoss; logger: Logger }) {
  let lastCleanup = 0;

  /** Deletes forgotten keys, at most once an hour per process; never fails the request. */
  function cleanup(): void {
    if (Date.now() - lastCleanup < CLEANUP_EVERY_MS) return;
    lastCleanup = Date.now();
    db.delete(runRequests)
      .where(lt(runRequests.created_at, TTL))
      .then(
        (result) => result.rowCount && logger.debug({ deleted: result.rowCount }, 'forgot expired idempotency keys'),
        (error) => logger.warn({ err: error }, 'could not delete expired idempotency keys'),
      );
  }

  async function send(jobName: string, payload: JobPayload, key: string | undefined): Promise<RunRequest> {
    if (key === undefined) return { jobId: await boss.send(jobName, payload), replayed: false };
    cleanup();
    const sameKey = and(eq(runRequests.job_name, jobName), eq(runRequests.idempotency_key, key));
    try {
      return await db.transaction(async (tx) => {
        // A forgotten key's row would still hold the unique index.
        await tx.delete(runRequests).where(and(sameKey, lt(runRequests.created_at, TTL)));
        const id = randomUUID();
        const [claimed] = await tx
          .insert(runRequests)
          .values({ job_name: jobName, idempotency_key: key, job_id: id })
          .onConflictDoNothing({ target: [runRequests.job_name, runRequests.idempotency_key] })
          .returning({ id: runRequests.id });
        if (!claimed) {
          // Another request with this key committed first (this insert waited for it): its run is the answer.
          const [existing] = await tx.select({ job_id: runRequests.job_id }).from(runRequests).where(sameKey);
          if (!existing) throw new Error('idempotency key conflicted but its row is gone');
          return { jobId: existing.job_id, replayed: true };
        }
        const jobId = await boss.send(jobName, payload, { id, db: fromDrizzle(tx, sql) });
        // Refused by the queue policy: roll back, so the key stays free for a later attempt.
        if (!jobId) throw new Refused();
        return { jobId, replayed: false };
      });
    } catch (error) {
      if (error instanceof Refused) return { jobId: null, replayed: false };
      throw error;
    }
  }

  /** The id of the run waiting in the job's queue (the one that made `send` refuse), or null. */
  async function waiting(jobName: string): Promise<string | null> {
    const [job] = await boss.findJobs(jobName, { queued: true, limit: 1 });
    return job?.id ?? null;
  }

  return { send, waiting };
}
