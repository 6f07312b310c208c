import { sql } from 'drizzle-orm';
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { fromDrizzle, type JobWithMetadata } from 'pg-boss';
import { deadLetterQueueOf } from '../../boss/job.ts';
import type { SchedulesDeps } from '../../boss/schedules.ts';
import { knownJobOf } from '../known-job.ts';
import { noBody, PaginationSchema, text, UuidParamSchema, validate } from '../validation.ts';

/**
 * Runs whose retries are all spent land in their job's dead-letter queue (`<job>/dead-letter`, kept
 * 90 days). These routes, under /api/jobs/dead-letters, list them and send one back to its job.
 */

const ListSchema = PaginationSchema.extend({ jobName: text().optional() });

/** findJobs pages oldest first; this many a call. */
const PAGE = 10_000;

export type DeadLetter = {
  /** Its id in the dead-letter queue: what `POST /:id/retry` takes. */
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

class NotRetried extends Error {
  readonly status: 404 | 409;
  readonly waitingJobId: string | null;
  constructor(status: 404 | 409, message: string, waitingJobId: string | null = null) {
    super(message);
    this.status = status;
    this.waitingJobId = waitingJobId;
  }
}

export function deadLettersRoutes(deps: SchedulesDeps): Hono {
  const { db, boss, registry } = deps;
  const app = new Hono();
  const knownJob = knownJobOf(registry);

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

  app.get('/', validate('query', ListSchema), async (c) => {
    const { jobName, limit, offset } = c.req.valid('query');
    const names = jobName === undefined ? [...registry.keys()] : [knownJob(jobName)];
    const letters = (await Promise.all(names.map(async (name) => (await deadLettersOf(name)).map((job) => toDeadLetter(job, name))))).flat();
    letters.sort((a, b) => b.created_at.localeCompare(a.created_at) || b.id.localeCompare(a.id));
    return c.json(letters.slice(offset, offset + limit));
  });

  app.post('/:id/retry', validate('param', UuidParamSchema), noBody(), async (c) => {
    const { id } = c.req.valid('param');
    const found = await find(id);
    if (!found) throw new HTTPException(404, { message: `no dead letter with id ${id}` });
    const { jobName, letter } = found;
    const queue = deadLetterQueueOf(jobName);
    try {
      // One transaction: a retry the queue refuses leaves the dead letter exactly as it was.
      const jobId = await db.transaction(async (tx) => {
        const txDb = fromDrizzle(tx, sql);
        // A dead letter an earlier retry could not place was failed in place; make it a candidate again.
        if (letter.state === 'failed') await boss.retry(queue, id, { db: txDb });
        const moved = await boss.redrive(queue, { ids: [id], db: txDb });
        if (moved === 0) {
          const [still] = await boss.findJobs(queue, { id, db: txDb });
          if (!still) throw new NotRetried(404, `no dead letter with id ${id}`);
          const [waiting] = await boss.findJobs(jobName, { queued: true, limit: 1, db: txDb });
          throw new NotRetried(409, `job ${jobName} already has a run waiting to start; retry the dead letter once it has started`, waiting?.id ?? null);
        }
        // The new job carries the chain's first job id, which this dead letter knows.
        const root = letter.sourceRootId ?? letter.sourceId;
        const queued = await boss.findJobs(jobName, { queued: true, db: txDb });
        const jobId = queued.find((job) => job.sourceRootId === root)?.id ?? null;
        // A redrive sends no NOTIFY, so workers listening for one would only see the job at their
        // next backstop poll (30 s). An edit that changes nothing notifies them, on commit.
        if (jobId) await boss.update(jobName, undefined, { id: jobId, db: txDb });
        return jobId;
      });
      deps.logger.info({ job: jobName, deadLetterId: id, jobId }, `dead letter ${id} sent back to ${jobName}`);
      return c.json({ message: `Dead letter ${id} sent back to job ${jobName}`, jobName, id, jobId }, 202);
    } catch (error) {
      if (!(error instanceof NotRetried)) throw error;
      if (error.status === 404) throw new HTTPException(404, { message: error.message });
      return c.json({ error: error.message, jobName, id, jobId: error.waitingJobId }, 409);
    }
  });

  /** Which job's dead-letter queue holds `id`. */
  async function find(id: string): Promise<{ jobName: string; letter: JobWithMetadata<unknown> } | null> {
    for (const jobName of registry.keys()) {
      const [letter] = await boss.findJobs<unknown>(deadLetterQueueOf(jobName), { id });
      if (letter) return { jobName, letter };
    }
    return null;
  }

  return app;
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
