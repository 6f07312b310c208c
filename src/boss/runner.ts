import { and, eq, sql } from 'drizzle-orm';
import type { JobWithMetadata } from 'pg-boss';
import { z } from 'zod';
import type { Db } from '../db/client.ts';
import { jobLogs } from '../db/schema.ts';
import type { Llm, LlmSession, LlmUsage } from '../llm/openai.ts';
import type { Logger } from '../logger.ts';
import { TRIGGERS, type JobDefinition, type JobOutcome, type JobSettings } from './job.ts';
import { previousOccurrence } from './cron.ts';
import { recordRun } from './schedules.ts';

export type RunnerDeps = { db: Db; llm: Llm; logger: Logger; settings: JobSettings };

const PayloadSchema = z
  .object({ trigger: z.enum(TRIGGERS), cron: z.string().optional(), tz: z.string().optional(), scheduled_since: z.iso.datetime().optional() })
  .catch({ trigger: 'manual' });

/** A cron job for an occurrence that came before its schedule was set (see CronPayload). */
function occurrenceBeforeSchedule(payload: z.infer<typeof PayloadSchema>, createdOn: Date): Date | null {
  if (payload.trigger !== 'cron' || !payload.cron || !payload.tz || !payload.scheduled_since) return null;
  const occurrence = previousOccurrence(payload.cron, payload.tz, createdOn);
  return occurrence < new Date(payload.scheduled_since) ? occurrence : null;
}

export class RunTimeoutError extends Error {}

export type Runner = {
  /** Runs one pg-boss job through its handler, logging it in job_logs. Throws when the run FAILED. */
  run(def: JobDefinition, job: JobWithMetadata<unknown>): Promise<JobOutcome>;
  /** Runs in progress in this process. */
  active(): number;
  /** Waits for the runs in progress (each ends COMPLETED or FAILED) until the deadline. */
  drain(timeoutMs: number): Promise<void>;
};

/** One wrapper for every handler: STARTED → COMPLETED | FAILED, whatever started the run. */
export function createRunner({ db, llm, logger, settings }: RunnerDeps): Runner {
  const inFlight = new Set<Promise<unknown>>();

  async function run(def: JobDefinition, job: JobWithMetadata<unknown>): Promise<JobOutcome> {
    const payload = PayloadSchema.parse(job.data);
    const { trigger } = payload;
    const stale = occurrenceBeforeSchedule(payload, job.createdOn);
    if (stale) {
      logger.info({ job: def.name, jobId: job.id }, `skipping ${def.name}: its ${stale.toISOString()} occurrence predates the schedule (set ${payload.scheduled_since})`);
      return { itemsProcessed: 0, itemsFailed: 0, metadata: { skipped: 'occurrence before the schedule was set' } };
    }
    const attempt = job.retryCount + 1;
    const startedAt = Date.now();
    const [log] = await db
      .insert(jobLogs)
      .values({ job_name: def.name, status: 'STARTED', metadata: { job_id: job.id, trigger, attempt } })
      .returning({ id: jobLogs.id });
    const logId = log!.id;
    const runLogger = logger.child({ job: def.name, jobId: job.id, logId, trigger, attempt });
    runLogger.info(`starting job ${def.name}`);

    // Our own deadline, a little inside pg-boss's expiry, so the log can say why the run ended.
    const budgetMs = Math.max(1_000, job.expireInSeconds * 1_000 - 500);
    // A timer cleared when the run ends (AbortSignal.timeout would live on until it fired).
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new RunTimeoutError(`timed out after ${job.expireInSeconds} s`)), budgetMs);
    const timeout = deadline.signal;
    const signal = AbortSignal.any([job.signal, timeout]);
    const sessions: LlmSession[] = [];
    const trackedLlm: Llm = { model: llm.model, session: () => { const s = llm.session(); sessions.push(s); return s; } };

    const work = (async () => {
      try {
        const outcome = await untilAborted(def.handler({ db, llm: trackedLlm, logger: runLogger, signal, logId, settings }), signal);
        await closeLog(logId, 'COMPLETED', { outcome, error: null, extra: {} });
        runLogger.info({ itemsProcessed: outcome.itemsProcessed, itemsFailed: outcome.itemsFailed }, `job ${def.name} finished: ${outcome.itemsProcessed} succeeded, ${outcome.itemsFailed} failed`);
        return outcome;
      } catch (error) {
        const reason = timeout.aborted
          ? reasonOf(timeout.reason, 'timed out')
          : job.signal.aborted
            ? `interrupted: ${abortReason(job.signal.reason)}`
            : reasonOf(error, 'unknown error');
        const willRetry = attempt <= job.retryLimit;
        await closeLog(logId, 'FAILED', { outcome: null, error: reason, extra: { will_retry: willRetry } }).catch((e) =>
          runLogger.error({ err: e }, 'could not record the failure; the reaper will close this log'),
        );
        runLogger.error({ reason, willRetry }, `job ${def.name} failed: ${reason}`);
        throw new Error(reason);
      } finally {
        clearTimeout(timer);
        await recordRun(db, def.name, new Date()).catch((e) => runLogger.error({ err: e }, 'could not update job_schedule'));
      }
    })();

    inFlight.add(work);
    work.catch(() => {}).finally(() => inFlight.delete(work));
    return work;

    async function closeLog(id: number, status: 'COMPLETED' | 'FAILED', r: { outcome: JobOutcome | null; error: string | null; extra: object }) {
      const metadata = {
        ...r.outcome?.metadata,
        ...r.extra,
        duration_ms: Date.now() - startedAt,
        llm: { model: llm.model, ...sumUsage(sessions) },
      };
      await db
        .update(jobLogs)
        .set({
          status,
          ended_at: sql`now()`,
          items_processed: r.outcome?.itemsProcessed ?? 0,
          items_failed: r.outcome?.itemsFailed ?? 0,
          error_message: r.error,
          metadata: sql`${jobLogs.metadata} || ${JSON.stringify(metadata)}::jsonb`,
        })
        // A log the reaper already closed stays closed.
        .where(and(eq(jobLogs.id, id), eq(jobLogs.status, 'STARTED')));
    }
  }

  return {
    run,
    active: () => inFlight.size,
    async drain(timeoutMs) {
      const deadline = new Promise((resolve) => setTimeout(resolve, timeoutMs).unref());
      await Promise.race([Promise.allSettled([...inFlight]), deadline]);
    },
  };
}

function sumUsage(sessions: LlmSession[]): LlmUsage {
  const total: LlmUsage = { calls: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
  for (const { usage } of sessions) {
    for (const key of Object.keys(total) as (keyof LlmUsage)[]) total[key] += usage[key];
  }
  return total;
}

/** Rejects as soon as the signal aborts, even when the handler ignores it. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** pg-boss aborts with a bare AbortError when it stops the worker (shutdown past its grace period). */
function abortReason(reason: unknown): string {
  if (reason instanceof Error && reason.name === 'AbortError') return 'the worker stopped before the run finished (shutdown)';
  return reasonOf(reason, 'aborted by pg-boss');
}

function reasonOf(error: unknown, fallback: string): string {
  if (error instanceof Error && error.message) return error.message;
  if (typeof error === 'string' && error) return error;
  return fallback;
}
