import { sql } from 'drizzle-orm';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { HTTPException } from 'hono/http-exception';
import { secureHeaders } from 'hono/secure-headers';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { SchedulesDeps } from '../boss/schedules.ts';
import { requireBearer } from './auth.ts';
import { rateLimitPerClient } from './rate-limit.ts';
import { blueprintsRoutes } from './routes/blueprints.ts';
import { deadLettersRoutes } from './routes/dead-letters.ts';
import { dropsRoutes } from './routes/drops.ts';
import { harvestItemsRoutes } from './routes/harvest-items.ts';
import { jobsRoutes } from './routes/jobs.ts';

export type AppDeps = SchedulesDeps & {
  /** API_TOKEN: when set, every /api route needs it (or the read-only token for GET/HEAD). */
  apiToken?: string;
  /** API_TOKEN_READONLY: GET and HEAD only; ignored without apiToken. */
  apiTokenReadOnly?: string;
  /** CORS_ORIGINS: browser origins allowed to call the API; none (the default) means CORS is off. */
  corsOrigins?: string[];
  /** RUN_RATE_LIMIT_PER_MINUTE: manual runs per client a minute; unset means no limit. */
  runRateLimitPerMinute?: number;
};

const MAX_BODY_BYTES = 1024 * 1024;

export function createApp(deps: AppDeps): Hono {
  const { db, logger } = deps;
  const app = new Hono();

  app.use(secureHeaders());
  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    logger.info({ method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(performance.now() - started) }, 'http request');
  });

  app.get('/healthz', async (c) => {
    try {
      await withTimeout(db.execute(sql`select 1`), 2_000);
      return c.json({ status: 'ok' });
    } catch {
      return c.json({ error: 'database unavailable' }, 503);
    }
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
  if (deps.apiToken) app.use('/api/*', requireBearer({ token: deps.apiToken, readOnlyToken: deps.apiTokenReadOnly }));
  app.use(
    '/api/*',
    bodyLimit({ maxSize: MAX_BODY_BYTES, onError: (c) => c.json({ error: `request body is larger than ${MAX_BODY_BYTES} bytes` }, 413) }),
  );
  app.use('/api/*', async (c, next) => {
    // A body we would ignore or misread is refused, not guessed at.
    const hasBody = c.req.header('content-length') !== undefined && c.req.header('content-length') !== '0' || c.req.header('transfer-encoding') !== undefined;
    if ((c.req.method === 'POST' || c.req.method === 'PUT') && hasBody && !/^application\/json\b/i.test(c.req.header('content-type') ?? '')) {
      return c.json({ error: 'Content-Type must be application/json' }, 400);
    }
    await next();
  });

  const runLimit = deps.runRateLimitPerMinute ? rateLimitPerClient(deps.runRateLimitPerMinute, { authOn: Boolean(deps.apiToken) }) : undefined;
  app.route('/api/jobs/dead-letters', deadLettersRoutes(deps));
  app.route('/api/jobs', jobsRoutes({ ...deps, runLimit }));
  app.route('/api/harvest-items', harvestItemsRoutes(db));
  app.route('/api/blueprints', blueprintsRoutes(db));
  app.route('/api/drops', dropsRoutes(db));

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

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms).unref())]);
}

function isDatabaseDown(error: unknown): boolean {
  const e = error as { code?: string; message?: string; cause?: unknown };
  const code = e?.code ?? (e?.cause as { code?: string } | undefined)?.code;
  return ['ECONNREFUSED', 'ECONNRESET', '57P01', '57P03', '08006', '08001'].includes(code ?? '') || /timeout exceeded when trying to connect|Connection terminated/i.test(e?.message ?? '');
}
