import { hostname } from 'node:os';
import type { JobResult, JobWithMetadata, PgBoss } from 'pg-boss';
import { z } from 'zod';
import type { Db } from '../db/client.ts';
import { closeCancelledRuns, closeRuns, openRuns, type RunEnd } from '../db/job-logs.ts';
import { noEvents, type SchedulerEventMap, type SchedulerEvents } from '../events.ts';
import type { Llm, LlmSession, LlmUsage } from '../llm/openai.ts';
import type { Logger } from '../logger.ts';
import { TRIGGERS, type CronPayload, type JobContext, type JobDefinition, type JobOutcome, type JobSettings, type Trigger } from '../jobs/job.ts';
import { judgeCronJob } from './cron-occurrence.ts';
import { failuresMetadata, ItemsConfigurationError, summarizeFailures } from '../jobs/failures.ts';
import { recordRun } from './schedules.ts';
import { budgetEventOf, runBudget } from './run-budget.ts';
import { CANCELLED_BY_OPERATOR, RunCancelledError, stoppedByCancel } from './cancel.ts';
import { CANCELLED, fateOf } from './run-fate.ts';

export type RunnerDeps = {
  db: Db;
  /** Read to tell, before a failed run is settled, what pg-boss will do with it. */
  boss: Pick<PgBoss, 'findJobs'>;
  llm: Llm;
  logger: Logger;
  settings: JobSettings;
  /** Where runs are told as they start and end; none by default. */
  events?: SchedulerEvents;
  /** Who runs, recorded on every run's log (a CLI run may be run by a service); default THIS_WORKER. */
  worker?: string;
};

/** `host:pid` of this process, as run logs name their worker. */
export const THIS_WORKER = `${hostname()}:${process.pid}`;

const PayloadSchema = z
  .object({
    trigger: z.enum(TRIGGERS),
    cron: z.string().optional(),
    tz: z.string().optional(),
    scheduled_since: z.iso.datetime().optional(),
    occurrence: z.iso.datetime().optional(),
  })
  .catch({ trigger: 'manual' });

/** The cron payload in a job's data, when a schedule sent it (see CronPayload). */
function cronPayloadOf(payload: z.infer<typeof PayloadSchema>): CronPayload | null {
  const { trigger, cron, tz, scheduled_since, occurrence } = payload;
  if (trigger !== 'cron' || !cron || !tz || !scheduled_since) return null;
  return { trigger, cron, tz, scheduled_since, ...(occurrence && { occurrence }) };
}

export class RunTimeoutError extends Error {}

export type Runner = {
  /**
   * Runs a batch of pg-boss jobs of one job, each through its handler, side by side, and logs each
   * in job_logs: one insert opens the batch's logs, one update closes them. Resolves with each job's
   * result for pg-boss (`perJobResults`); throws, failing the whole batch, only when the logs
   * cannot be written.
   */
  runBatch(def: JobDefinition, jobs: JobWithMetadata<unknown>[]): Promise<JobResult[]>;
  /** Waits for the runs in progress (each ends COMPLETED or FAILED) until the deadline. */
  drain(timeoutMs: number): Promise<void>;
  /**
   * Aborts this process's run of a pg-boss job the operator has just cancelled, at once: its log
   * ends FAILED `cancelled by operator`. False when this process is not running it; the process
   * that is notices within its heartbeat (the job's signal) and ends the run the same way.
   */
  abortCancelled(jobId: string): boolean;
};

/** `cron`: the occurrence a schedule's job is for, and whether it is a missed one sent on restart. */
type Run = { job: JobWithMetadata<unknown>; trigger: Trigger; attempt: number; cron?: { occurrence: string; catch_up?: true } };
/** How a run ended, ready for the closing update and for pg-boss. */
type Ending = {
  logId: number;
  event: SchedulerEventMap['run:end'];
  status: 'COMPLETED' | 'FAILED';
  outcome: JobOutcome | null;
  error: string | null;
  metadata: Record<string, unknown>;
  result: JobResult;
};

/** One wrapper for every handler: STARTED → COMPLETED | FAILED, whatever started the run. */
export function createRunner({ db, boss, llm, logger, settings, worker = THIS_WORKER, events = noEvents }: RunnerDeps): Runner {
  const inFlight = new Set<Promise<unknown>>();

  async function runBatch(def: JobDefinition, jobs: JobWithMetadata<unknown>[]): Promise<JobResult[]> {
    const skipped: JobResult[] = [];
    const runs: Run[] = [];
    for (const job of jobs) {
      const payload = PayloadSchema.parse(job.data);
      const cron = cronPayloadOf(payload);
      const verdict = cron && judgeCronJob(cron, job.createdOn);
      if (verdict && !verdict.run) {
        logger.info({ job: def.name, jobId: job.id }, `skipping ${def.name}: ${verdict.reason}`);
        skipped.push({ id: job.id, status: 'completed', output: { skipped: verdict.reason } });
        continue;
      }
      const occurrence = verdict && { occurrence: verdict.occurrence.toISOString(), ...(verdict.catchUp && { catch_up: true as const }) };
      if (occurrence?.catch_up) logger.info({ job: def.name, jobId: job.id, occurrence: occurrence.occurrence }, `${def.name}: catch-up run for the missed ${occurrence.occurrence} occurrence (missed_policy once)`);
      runs.push({ job, trigger: payload.trigger, attempt: job.retryCount + 1, ...(occurrence && { cron: occurrence }) });
    }
    if (runs.length === 0) return skipped;

    const batch = (async () => {
      const logIds = await openLogs(def.name, runs);
      try {
        const batched = runs.length > 1;
        const endings = await Promise.all(runs.map((run) => runOne(def, run, logIds.get(run.job.id)!, batched)));
        // The ledger's calls of these runs are written before their logs close (never throws).
        if (endings.some((ending) => ending.metadata.llm)) await llm.flush();
        await closeLogs(endings);
        // Told once the logs say so, so a listener that reads job_logs finds the run closed.
        for (const ending of endings) {
          events.emit('run:end', ending.event);
          const budgetEvent = budgetEventOf(ending.event, ending.metadata);
          if (budgetEvent) events.emit('llm:budget_exhausted', budgetEvent);
        }
        if (batched) {
          const failed = endings.filter((e) => e.status === 'FAILED').length;
          logger.info({ job: def.name, runs: runs.length, failed }, `${runs.length} runs of ${def.name}: ${runs.length - failed} completed, ${failed} failed`);
        }
        return [...skipped, ...endings.map((ending) => ending.result)];
      } finally {
        await recordRun(db, def.name, new Date()).catch((e) => logger.error({ err: e, job: def.name }, 'could not update job_schedule'));
      }
    })();
    inFlight.add(batch);
    batch.catch(() => {}).finally(() => inFlight.delete(batch));
    return batch;
  }

  /** Committed before any handler starts, so a crash leaves the rows for the reaper. */
  function openLogs(jobName: string, runs: Run[]): Promise<Map<string, number>> {
    return openRuns(db, jobName, runs.map(({ job, trigger, attempt, cron }) => ({ job_id: job.id, trigger, attempt, worker, ...cron })));
  }

  /** The runs in progress in this process, by pg-boss job id: how abortCancelled reaches one. */
  const running = new Map<string, (reason: unknown) => void>();

  /**
   * Runs one handler to its end; never throws: a failure is an Ending too. A run in a batch logs
   * its start and end at debug (the batch logs one line), so logs grow with batches, not runs.
   */
  async function runOne(def: JobDefinition, { job, trigger, attempt }: Run, logId: number, batched: boolean): Promise<Ending> {
    const startedAt = Date.now();
    // Made on first use: a child logger costs more than a short run does.
    let runLogger: Logger | undefined;
    const log = () => (runLogger ??= logger.child({ job: def.name, jobId: job.id, logId, trigger, attempt }));
    const progress = batched ? 'debug' : 'info';
    const logsProgress = logger.isLevelEnabled(progress);
    if (logsProgress) log()[progress](`starting job ${def.name}`);
    events.emit('run:start', { job: def.name, jobId: job.id, logId, trigger, attempt });

    // One signal for the handler: aborted by pg-boss (run failed elsewhere, shutdown) or by our own
    // deadline, a little inside pg-boss's expiry, so the log can say why the run ended. Aborting
    // also ends our wait, even for a handler that ignores its signal. A listener and a timer, both
    // removed when the run ends (AbortSignal.any/timeout cost more and linger).
    const budgetMs = Math.max(1_000, job.expireInSeconds * 1_000 - 500);
    const run = new AbortController();
    const signal = run.signal;
    let endWait!: (reason: unknown) => void;
    const aborted = new Promise<never>((_, reject) => (endWait = reject));
    aborted.catch(() => {}); // read by the race below; never an unhandled rejection if the handler throws first
    const abort = (reason: unknown) => {
      run.abort(reason);
      endWait(reason);
    };
    const onJobAbort = () => abort(job.signal.reason);
    if (job.signal.aborted) onJobAbort();
    else job.signal.addEventListener('abort', onJobAbort, { once: true });
    running.set(job.id, abort);
    const timer = setTimeout(() => abort(new RunTimeoutError(`timed out after ${job.expireInSeconds} s`)), budgetMs);
    const sessions: LlmSession[] = [];
    let usedLlm = false;
    const trackedLlm: Llm = { model: llm.model, flush: llm.flush, session: () => { usedLlm = true; const s = llm.session({ job: def.name, logId }); sessions.push(s); return s; } };
    // LLM usage only for a run that asked for the model client (0 calls when it was unavailable): a
    // no-LLM run's log stays small, and its closing update stays on the row's page (drizzle/0003).
    const metadataOf = (extra: object | undefined) => ({
      ...extra,
      duration_ms: Date.now() - startedAt,
      ...(usedLlm && { llm: { model: llm.model, ...sumUsage(sessions) } }),
    });

    /** The run:end event, from what its log says. */
    const ended = (status: Ending['status'], counts: JobOutcome | null, error: string | null, metadata: Record<string, unknown>): Ending['event'] => ({
      job: def.name,
      jobId: job.id,
      logId,
      trigger,
      attempt,
      status,
      itemsProcessed: counts?.itemsProcessed ?? 0,
      itemsFailed: counts?.itemsFailed ?? 0,
      durationMs: metadata.duration_ms as number,
      error,
      willRetry: metadata.will_retry === true,
      deadLettered: metadata.dead_lettered === true,
      absorbedByJobId: typeof metadata.absorbed_by_job_id === 'string' ? metadata.absorbed_by_job_id : null,
      configurationError: metadata.configuration_error !== undefined,
      budgetExhausted: metadata.budget_exhausted === true,
    });

    try {
      const tellProgress: JobContext['progress'] = ({ total, processed, failed }) =>
        events.emit('run:progress', { job: def.name, jobId: job.id, logId, itemsTotal: total, itemsProcessed: processed, itemsFailed: failed });
      const budget = await runBudget(db, def, settings, llm.flush);
      const context: JobContext = { db, llm: trackedLlm, get logger() { return log(); }, signal, logId, settings, budget, progress: tellProgress };
      const outcome = await Promise.race([def.handler(context), aborted]);
      if (logsProgress) log()[progress]({ itemsProcessed: outcome.itemsProcessed, itemsFailed: outcome.itemsFailed }, `job ${def.name} finished: ${outcome.itemsProcessed} succeeded, ${outcome.itemsFailed} failed`);
      // Item failures do not fail the run, but the log says what failed and why.
      const failures = outcome.failures ?? [];
      const error = outcome.itemsFailed > 0 ? summarizeFailures(def.itemNoun ?? 'items', outcome.itemsFailed, outcome.itemsProcessed + outcome.itemsFailed, failures) : null;
      // No output for pg-boss: the outcome is in job_logs.
      const metadata = metadataOf({ ...outcome.metadata, ...failuresMetadata(failures) });
      return { logId, status: 'COMPLETED', outcome, error, metadata, result: { id: job.id, status: 'completed' }, event: ended('COMPLETED', outcome, error, metadata) };
    } catch (error) {
      const cancelled = await stoppedByCancel({ boss, logger }, def.name, job.id, signal);
      const reason = cancelled
        ? CANCELLED_BY_OPERATOR
        : signal.reason instanceof RunTimeoutError
          ? signal.reason.message
          : job.signal.aborted
            ? `interrupted: ${abortReason(job.signal.reason)}`
            : reasonOf(error, 'unknown error');
      const fate = cancelled ? CANCELLED : await fateOf({ boss, logger }, def, job, attempt, error);
      log().error({ reason, willRetry: fate.metadata.will_retry }, `job ${def.name} failed: ${reason}${fate.note}`);
      // A run refused item by item still counts the items it tried.
      const tried = error instanceof ItemsConfigurationError ? { itemsProcessed: 0, itemsFailed: error.failures.length } : null;
      const metadata = metadataOf(fate.metadata);
      return { logId, status: 'FAILED', outcome: tried, error: reason, metadata, result: { id: job.id, status: fate.status, output: { message: reason, ...fate.output } }, event: ended('FAILED', tried, reason, metadata) };
    } finally {
      clearTimeout(timer);
      job.signal.removeEventListener('abort', onJobAbort);
      running.delete(job.id);
    }
  }


  /**
   * One update closes every log of the batch; a log the reaper already closed stays closed, except
   * a cancelled run's (the reaper may see its job cancelled before our heartbeat does, and would
   * call it a lost worker): closeCancelledRuns says what happened instead.
   */
  async function closeLogs(endings: Ending[]): Promise<void> {
    const ends: RunEnd[] = endings.map((e) => ({
      id: e.logId,
      status: e.status,
      items_processed: e.outcome?.itemsProcessed ?? 0,
      items_failed: e.outcome?.itemsFailed ?? 0,
      error_message: e.error,
      metadata: e.metadata,
    }));
    const cancelled = ends.filter((end) => end.metadata.cancelled === true);
    try {
      if (cancelled.length < ends.length) await closeRuns(db, cancelled.length ? ends.filter((end) => !cancelled.includes(end)) : ends);
      if (cancelled.length) await closeCancelledRuns(db, cancelled);
    } catch (error) {
      logger.error({ err: error, logIds: ends.map((v) => v.id) }, 'could not record how the runs ended; the reaper will close their logs');
      // pg-boss fails (and retries) the batch: a run whose end is not recorded is not done.
      throw new Error(`could not record how the runs ended: ${reasonOf(error, 'database error')}`);
    }
  }

  return {
    runBatch,
    async drain(timeoutMs) {
      const deadline = new Promise((resolve) => setTimeout(resolve, timeoutMs).unref());
      await Promise.race([Promise.allSettled([...inFlight]), deadline]);
    },
    abortCancelled(jobId) {
      const abort = running.get(jobId);
      abort?.(new RunCancelledError());
      return abort !== undefined;
    },
  };
}

/** The sessions' usage added up; cost_usd is null when the model has no price (or no session was opened). */
function sumUsage(sessions: LlmSession[]): LlmUsage {
  const total: LlmUsage = { calls: 0, prompt_tokens: 0, cached_prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, cost_usd: null };
  for (const { usage } of sessions) {
    total.calls += usage.calls;
    total.prompt_tokens += usage.prompt_tokens;
    total.cached_prompt_tokens += usage.cached_prompt_tokens;
    total.completion_tokens += usage.completion_tokens;
    total.total_tokens += usage.total_tokens;
    if (usage.cost_usd !== null) total.cost_usd = (total.cost_usd ?? 0) + usage.cost_usd;
  }
  // As the ledger stores it (numeric(14, 8)), so the log equals the sum of its ledger rows.
  if (total.cost_usd !== null) total.cost_usd = Math.round(total.cost_usd * 1e8) / 1e8;
  return total;
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
