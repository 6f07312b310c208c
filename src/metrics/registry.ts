import type { PgBoss } from 'pg-boss';
import { Registry } from 'prom-client';
import type { Db } from '../db/client.ts';
import type { SchedulerEvents } from '../events.ts';
import type { Registry as JobRegistry } from '../jobs/registry.ts';
import type { Logger } from '../logger.ts';
import { readBuildVersions, registerBuildInfo, type BuildVersions } from './build-info.ts';
import { registerDatabaseCollectors } from './database-collectors.ts';
import { registerHttpMetrics, type ObserveHttpRequest } from './http-metrics.ts';
import { registerLlmMetrics } from './llm-metrics.ts';
import { registerProcessMetrics } from './process-metrics.ts';
import { registerRunMetrics } from './run-metrics.ts';

export type MetricsDeps = {
  /** The service's event seam: runs and LLM calls are counted from it. */
  events: SchedulerEvents;
  /** Our tables' database (job_schedule, job_logs); pg-boss's tables are read through it too. */
  db: Db;
  boss: Pick<PgBoss, 'getQueues'>;
  /** The jobs: each has its series from the start, and the database gauges cover exactly these. */
  registry: JobRegistry;
  logger: Logger;
  /** The model the LLM jobs call (OPENAI_MODEL), so their LLM series exist at 0 from the start. */
  llmModel?: string;
  /** Default: read from the package.json files and the runtime (readBuildVersions). */
  versions?: BuildVersions;
  /** pg-boss's schema; default `pgboss`, as the service creates it. */
  bossSchema?: string;
  /** Longest a scrape waits for the database; default 2 s (Prometheus times a scrape out at 10 s). */
  databaseTimeoutMs?: number;
  /** prom-client's process and Node.js metrics; default true. */
  processMetrics?: boolean;
};

export type Metrics = {
  /** This instance's own registry (never prom-client's global one). */
  registry: Registry;
  /** The Content-Type of what `scrape()` returns. */
  contentType: string;
  /** The exposition text for GET /metrics. Never rejects: a database that does not answer shows as `scheduler_database_up 0`. */
  scrape(): Promise<string>;
  /** Called once per answered request with the matched route pattern (never the raw path) and the time taken in seconds. */
  observeHttpRequest: ObserveHttpRequest;
  /** Stops listening to the events; safe to call twice. */
  stop(): void;
};

/**
 * The Prometheus metrics of one service instance (issue 11): counters and histograms fed by the
 * event seam (what this instance did), gauges read from the database at scrape time (the same from
 * every instance), build info, HTTP latency and the process's own metrics, on a registry of its own.
 * Knows no HTTP framework: the caller serves `scrape()` and calls `observeHttpRequest`.
 */
export function createMetrics(deps: MetricsDeps): Metrics {
  const registry = new Registry();
  const jobs = deps.registry;
  const unsubscribers = [
    registerRunMetrics(registry, { events: deps.events, jobs }),
    registerLlmMetrics(registry, { events: deps.events, jobs, model: deps.llmModel }),
  ];
  registerDatabaseCollectors(registry, {
    db: deps.db,
    boss: deps.boss,
    jobs,
    logger: deps.logger,
    bossSchema: deps.bossSchema ?? 'pgboss',
    timeoutMs: deps.databaseTimeoutMs ?? 2_000,
  });
  registerBuildInfo(registry, deps.versions ?? readBuildVersions());
  const observeHttpRequest = registerHttpMetrics(registry);
  if (deps.processMetrics ?? true) registerProcessMetrics(registry);

  return {
    registry,
    contentType: registry.contentType,
    scrape: () => registry.metrics(),
    observeHttpRequest,
    stop() {
      for (const unsubscribe of unsubscribers.splice(0)) unsubscribe();
    },
  };
}
