import { createDstGapFiller, GAP_FILL_INTERVAL_MS } from './boss/dst-gaps.ts';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import type { Hono } from 'hono';
import type { PgBoss } from 'pg-boss';
import { ensureQueues, wakeCronSenderOnNotify } from './boss/client.ts';
import { startAlerts } from './alerts/alerts.ts';
import { createReaper } from './boss/reaper.ts';
import { createRegistry, type Registry } from './jobs/registry.ts';
import { createScheduleSync, seedSchedules, type SchedulesDeps } from './boss/schedules.ts';
import { registerWorkers } from './boss/workers.ts';
import pg from 'pg';
import { createDb, type Database } from './db/client.ts';
import { createBossFromEnv, createJobRunner, loadPricesFromEnv } from './composition.ts';
import { createLogRetention } from './db/log-retention.ts';
import { requireListenNotify } from './db/listen-notify.ts';
import { openDatabase } from './db/open.ts';
import { runMigrations } from './db/migrate.ts';
import type { Env } from './env.ts';
import { ConfigurationError } from './errors.ts';
import { createEvents, type SchedulerEvents } from './events.ts';
import { createApp } from './http/app.ts';
import { estimateSettingsOf } from './jobs/estimate.ts';
import { createMetricsApp } from './http/metrics-app.ts';
import { createMetrics } from './metrics/registry.ts';
import { checkLlmBudget } from './llm/budget.ts';
import { maskUrl, type Logger } from './logger.ts';

export type Service = {
  /** Base URL of the HTTP API ('' for ROLE=worker). */
  url: string;
  /** Where Prometheus scrapes this instance: `<url>/metrics`, a worker's METRICS_PORT, or '' (a worker without it). */
  metricsUrl: string;
  app: Hono;
  boss: PgBoss;
  database: Database;
  registry: Registry;
  /** Runs, schedules and LLM calls as they happen: what metrics, alerts and tests subscribe to. */
  events: SchedulerEvents;
  /** Graceful stop, in reverse order of start; safe to call twice. */
  stop(): Promise<void>;
};

const REAPER_INTERVAL_MS = 15_000;
/** job_logs retention passes: at start, then hourly, so each pass has about an hour's worth to delete. */
const LOG_RETENTION_INTERVAL_MS = 3_600_000;

/**
 * Boot: database → migrations → pg-boss → queues → schedules → workers → HTTP. ROLE=api skips
 * workers, cron and the background loops; ROLE=worker skips HTTP.
 */
export async function startService(env: Env, logger: Logger, registry = createRegistry()): Promise<Service> {
  // Before anything is opened: an LLM call that could outlast half a job's expiry is a config error.
  checkLlmBudget(env, registry.values());
  const prices = loadPricesFromEnv(env, logger);
  const releasers: Array<() => Promise<void> | void> = [];
  const release = async () => {
    for (const fn of releasers.reverse().splice(0)) {
      await Promise.resolve(fn()).catch((error) => logger.error({ err: error }, 'error while stopping'));
    }
  };
  const works = env.ROLE !== 'api';
  const events = createEvents(logger);
  let url = '';

  try {
    logger.info({ role: env.ROLE }, 'initialising job scheduler');
    const opened = await openDatabase(env, logger);
    releasers.push(() => opened.stop());
    logger.info({ database: maskUrl(opened.url) }, `database: ${maskUrl(opened.url)}${opened.embedded ? ' (embedded)' : ''}`);
    await waitForDatabase(opened.url, env.DB_STARTUP_TIMEOUT_SECONDS * 1000, logger);
    // Only workers listen (an API-only instance's sends notify all the same), which saves it a connection.
    const listens = works && env.USE_LISTEN_NOTIFY;
    // Before anything is opened for good: notifications that never arrive (a transaction-pooling
    // PgBouncer) would leave workers on their slow fallback poll without a word.
    if (listens) await requireListenNotify(opened.url, logger);

    const database = createDb(opened.url, { max: env.DB_POOL_MAX, onError: (error) => logger.warn({ err: error }, 'idle database connection lost') });
    releasers.push(() => database.close());
    await runMigrations(database.pool);

    const boss = createBossFromEnv(env, { url: opened.url, logger, role: env.ROLE, listens });
    await boss.start();
    if (listens) await wakeCronSenderOnNotify(boss);
    // Subscribed before any worker starts, so the counters miss no run.
    const metrics = createMetrics({ db: database.db, boss, registry, events, logger, llmModel: env.OPENAI_MODEL });
    releasers.push(() => metrics.stop());
    // Released after pg-boss (below) has drained the runs, so runs ending during a stop still raise theirs.
    const alerts = await startAlerts({ env, db: database.db, boss, registry, events, logger, baseUrl: () => env.PUBLIC_URL ?? url });
    if (alerts) releasers.push(() => alerts.stop());
    const runner = createJobRunner(env, database.db, boss, logger, events, prices);
    releasers.push(async () => {
      // pg-boss waits for running handlers up to the timeout, then fails them (they are retried).
      await boss.stop({ graceful: true, timeout: env.SHUTDOWN_TIMEOUT_SECONDS * 1000 });
      await runner.drain(5_000);
    });
    await ensureQueues(boss, registry);

    const schedulesDeps: SchedulesDeps = { db: database.db, boss, registry, defaultTimeZone: env.SCHEDULER_TIMEZONE, logger, events };
    await seedSchedules(schedulesDeps);
    const scheduleSync = createScheduleSync(schedulesDeps);
    const { rows } = await scheduleSync.reconcile();
    const active = rows.filter((row) => row.is_active && registry.has(row.job_name));
    if (works) {
      logger.info(`found ${active.length} scheduled jobs`);
      for (const row of active) logger.info({ job: row.job_name, cron: row.cron_expression, tz: row.timezone }, `scheduling job ${row.job_name} with cron ${row.cron_expression} (${row.timezone})`);
      warnAboutMissingKey(env, registry, logger);
    } else {
      // An API-only instance schedules nothing itself: worker instances run the schedules.
      logger.info(`${active.length} active schedules, run by worker instances (ROLE=${env.ROLE} runs no jobs)`);
    }

    // Every role: an API-only instance must be able to report that the workers are down.
    if (alerts) releasers.push(every(env.ALERT_CHECK_SECONDS * 1000, logger, 'overdue check', () => alerts.checkOverdue()));

    if (works) {
      const reaper = createReaper({ db: database.db, boss, logger, events });
      await reaper.reap();
      await registerWorkers(boss, registry, runner);
      releasers.push(every(env.SCHEDULE_SYNC_SECONDS * 1000, logger, 'schedule sync', async () => {
        const { scheduled, unscheduled } = await scheduleSync.reconcile();
        if (scheduled.length || unscheduled.length) logger.info({ scheduled, unscheduled }, 'job_schedule edited outside the API: pg-boss updated');
      }));
      const dstGaps = createDstGapFiller({ boss, logger });
      releasers.push(every(GAP_FILL_INTERVAL_MS, logger, 'DST gap filler', () => dstGaps.fill()));
      releasers.push(every(REAPER_INTERVAL_MS, logger, 'reaper', () => reaper.reap()));
      if (env.JOB_LOGS_RETENTION_DAYS > 0) {
        const retention = createLogRetention({ db: database.db, logger, retentionDays: env.JOB_LOGS_RETENTION_DAYS });
        // Not awaited at start: a large backlog takes minutes, a batch at a time.
        releasers.push(every(LOG_RETENTION_INTERVAL_MS, logger, 'job_logs retention', () => retention.run(), { immediately: true }));
        // Released first (reverse order), so a long pass ends between batches instead of holding up the stop.
        releasers.push(() => retention.stop());
      } else {
        logger.info('JOB_LOGS_RETENTION_DAYS=0: job_logs rows are kept forever');
      }
    }

    /** Listens on HOST:port until the service stops; resolves with the base URL. */
    const listenOn = async (handler: Hono, port: number) => {
      const server = await listen(handler, env.HOST, port);
      releasers.push(() => closeServer(server));
      return `http://${env.HOST.includes(':') ? `[${env.HOST}]` : env.HOST}:${(server.address() as AddressInfo).port}`;
    };
    const app = createApp({
      ...schedulesDeps,
      apiToken: env.API_TOKEN,
      apiTokenReadOnly: env.API_TOKEN_READONLY,
      corsOrigins: env.CORS_ORIGINS,
      runRateLimitPerMinute: env.RUN_RATE_LIMIT_PER_MINUTE,
      metrics,
      abortCancelled: (jobId) => runner.abortCancelled(jobId),
      estimate: estimateSettingsOf(env, prices),
      globalDailyBudgetUsd: env.LLM_DAILY_BUDGET_USD,
    });
    let metricsUrl = '';
    if (env.ROLE !== 'worker') {
      url = await listenOn(app, env.PORT);
      metricsUrl = `${url}/metrics`;
    } else if (env.METRICS_PORT !== undefined) {
      metricsUrl = `${await listenOn(createMetricsApp({ db: database.db, apiToken: env.API_TOKEN, apiTokenReadOnly: env.API_TOKEN_READONLY, metrics }), env.METRICS_PORT)}/metrics`;
    }
    logger.info(
      { api: url || null, metrics: metricsUrl || null, role: env.ROLE, auth: Boolean(env.API_TOKEN) },
      `job scheduler ready: ${url ? `API on ${url}` : metricsUrl ? `worker only, no API; metrics on ${metricsUrl}` : 'worker only, no HTTP'}`,
    );

    let stopping: Promise<void> | undefined;
    return { url, metricsUrl, app, boss, database, registry, events, stop: () => (stopping ??= release()) };
  } catch (error) {
    await release();
    throw error;
  }
}

/** Said once at startup rather than discovered at the first run, hours later. */
function warnAboutMissingKey(env: Env, registry: Registry, logger: Logger): void {
  if (env.OPENAI_API_KEY) return;
  const jobs = [...registry.values()].filter((job) => job.usesLlm).map((job) => job.name);
  if (jobs.length === 0) return;
  logger.warn({ jobs }, `OPENAI_API_KEY is not set: every run of ${jobs.join(', ')} will fail (not retried) until it is set`);
}

/** Retries the first connection with backoff, so a database that is still starting is waited for. */
async function waitForDatabase(url: string, timeoutMs: number, logger: Logger): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 500; ; delay = Math.min(delay * 2, 5_000)) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
    try {
      await client.connect();
      await client.query('select 1');
      return;
    } catch (error) {
      const reason = (error as Error).message || String(error);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`database unreachable after ${Math.round(timeoutMs / 1000)} s: ${reason}`);
      // The last wait is cut short so the final attempt happens at the deadline, not before it.
      const wait = Math.min(delay, left);
      logger.warn({ reason, retryInMs: wait }, `database unreachable (${reason}); retrying in ${(wait / 1000).toFixed(1)} s`);
      await new Promise((resolve) => setTimeout(resolve, wait));
    } finally {
      await client.end().catch(() => {});
    }
  }
}

/** Runs `task` every `ms` without overlapping itself; returns the releaser. Errors are logged, never thrown. */
function every(ms: number, logger: Logger, name: string, task: () => Promise<unknown>, { immediately = false } = {}): () => Promise<void> {
  let running: Promise<unknown> = Promise.resolve();
  const tick = () => {
    running = running.then(task).catch((error) => logger.error({ err: error }, `${name} failed`));
  };
  const timer = setInterval(tick, ms);
  timer.unref();
  if (immediately) tick();
  return async () => {
    clearInterval(timer);
    await running;
  };
}

function listen(app: Hono, hostname: string, port: number): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname, port }, () => resolve(server));
    server.once('error', (error: NodeJS.ErrnoException) => {
      const message = `cannot listen on ${hostname}:${port}: ${error.message}`;
      // Port taken, address not on this machine, or a port below 1024: the operator's settings to change.
      const setting = error.code === 'EADDRINUSE' || error.code === 'EADDRNOTAVAIL' || error.code === 'EACCES';
      reject(setting ? new ConfigurationError(`${message}: choose another PORT or HOST`, ['PORT', 'HOST']) : new Error(message));
    });
  });
}

function closeServer(server: ServerType): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    // Idle keep-alive connections would otherwise hold close() open.
    if ('closeIdleConnections' in server) server.closeIdleConnections();
  });
}
