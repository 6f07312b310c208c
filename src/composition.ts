import type { PgBoss } from 'pg-boss';
import { createBoss, instanceNameOf } from './boss/client.ts';
import { createRunner, type Runner } from './boss/runner.ts';
import type { Db } from './db/client.ts';
import type { Env } from './env.ts';
import type { SchedulerEvents } from './events.ts';
import { insertLlmCalls } from './db/llm-calls.ts';
import { createLedger } from './llm/ledger.ts';
import { createLlm } from './llm/openai.ts';
import { loadPrices, type Prices } from './llm/prices.ts';
import type { Logger } from './logger.ts';

/**
 * Where the environment becomes the parts' options, once, for the service and the CLI alike: the
 * entry points call these and never map variables themselves.
 */

/**
 * The price table, loaded once at startup: a bad LLM_PRICES_FILE is a ConfigurationError (exit 2);
 * a model with no price is warned about once, since its calls will record no cost.
 */
export function loadPricesFromEnv(env: Pick<Env, 'LLM_PRICES_FILE' | 'OPENAI_MODEL'>, logger: Logger): Prices {
  const prices = loadPrices(env.LLM_PRICES_FILE);
  if (!prices.of(env.OPENAI_MODEL)) {
    logger.warn({ model: env.OPENAI_MODEL, prices: prices.source }, `OPENAI_MODEL ${env.OPENAI_MODEL} has no price: its LLM calls record tokens with cost_usd null; set LLM_PRICES_FILE`);
  }
  return prices;
}

/** The runner every run goes through; its LLM calls are recorded in the ledger (llm_calls). */
export function createJobRunner(env: Env, db: Db, boss: PgBoss, logger: Logger, events: SchedulerEvents, prices: Prices): Runner {
  return createRunner({
    db,
    boss,
    events,
    llm: createLlm({
      events,
      prices,
      ledger: createLedger({ write: (records) => insertLlmCalls(db, records), logger }),
      apiKey: env.OPENAI_API_KEY,
      baseURL: env.OPENAI_BASE_URL,
      model: env.OPENAI_MODEL,
      timeoutMs: env.OPENAI_TIMEOUT_SECONDS * 1000,
      maxRetries: env.OPENAI_MAX_RETRIES,
      retryAfterMaxMs: env.OPENAI_RETRY_AFTER_MAX_SECONDS * 1000,
    }),
    logger,
    settings: {
      extractBatchSize: env.EXTRACT_BATCH_SIZE,
      llmConcurrency: env.LLM_CONCURRENCY,
      dropsBatchSize: env.DROPS_BATCH_SIZE,
      globalDailyBudgetUsd: env.LLM_DAILY_BUDGET_USD,
      globalBudgetTimeZone: env.SCHEDULER_TIMEZONE,
    },
  });
}

/**
 * pg-boss for a service role or a CLI run. Only processes that work jobs run cron; `listens`
 * (LISTEN/NOTIFY) is decided by the caller, which has checked that notifications arrive.
 */
export function createBossFromEnv(env: Env, { url, logger, role, listens }: { url: string; logger: Logger; role: Env['ROLE'] | 'cli'; listens: boolean }): PgBoss {
  return createBoss({
    url,
    logger,
    schedule: role === 'all' || role === 'worker',
    cronWorkerIntervalSeconds: env.CRON_WORKER_INTERVAL_SECONDS,
    cronMonitorIntervalSeconds: env.CRON_MONITOR_INTERVAL_SECONDS,
    useListenNotify: listens,
    poolMax: env.PGBOSS_POOL_MAX,
    instanceName: instanceNameOf(role),
    ...(role === 'cli' && { applicationName: 'memodrops-scheduler:cli:pg-boss' }),
  });
}
