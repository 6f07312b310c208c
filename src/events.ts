import type { Logger } from './logger.ts';

/**
 * The event seam (graphile-worker's WorkerEventMap + safeEmit): what happens to runs, schedules and
 * LLM calls, as typed events. Metrics, alerts and cost accounting subscribe here; the parts that emit
 * know nothing of them. One instance per service, passed in (no global emitter). A leaf module:
 * every layer may emit.
 */
export type SchedulerEventMap = {
  /** A run's job_logs row is open and its handler starts. */
  'run:start': { job: string; jobId: string; logId: number; trigger: string; attempt: number };
  /** A run ended, and what pg-boss was told to do with it. */
  'run:end': {
    job: string;
    jobId: string;
    logId: number;
    trigger: string;
    attempt: number;
    status: 'COMPLETED' | 'FAILED';
    itemsProcessed: number;
    itemsFailed: number;
    durationMs: number;
    /** The failure, or the summary of failed items; null when all went well. */
    error: string | null;
    /** FAILED only: pg-boss retries it. */
    willRetry: boolean;
    /** FAILED only: it went to the job's dead-letter queue. */
    deadLettered: boolean;
    /** FAILED only: the waiting retry of this job that does its work instead. */
    absorbedByJobId: string | null;
    /** FAILED only: it failed on a setting (not retried). */
    configurationError: boolean;
    /** COMPLETED only: it stopped early on a daily LLM budget (`llm:budget_exhausted` says more). */
    budgetExhausted?: boolean;
  };
  /** A run stopped on a daily LLM budget: its unstarted items were given back. Told after its run:end's log closed. */
  'llm:budget_exhausted': { job: string; jobId: string; logId: number; scope: 'job' | 'global'; dailyBudgetUsd: number; spentTodayUsd: number; day: string };
  /** How far a run is: its item count once claimed, then again after each item (a progress bar's feed). */
  'run:progress': { job: string; jobId: string; logId: number; itemsTotal: number; itemsProcessed: number; itemsFailed: number };
  /**
   * The reaper closed a run whose worker was lost, and what pg-boss did with that attempt once it let
   * go of it (heartbeat or expiry). `willRetry`/`deadLettered` as in `run:end`; both absent when
   * pg-boss no longer has the job (`pgbossState: 'gone'`), so its fate is unknown.
   */
  'run:reaped': { job: string; jobId: string | null; logId: number; pgbossState: string; willRetry?: boolean; deadLettered?: boolean };
  /** One HTTP attempt to the model (retries and re-asks are attempts of their own). */
  'llm:call': {
    /** The job whose run made the call; null outside a run. */
    job: string | null;
    model: string;
    /** ok | bad_output (asked again or failed) | transient (429/408/5xx/connection/timeout) | rejected (other 4xx) | unavailable (key or model) | aborted */
    outcome: 'ok' | 'bad_output' | 'transient' | 'rejected' | 'unavailable' | 'aborted';
    status: number | null;
    latencyMs: number;
    promptTokens: number;
    completionTokens: number;
    cachedTokens: number;
  };
  /** A schedule now differs in pg-boss: set through the API, or picked up from a direct table edit. */
  'schedule:changed': { job: string; source: 'api' | 'table'; cron: string; timezone: string; active: boolean };
};

export type SchedulerEventName = keyof SchedulerEventMap;
export type Listener<K extends SchedulerEventName> = (event: SchedulerEventMap[K]) => void | Promise<void>;

export type SchedulerEvents = {
  /** Never throws, never waits: a listener that throws (or rejects) is logged, and the emitter goes on. */
  emit<K extends SchedulerEventName>(name: K, event: SchedulerEventMap[K]): void;
  /** Returns the function that removes the listener. */
  on<K extends SchedulerEventName>(name: K, listener: Listener<K>): () => void;
};

export function createEvents(logger: Logger): SchedulerEvents {
  const listeners = new Map<SchedulerEventName, Set<Listener<never>>>();
  const failed = (name: string, error: unknown) => logger.error({ err: error, event: name }, `a listener of ${name} failed; the event went on`);
  return {
    emit(name, event) {
      for (const listener of listeners.get(name) ?? []) {
        try {
          const result = (listener as Listener<typeof name>)(event);
          if (result instanceof Promise) result.catch((error: unknown) => failed(name, error));
        } catch (error) {
          failed(name, error);
        }
      }
    },
    on(name, listener) {
      let set = listeners.get(name);
      if (!set) listeners.set(name, (set = new Set()));
      set.add(listener as Listener<never>);
      return () => set.delete(listener as Listener<never>);
    },
  };
}

/** For parts used without a service (benchmarks, a bare runner): emits to nobody. */
export const noEvents: SchedulerEvents = { emit() {}, on: () => () => {} };
