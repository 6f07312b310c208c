import type { OpenAPIHono } from '@hono/zod-openapi';
import { secureHeaders } from 'hono/secure-headers';
import type { BlankEnv } from 'hono/types';
import type { AppDeps } from './app.ts';
import { requireBearer } from './auth.ts';
import { createRouter } from './lib/create-router.ts';
import { metricsRouter } from './routes/metrics/metrics.index.ts';
import { healthRouter } from './routes/root/root.index.ts';

/**
 * What a ROLE=worker instance serves on METRICS_PORT: GET /metrics (same token rules as the API's)
 * and GET /healthz, nothing else. A worker runs jobs, so its counters exist only here.
 */
export function createMetricsApp(deps: Pick<AppDeps, 'db' | 'apiToken' | 'apiTokenReadOnly'> & Required<Pick<AppDeps, 'metrics'>>): OpenAPIHono<BlankEnv> {
  const app = createRouter();
  app.use(secureHeaders());
  if (deps.apiToken) app.use('/metrics', requireBearer({ token: deps.apiToken, readOnlyToken: deps.apiTokenReadOnly }));
  app.route('/', metricsRouter(deps)).route('/', healthRouter(deps));
  app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path}: this worker serves only /metrics and /healthz` }, 404));
  return app;
}
