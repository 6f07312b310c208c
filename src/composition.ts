import type { PgBoss } from 'pg-boss';
import { createBoss, instanceNameOf } from './boss/client.ts';
import { createRunner, type Runner } from './boss/runner.ts';
import type { Db } from './db/client.ts';
import type { Env } from './env.ts';
import type { SchedulerEvents } from './events.ts';
import { createLlm } from './llm/openai.ts';
import type { Logger } from './logger.ts';

/**
 * Where the environment becomes the parts' options, once, for the service and the CLI alike: the
 * entry points call these and never map variables themselves.
 */

/** The runner every run goes through. */
export function createJobRunner(env: Env, db: Db, boss: PgBoss, logger: Logger, events: SchedulerEvents): Runner {
  return createRunner({
    db,
    boss,
    events,
    llm: createLlm({
      events,
      apiKey: env.OPENAI_API_KEY,
      baseURL: env.OPENAI_BASE_URL,
      model: env.OPENAI_MODEL,
      timeoutMs: env.OPENAI_TIMEOUT_SECONDS * 1000,
      maxRetries: env.OPENAI_MAX_RETRIES,
      retryAfterMaxMs: env.OPENAI_RETRY_AFTER_MAX_SECONDS * 1000,
    }),
    logger,
    settings: { extractBatchSize: env.EXTRACT_BATCH_SIZE, llmConcurrency: env.LLM_CONCURRENCY, dropsBatchSize: env.DROPS_BATCH_SIZE },
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
