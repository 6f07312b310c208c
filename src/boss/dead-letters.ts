import { sql } from 'drizzle-orm';
import { fromDrizzle, type JobWithMetadata, type PgBoss } from 'pg-boss';
import type { Db, Tx } from '../db/client.ts';
import { markSentBackAs } from '../db/job-logs.ts';
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

/** Which dead letters: of these jobs (every registered job by default), whose error contains `error` (any case). */
export type DeadLetterFilter = { jobNames?: string[]; error?: string };

/** What sending back every matching dead letter did for one job. */
export type JobSentBack = {
  jobName: string;
  /** The new run's pg-boss id; null when nothing was sent (see waitingJobId). */
  jobId: string | null;
  /** The dead letter sent back (the newest that matched), or null. */
  sent: string | null;
  /** The other matching dead letters, removed: the run sent back does their work. */
  settled: string[];
  /** Matching dead letters left as they were, and why (null when none were left). */
  left: string[];
  reason: string | null;
  /** The run already waiting, when that is why. */
  waitingJobId: string | null;
};

export type DeadLetters = {
  /** Newest first. */
  list(filter?: DeadLetterFilter): Promise<DeadLetter[]>;
  /** Sends one back to its job; resolves with the job and the new run's pg-boss id. */
  retry(id: string): Promise<{ jobName: string; jobId: string | null }>;
  /**
   * Sends back every dead letter that matches, as one run per job: a run's payload is only its
   * trigger and every run takes all of its job's pending work, so a second run of the same job
   * would redo nothing the first does not (and a stately queue holds one waiting run at most).
   * Per job, in one transaction: the newest match goes back to the queue, the others are removed
   * from the dead-letter queue, and the logs of the runs they came from say which job took them
   * over (`metadata.sent_back_as`). A job that already has a run waiting is left untouched.
   */
  retryMatching(filter?: DeadLetterFilter): Promise<JobSentBack[]>;
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

  /**
   * Moves `letter` back to its job's queue inside `tx`; resolves with the new job's id. Throws
   * RunAlreadyWaitingError when the queue refuses it (one waiting run at most), and
   * DeadLetterNotFoundError when it was sent back or removed meanwhile.
   */
  async function sendBack(txDb: ReturnType<typeof fromDrizzle>, jobName: string, letter: JobWithMetadata<unknown>): Promise<string | null> {
    const queue = deadLetterQueueOf(jobName);
    // A dead letter an earlier retry could not place was failed in place; make it a candidate again.
    if (letter.state === 'failed') await boss.retry(queue, letter.id, { db: txDb });
    const moved = await boss.redrive(queue, { ids: [letter.id], db: txDb });
    if (moved === 0) {
      const [still] = await boss.findJobs(queue, { id: letter.id, db: txDb });
      if (!still) throw new DeadLetterNotFoundError(`no dead letter with id ${letter.id}`);
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
  }

  /** Each letter's failed run's last log says which job took it over (its attempts carry the failed pg-boss job's id). */
  const markSentBack = (tx: Tx, letters: JobWithMetadata<unknown>[], jobId: string | null) =>
    markSentBackAs(tx, letters.flatMap((letter) => (letter.sourceId ? [letter.sourceId] : [])), jobId);

  const matches = (filter: DeadLetterFilter) => {
    const needle = filter.error?.toLowerCase();
    return (letter: JobWithMetadata<unknown>) => needle === undefined || (messageOf(letter.sourceOutput) ?? '').toLowerCase().includes(needle);
  };

  return {
    async list(filter = {}) {
      const jobNames = filter.jobNames ?? [...registry.keys()];
      const keep = matches(filter);
      const found = await Promise.all(jobNames.map(async (name) => (await deadLettersOf(name)).filter(keep).map((job) => ({ job, name }))));
      return found.flat().sort((a, b) => newestFirst(a.job, b.job)).map(({ job, name }) => toDeadLetter(job, name));
    },

    async retry(id) {
      const found = await find(id);
      if (!found) throw new DeadLetterNotFoundError(`no dead letter with id ${id}`);
      const { jobName, letter } = found;
      // One transaction: a retry the queue refuses leaves the dead letter exactly as it was.
      const jobId = await db.transaction(async (tx) => {
        const jobId = await sendBack(fromDrizzle(tx, sql), jobName, letter);
        await markSentBack(tx, [letter], jobId);
        return jobId;
      });
      logger.info({ job: jobName, deadLetterId: id, jobId }, `dead letter ${id} sent back to ${jobName}`);
      return { jobName, jobId };
    },

    async retryMatching(filter = {}) {
      const outcomes: JobSentBack[] = [];
      for (const jobName of filter.jobNames ?? [...registry.keys()]) {
        const letters = (await deadLettersOf(jobName)).filter(matches(filter));
        if (letters.length === 0) continue;
        // Newest first: the one sent back is the one an operator looking at the list sees on top.
        letters.sort(newestFirst);
        const [newest, ...others] = letters as [JobWithMetadata<unknown>, ...JobWithMetadata<unknown>[]];
        try {
          const jobId = await db.transaction(async (tx) => {
            const txDb = fromDrizzle(tx, sql);
            const jobId = await sendBack(txDb, jobName, newest);
            if (others.length > 0) await boss.deleteJob(deadLetterQueueOf(jobName), others.map((letter) => letter.id), { db: txDb });
            await markSentBack(tx, letters, jobId);
            return jobId;
          });
          outcomes.push({ jobName, jobId, sent: newest.id, settled: others.map((letter) => letter.id), left: [], reason: null, waitingJobId: null });
          logger.info({ job: jobName, jobId, deadLetterIds: letters.map((letter) => letter.id) }, `${letters.length} dead letters of ${jobName} sent back as one run`);
        } catch (error) {
          // Nothing of this job was changed (the transaction rolled back); the other jobs go on.
          if (!(error instanceof RunAlreadyWaitingError || error instanceof DeadLetterNotFoundError)) throw error;
          const waiting = error instanceof RunAlreadyWaitingError;
          const reason = waiting ? `${jobName} already has a run waiting to start; send them back once it has started` : 'its dead letters changed meanwhile (sent back or removed by someone else); look again';
          outcomes.push({ jobName, jobId: null, sent: null, settled: [], left: letters.map((letter) => letter.id), reason, waitingJobId: waiting ? error.waitingJobId : null });
        }
      }
      return outcomes;
    },
  };
}

/** Newest first, then by id: the list's order, and which dead letter a send-back of many picks. */
function newestFirst(a: JobWithMetadata<unknown>, b: JobWithMetadata<unknown>): number {
  return new Date(b.createdOn).getTime() - new Date(a.createdOn).getTime() || b.id.localeCompare(a.id);
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
