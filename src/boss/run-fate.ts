import type { JobResult, JobWithMetadata, PgBoss } from 'pg-boss';
import { ConfigurationError } from '../errors.ts';
import { failuresMetadata, ItemsConfigurationError } from '../jobs/failures.ts';
import type { JobDefinition } from '../jobs/job.ts';
import type { Logger } from '../logger.ts';

/** What becomes of a failed run: what pg-boss is told, and what its log says pg-boss will do. */

export type FateDeps = { boss: Pick<PgBoss, 'findJobs'>; logger: Logger };

/** What pg-boss is told about a failed run, and what its log and log line say about that. */
export type Fate = { status: JobResult['status']; note: string; output: Record<string, unknown>; metadata: Record<string, unknown> };

/**
 * A cancelled run: not retried, not dead-lettered. pg-boss holds its job `cancelled` already and
 * settles nothing more (its settles are fenced to active jobs); `completed` is what we would want if
 * it somehow did, so that what pg-boss does still matches `will_retry: false`.
 */
export const CANCELLED: Fate = { status: 'completed', note: ' (not retried)', output: { cancelled: true }, metadata: { will_retry: false, cancelled: true } };

/**
 * What pg-boss will do with a failed run, decided here so that its log can say so truthfully:
 * - on a stately queue pg-boss keeps one job waiting to retry; when another run of the job already
 *   holds that place, this run could only go to the dead-letter queue (pg-boss's retry would find
 *   the place taken). The runs of a job are interchangeable (each takes whatever is pending), so
 *   the pending retry absorbs this failure: pg-boss records this run completed and the log names
 *   the retry that does its work. A run is dead-lettered only when no retry of its job is pending.
 *   While this run is active no other run of a stately queue can be, so that place cannot change
 *   hands before pg-boss settles this run (barring an operator cancelling the pending retry);
 * - a configuration error is not retried (no retry can fix a setting): dead-lettered at once;
 * - otherwise pg-boss retries while attempts are left, then dead-letters.
 */
export async function fateOf(deps: FateDeps, def: JobDefinition, job: JobWithMetadata<unknown>, attempt: number, error: unknown): Promise<Fate> {
  const pending = def.queue.policy === 'stately' ? await pendingRetryOf(deps, def.name, job.id) : null;
  if (pending) {
    return { status: 'completed', note: ` (not retried: job ${pending}'s pending retry will do this work)`, output: { absorbed_by_job_id: pending }, metadata: { will_retry: false, absorbed_by_job_id: pending } };
  }
  if (error instanceof ConfigurationError) {
    const failures = error instanceof ItemsConfigurationError ? failuresMetadata(error.failures) : undefined;
    return {
      status: 'deadletter',
      note: ' (configuration: not retried, dead-lettered)',
      output: { configuration_error: true },
      metadata: { will_retry: false, dead_lettered: true, configuration_error: { variables: error.variables }, ...failures },
    };
  }
  if (attempt <= job.retryLimit) return { status: 'failed', note: ' (will retry)', output: {}, metadata: { will_retry: true } };
  return { status: 'failed', note: ' (retries spent: dead-lettered)', output: {}, metadata: { will_retry: false, dead_lettered: true } };
}

/** The job of this queue waiting to retry, other than `jobId`; null when there is none or it cannot be read. */
async function pendingRetryOf({ boss, logger }: FateDeps, jobName: string, jobId: string): Promise<string | null> {
  try {
    const queued = await boss.findJobs(jobName, { queued: true, limit: 10 });
    return queued.find((j) => j.state === 'retry' && j.id !== jobId)?.id ?? null;
  } catch (error) {
    // Unknown: let pg-boss decide as it would without us (a retry, or a dead letter if the place is taken).
    logger.warn({ err: error, job: jobName }, 'could not read the queue to see whether a retry is pending');
    return null;
  }
}
