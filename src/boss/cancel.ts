import { sql } from 'drizzle-orm';
import { fromDrizzle, type PgBoss } from 'pg-boss';
import type { Db } from '../db/client.ts';
import { amendWillRetry } from '../db/job-logs.ts';
import type { Registry } from '../jobs/registry.ts';
import type { Logger } from '../logger.ts';
import { BOSS_SCHEMA, lockJob, QUEUE_STATES, type QueueState } from './queue.ts';

/**
 * An operator cancels a run: one waiting to start, waiting to retry, or running. pg-boss's cancel
 * ends the job (`cancelled`: never retried, never dead-lettered). A running run is stopped by its
 * runner: at once when this process runs it (abortCancelled), else by the process that does, whose
 * pg-boss heartbeat finds the job gone and aborts the run's signal. Either way its log ends FAILED
 * `cancelled by operator` and its handler gives its claimed items back.
 */

/** What a cancelled run's log says it ended with. */
export const CANCELLED_BY_OPERATOR = 'cancelled by operator';

/** What a runner aborts a run with when told, in its own process, that its job was cancelled. */
export class RunCancelledError extends Error {
  constructor() {
    super(CANCELLED_BY_OPERATOR);
  }
}

/**
 * For the runner: whether a run was stopped because an operator cancelled its job. Told so in
 * this process (RunCancelledError), or aborted otherwise (pg-boss's heartbeat found the job no
 * longer active, or the deadline of a job without heartbeat passed) while pg-boss holds the job
 * `cancelled`. Unknown (pg-boss unreadable) counts as not.
 */
export async function stoppedByCancel(
  { boss, logger }: { boss: Pick<PgBoss, 'findJobs'>; logger: Logger },
  jobName: string,
  jobId: string,
  signal: AbortSignal,
): Promise<boolean> {
  if (signal.reason instanceof RunCancelledError) return true;
  if (!signal.aborted) return false;
  try {
    const [job] = await boss.findJobs(jobName, { id: jobId });
    return job?.state === 'cancelled';
  } catch (error) {
    logger.warn({ err: error, job: jobName, jobId }, 'could not read the job to see whether it was cancelled');
    return false;
  }
}

export class JobNotFoundError extends Error {}

/** The job has ended already (completed, failed, cancelled…); nothing was changed. */
export class JobEndedError extends Error {
  readonly state: string;
  constructor(jobId: string, jobName: string, state: string) {
    super(`job ${jobId} of ${jobName} has already ended (${state}); only a waiting or running job can be cancelled`);
    this.state = state;
  }
}

export type CancelDeps = {
  db: Db;
  boss: Pick<PgBoss, 'cancel'>;
  registry: Registry;
  logger: Logger;
  /** This process's runner: stops the run at once when it runs here (Runner.abortCancelled). */
  abortCancelled?: (jobId: string) => boolean;
  bossSchema?: string;
};

export type CancelledRun = {
  job_id: string;
  job_name: string;
  /** What the job was doing when it was cancelled. */
  state_before: QueueState;
  message: string;
};

const isQueueState = (state: string): state is QueueState => (QUEUE_STATES as readonly string[]).includes(state);

export async function cancelRun({ db, boss, registry, logger, abortCancelled, bossSchema = BOSS_SCHEMA }: CancelDeps, anyCaseJobId: string): Promise<CancelledRun> {
  // As PostgreSQL spells a uuid, and so as the runner knows the run by.
  const jobId = anyCaseJobId.toLowerCase();
  // One transaction: the job is locked from its read to its cancel, and a job waiting to retry
  // has its last attempt's log amended with it, or neither happens.
  const { jobName, stateBefore, amendedLogId } = await db.transaction(async (tx) => {
    const job = await lockJob(tx, jobId, [...registry.keys()], bossSchema);
    if (!job) throw new JobNotFoundError(`no job with id ${jobId} in the queues of ${[...registry.keys()].join(', ')}`);
    if (!isQueueState(job.state)) throw new JobEndedError(jobId, job.name, job.state);
    // pg-boss's typings declare CommandResponse empty; it carries the count (mapCommandResponse).
    const { affected } = (await boss.cancel(job.name, jobId, { db: fromDrizzle(tx, sql) })) as { affected?: number };
    // Cannot happen while the row is locked; said rather than answered as a success.
    if (affected !== 1) throw new Error(`pg-boss did not cancel job ${jobId} of ${job.name} (${job.state})`);
    // Its last attempt's log said it would be retried; from now on it will not.
    const amended = job.state === 'active' ? null : await amendWillRetry(tx, jobId, { cancelled: true, cancelled_at: new Date().toISOString() });
    return { jobName: job.name, stateBefore: job.state, amendedLogId: amended };
  });

  const stoppedHere = stateBefore === 'active' && (abortCancelled?.(jobId) ?? false);
  const message = describe(registry, jobId, jobName, stateBefore, stoppedHere, amendedLogId);
  logger.info({ job: jobName, jobId, stateBefore, stoppedHere, amendedLogId }, message);
  return { job_id: jobId, job_name: jobName, state_before: stateBefore, message };
}

function describe(registry: Registry, jobId: string, jobName: string, state: QueueState, stoppedHere: boolean, amendedLogId: number | null): string {
  const run = `run ${jobId} of ${jobName} cancelled`;
  if (state === 'created') return `${run} before it started`;
  if (state === 'retry') return `${run} while it waited to retry: it will not be retried${amendedLogId === null ? '' : ` (log ${amendedLogId} now says so)`}`;
  if (stoppedHere) return `${run} and stopped; its log ends FAILED "cancelled by operator"`;
  const heartbeat = registry.get(jobName)?.queue.heartbeatSeconds;
  return heartbeat
    ? `${run}; the instance running it stops it within about ${heartbeat} s (its next heartbeat), and its log ends FAILED "cancelled by operator"`
    : `${run}; the instance running it is not told (the job has no heartbeat): the run goes on until it ends or reaches its expiry`;
}
