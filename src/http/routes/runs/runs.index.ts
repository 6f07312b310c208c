import type { MiddlewareHandler } from 'hono';
import type { AppDeps } from '../../app.ts';
import { createRouter } from '../../lib/create-router.ts';
import { runHandlers } from './runs.handlers.ts';
import * as routes from './runs.routes.ts';

/** /api/jobs/run, /api/jobs/logs and /api/jobs/status. `runLimit`: the manual-run rate limit, if any. */
export function runsRouter(deps: AppDeps, runLimit?: MiddlewareHandler) {
  const handlers = runHandlers(deps);
  const router = createRouter();
  // Before the route's own checks (a refused request reads no body), and on POST only: nothing else runs a job.
  if (runLimit) router.use(routes.run.getRoutingPath(), (c, next) => (c.req.method === 'POST' ? runLimit(c, next) : next()));
  return router
    .openapi(routes.run, handlers.run)
    .openapi(routes.list, handlers.list)
    .openapi(routes.get, handlers.get)
    .openapi(routes.latest, handlers.latest)
    .openapi(routes.status, handlers.status);
}
