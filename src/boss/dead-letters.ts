import { sql } from 'drizzle-orm';
import { fromDrizzle, type JobWithMetadata, type PgBoss } from 'pg-boss';
import type { Db } from '../db/client.ts';
import { deadLetterQueueOf } from '../jobs/job.ts';
import type { Registry } from '../jobs/registry.ts';
import type { Logger } from '../logger.ts';

/**
 * Runs whose retries are all spent (or that failed on a setting) land in their job's dead-letter
 * queue (`<job>/dead-letter`, kept 90 days). Listing them and sending one back to its job are
 * operations of their own, for the HTTP routes, the CLI and a dashboard alike.
 */

/** findJobs pages oldest first; this many a call. */
const PAGE = 10_000;

export type DeadLetter = {
  /** Its id in the dead-letter queue: what `retry` takes. */
  id: string;
  /** The job whose run failed. */
  job_name: string;
  data: unknown;
  /** `created` while it waits; `failed` if a retry found its job's queue full (see pg-boss redrive). */
  state: string;
  /** When it was dead-lettered. */
  created_at: string;
  /** The pg-boss job that failed, and when it was created. */
  source_job_id: string | null;
  source_created_at: string | null;
  /** Retries the failed job used before it was dead-lettered. */
  retry_count: number | null;
  /** The failure's message, as pg-boss kept it (the stack trace is left out). */
  error: string | null;
};

export class DeadLetterNotFoundError extends Error {}

/** The job's queue already holds a waiting run (stately: one waits at most); nothing was changed. */
export class RunAlreadyWaitingError extends Error {
  readonly jobName: string;
  readonly waitingJobId: string | null;
  constructor(jobName: string, waitingJobId: string | null) {
    super(`job ${jobName} already has a run waiting to start; retry the dead letter once it has started`);
    this.jobName = jobName;
    this.waitingJobId = waitingJobId;
  }
}

export type DeadLetters = {
  /** Newest first, of the given jobs (every registered job by default). */
  list(jobNames?: string[]): Promise<DeadLetter[]>;
  /** Sends one back to its job; resolves with the job and the new run's pg-boss id. */
  retry(id: string): Promise<{ jobName: string; jobId: string | null }>;
};

export function createDeadLetters({ db, boss, registry, logger }: { db: Db; boss: PgBoss; registry: Registry; logger: Logger }): DeadLetters {
  /**
   * Every dead letter of one job. pg-boss lists jobs oldest first and pages only forward, so
   * newest-first with an offset means reading them all; they are few (runs that failed every retry).
   */
  async function deadLettersOf(jobName: string): Promise<JobWithMetadata<unknown>[]> {
    const queue = deadLetterQueueOf(jobName);
    const all: JobWithMetadata<unknown>[] = [];
    for (let after: string | undefined; ; ) {
      const page = await boss.findJobs<unknown>(queue, { limit: PAGE, ...(after ? { after } : {}) });
      all.push(...page);
      if (page.length < PAGE) return all;
      after = page.at(-1)!.id;
    }
  }

  /** Which job's dead-letter queue holds `id`. */
  async function find(id: string): Promise<{ jobName: string; letter: JobWithMetadata<unknown> } | null> {
    for (const jobName of registry.keys()) {
      const [letter] = await boss.findJobs<unknown>(deadLetterQueueOf(jobName), { id });
      if (letter) return { jobName, letter };
    }
    return null;
  }

  return {
    async list(jobNames = [...registry.keys()]) {
      const letters = (await Promise.all(jobNames.map(async (name) => (await deadLettersOf(name)).map((job) => toDeadLetter(job, name))))).flat();
      return letters.sort((a, b) => b.created_at.localeCompare(a.created_at) || b.id.localeCompare(a.id));
    },

    async retry(id) {
      const found = await find(id);
      if (!found) throw new DeadLetterNotFoundError(`no dead letter with id ${id}`);
      const { jobName, letter } = found;
      const queue = deadLetterQueueOf(jobName);
      // One transaction: a retry the queue refuses leaves the dead letter exactly as it was.
      const jobId = await db.transaction(async (tx) => {
        const txDb = fromDrizzle(tx, sql);
        // A dead letter an earlier retry could not place was failed in place; make it a candidate again.
        if (letter.state === 'failed') await boss.retry(queue, id, { db: txDb });
        const moved = await boss.redrive(queue, { ids: [id], db: txDb });
        if (moved === 0) {
          const [still] = await boss.findJobs(queue, { id, db: txDb });
          if (!still) throw new DeadLetterNotFoundError(`no dead letter with id ${id}`);
          const [waiting] = await boss.findJobs(jobName, { queued: true, limit: 1, db: txDb });
          throw new RunAlreadyWaitingError(jobName, waiting?.id ?? null);
        }
        // The new job carries the chain's first job id, which this dead letter knows.
        const root = letter.sourceRootId ?? letter.sourceId;
        const queued = await boss.findJobs(jobName, { queued: true, db: txDb });
        const jobId = queued.find((job) => job.sourceRootId === root)?.id ?? null;
        // A redrive sends no NOTIFY, so workers listening for one would only see the job at their
        // next backstop poll. An edit that changes nothing notifies them, on commit.
        if (jobId) await boss.update(jobName, undefined, { id: jobId, db: txDb });
        return jobId;
      });
      logger.info({ job: jobName, deadLetterId: id, jobId }, `dead letter ${id} sent back to ${jobName}`);
      return { jobName, jobId };
    },
  };
}

function toDeadLetter(job: JobWithMetadata<unknown>, jobName: string): DeadLetter {
  return {
    id: job.id,
    job_name: job.sourceName ?? jobName,
    data: job.data,
    state: job.state,
    created_at: iso(job.createdOn)!,
    source_job_id: job.sourceId ?? null,
    source_created_at: iso(job.sourceCreatedOn),
    retry_count: job.sourceRetryCount ?? null,
    error: messageOf(job.sourceOutput),
  };
}

const iso = (value: Date | string | null | undefined): string | null => (value == null ? null : new Date(value).toISOString());

/** pg-boss stores a thrown error as `{ name, message, stack }`; only the message is shown. */
function messageOf(output: unknown): string | null {
  if (output == null) return null;
  if (typeof output === 'string') return output;
  const message = (output as { message?: unknown }).message;
  return typeof message === 'string' ? message : null;
}
