import type { Queue } from 'pg-boss';
import type { Db } from '../db/client.ts';
import type { Llm } from '../llm/openai.ts';
import type { Logger } from '../logger.ts';
import type { SpendBudget } from './spend-budget.ts';

export const TRIGGERS = ['cron', 'manual', 'cli'] as const;
export type Trigger = (typeof TRIGGERS)[number];

/** The payload of every job we send; pg-boss stores it, so it is parsed again on the way out. */
export type JobPayload = { trigger: Trigger };

/**
 * What a schedule gives the jobs it creates. pg-boss fires any occurrence of the last 60 s, so a
 * schedule set at 10:00:30 to `0 10 * * *` would run at once; `scheduled_since` lets the runner
 * drop occurrences older than the schedule itself.
 */
export type CronPayload = {
  trigger: 'cron';
  cron: string;
  tz: string;
  scheduled_since: string;
  /** The occurrence it is for, set only by the DST gap filler (pg-boss's own sends leave it out). */
  occurrence?: string;
};

export type JobSettings = {
  extractBatchSize: number;
  llmConcurrency: number;
  dropsBatchSize: number;
  /** LLM_DAILY_BUDGET_USD: most all jobs' LLM calls may cost per day of globalBudgetTimeZone; unset = none. */
  globalDailyBudgetUsd?: number;
  globalBudgetTimeZone?: string;
};

/** What a handler gets for one run. */
export type JobContext = {
  db: Db;
  llm: Llm;
  logger: Logger;
  /** Aborted when the run expires, is cancelled or the service stops past its grace period. */
  signal: AbortSignal;
  /** The job_logs row of this run; item claims point at it so a dead run's claims can be released. */
  logId: number;
  settings: JobSettings;
  /** The daily LLM budgets in force, asked before each item; absent or NO_BUDGET when none (no queries). */
  budget?: SpendBudget;
  /** Says how far the run is (items claimed, done, failed); free when nobody watches. */
  progress(counts: { total: number; processed: number; failed: number }): void;
};

/** One item (or topic) a run could not do, and why; `item` names it, e.g. `{ harvest_item_id: 3 }`. */
export type ItemFailure = { item: Record<string, string | number>; reason: string };

/** Item-level failures are counted, not thrown: a handler throws only when it cannot do its work. */
export type JobOutcome = {
  itemsProcessed: number;
  itemsFailed: number;
  /** Every failed item with its reason; the log keeps a summary and the first few. */
  failures?: ItemFailure[];
  metadata?: Record<string, unknown>;
};

/**
 * Queue settings of the pipeline's jobs; each adds its expiry. One run at a time across instances
 * (`stately`: one active, one waiting), 3 retries with exponential backoff from 30 s capped at 10
 * min, and a heartbeat, so a killed worker's run is noticed (and retried) within ~20 s instead of at
 * expiry.
 */
export const PIPELINE_QUEUE = {
  policy: 'stately',
  retryLimit: 3,
  retryDelay: 30,
  retryBackoff: true,
  retryDelayMax: 600,
  heartbeatSeconds: 10,
} as const satisfies Omit<Queue, 'name'>;

/** Where a job's runs go once their retries are spent; `POST /api/jobs/dead-letters/:id/retry` redrives them. */
export const deadLetterQueueOf = (jobName: string) => `${jobName}/dead-letter`;

export type JobDefinition = {
  /** Also the pg-boss queue name: permanent. */
  name: string;
  description: string;
  defaultCron: string;
  /** What its items are called in a failure summary ("9 of 9 topics failed: …"). Default "items". */
  itemNoun?: string;
  /** It calls the model: without OPENAI_API_KEY every run fails, which startup warns about. */
  usesLlm?: boolean;
  /** Queue options, set on every start (retries, expiry, heartbeat, policy). */
  queue: Omit<Queue, 'name'>;
  /**
   * How many runs a worker fetches at once (run side by side, logged with one insert and one
   * update) and how many such workers each process keeps. Default 1 and 1: the MemoDrops jobs run
   * one at a time; many short jobs go faster in batches.
   */
  worker?: { batchSize?: number; localConcurrency?: number };
  handler(ctx: JobContext): Promise<JobOutcome>;
};
