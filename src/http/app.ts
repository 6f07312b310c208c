import type { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { HTTPException } from 'hono/http-exception';
import { matchedRoutes } from 'hono/route';
import { secureHeaders } from 'hono/secure-headers';
import type { Context } from 'hono';
import type { BlankEnv } from 'hono/types';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { PgBoss } from 'pg-boss';
import type { Db } from '../db/client.ts';
import type { SchedulerEvents } from '../events.ts';
import type { EstimateSettings } from '../jobs/estimate.ts';
import type { Registry } from '../jobs/registry.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics/registry.ts';
import { requireBearer } from './auth.ts';
import { createRouter } from './lib/create-router.ts';
import { bodiesAreJson } from './lib/validation.ts';
import { registerConsole } from './console.ts';
import { registerOpenApi } from './open-api.ts';
import { rateLimitPerClient } from './rate-limit.ts';
import { alertsRouter } from './routes/alerts/alerts.index.ts';
import { blueprintsRouter } from './routes/blueprints/blueprints.index.ts';
import { cronRouter } from './routes/cron/cron.index.ts';
import { deadLettersRouter } from './routes/dead-letters/dead-letters.index.ts';
import { dropsRouter } from './routes/drops/drops.index.ts';
import { llmRouter } from './routes/llm/llm.index.ts';
import { estimateRouter } from './routes/estimate/estimate.index.ts';
import { harvestItemsRouter } from './routes/harvest-items/harvest-items.index.ts';
import { metricsRouter } from './routes/metrics/metrics.index.ts';
import { queueRouter } from './routes/queue/queue.index.ts';
import { rootRouter } from './routes/root/root.index.ts';
import { runsRouter } from './routes/runs/runs.index.ts';
import { schedulesRouter } from './routes/schedules/schedules.index.ts';
import { statsRouter } from './routes/stats/stats.index.ts';

/** What the HTTP layer needs: the service's parts, and the settings of the API itself. */
export type AppDeps = {
  db: Db;
  boss: PgBoss;
  registry: Registry;
  logger: Logger;
  /** SCHEDULER_TIMEZONE: the zone of a cron preview that names none. */
  defaultTimeZone: string;
  /** Told of schedule edits made through the API (`schedule:changed`); none by default. */
  events?: SchedulerEvents;
  /** API_TOKEN: when set, every /api route needs it (or the read-only token for GET/HEAD). */
  apiToken?: string;
  /** API_TOKEN_READONLY: GET and HEAD only; ignored without apiToken. */
  apiTokenReadOnly?: string;
  /** CORS_ORIGINS: browser origins allowed to call the API; none (the default) means CORS is off. */
  corsOrigins?: string[];
  /** RUN_RATE_LIMIT_PER_MINUTE: manual runs per client a minute; unset means no limit. */
  runRateLimitPerMinute?: number;
  /** This instance's Prometheus metrics: served at /metrics, and told how long each request took. */
  metrics?: Pick<Metrics, 'scrape' | 'contentType' | 'observeHttpRequest'>;
  /** This instance's runner: stops a run cancelled through the API at once when it runs here (Runner.abortCancelled). */
  abortCancelled?: (jobId: string) => boolean;
  /** LLM_DAILY_BUDGET_USD, shown by GET /api/jobs/status; unset = no global budget. */
  globalDailyBudgetUsd?: number;
  /** Model, prices and batch sizes of GET /api/jobs/{jobName}/estimate; the route is absent without them. */
  estimate?: EstimateSettings;
};

const MAX_BODY_BYTES = 1024 * 1024;

export function createApp(deps: AppDeps): OpenAPIHono<BlankEnv> {
  const { logger } = deps;
  const app = createRouter();

  app.use(secureHeaders());
  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    const ms = performance.now() - started;
    logger.info({ method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(ms) }, 'http request');
    deps.metrics?.observeHttpRequest(c.req.method, routePattern(c), c.res.status, ms / 1000);
  });

  app.use('/api/*', async (c, next) => {
    await next();
    // A request refused before its body was read leaves those bytes on the socket; closing the
    // connection keeps the client's next request from stalling behind them.
    if (c.req.raw.body && !c.req.raw.bodyUsed) c.header('Connection', 'close');
  });
  if (deps.corsOrigins?.length) {
    // Before auth, so a preflight (which carries no token) is answered; an origin not listed gets no
    // Access-Control-Allow-Origin, and the browser keeps the response from the page.
    app.use(
      '/api/*',
      cors({
        origin: deps.corsOrigins.map((origin) => new URL(origin).origin),
        allowMethods: ['GET', 'HEAD', 'POST', 'PUT'],
        allowHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key'],
        exposeHeaders: ['Retry-After', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'RateLimit-Policy'],
        maxAge: 600,
      }),
    );
  }
  // What these answer before any route runs is declared on each route (lib/contract.ts: API_ERRORS, WRITE_ERRORS).
  if (deps.apiToken) {
    const bearer = requireBearer({ token: deps.apiToken, readOnlyToken: deps.apiTokenReadOnly });
    app.use('/api/*', bearer);
    // The scrape is as private as the API (the read-only token may scrape).
    app.use('/metrics', bearer);
  }
  app.use('/api/*', bodyLimit({ maxSize: MAX_BODY_BYTES, onError: (c) => c.json({ error: `request body is larger than ${MAX_BODY_BYTES} bytes` }, 413) }));
  app.use('/api/*', bodiesAreJson);

  const runLimit = deps.runRateLimitPerMinute ? rateLimitPerClient(deps.runRateLimitPerMinute, { authOn: Boolean(deps.apiToken) }) : undefined;
  const routers = [
    rootRouter(deps),
    schedulesRouter(deps),
    cronRouter(deps),
    runsRouter(deps, runLimit),
    deadLettersRouter(deps),
    queueRouter(deps),
    alertsRouter(deps),
    harvestItemsRouter(deps),
    blueprintsRouter(deps),
    dropsRouter(deps),
    llmRouter(deps),
    statsRouter(deps),
    ...(deps.estimate ? [estimateRouter({ ...deps, estimate: deps.estimate })] : []),
    ...(deps.metrics ? [metricsRouter({ metrics: deps.metrics })] : []),
  ];
  for (const router of routers) app.route('/', router);
  registerOpenApi(app);
  registerConsole(app);

  app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404));
  app.onError((error, c) => {
    if (error instanceof HTTPException) {
      return c.json({ error: error.message || 'request refused' }, error.status as ContentfulStatusCode);
    }
    logger.error({ err: error, method: c.req.method, path: c.req.path }, 'request failed');
    return c.json({ error: isDatabaseDown(error) ? 'database unavailable' : 'internal error' }, isDatabaseDown(error) ? 503 : 500);
  });
  return app;
}

/** The pattern of the route that matched (`/api/jobs/logs/:id`), never the raw path: a bounded metric label. */
function routePattern(c: Context): string {
  // Middleware is registered for every method; the route itself for its own.
  return matchedRoutes(c).findLast((route) => route.method !== 'ALL')?.path ?? 'unmatched';
}

function isDatabaseDown(error: unknown): boolean {
  const e = error as { code?: string; message?: string; cause?: unknown };
  const code = e?.code ?? (e?.cause as { code?: string } | undefined)?.code;
  return ['ECONNREFUSED', 'ECONNRESET', '57P01', '57P03', '08006', '08001'].includes(code ?? '') || /timeout exceeded when trying to connect|Connection terminated/i.test(e?.message ?? '');
}
