import type { Db } from '../../../db/client.ts';
import { createRouter } from '../../lib/create-router.ts';
import { rootHandlers } from './root.handlers.ts';
import * as routes from './root.routes.ts';

export function rootRouter(deps: { db: Db }) {
  const handlers = rootHandlers(deps);
  return createRouter().openapi(routes.index, handlers.index).openapi(routes.session, handlers.session).openapi(routes.healthz, handlers.healthz);
}

/** The health check alone, for an instance that serves no API (a worker's metrics port). */
export function healthRouter(deps: { db: Db }) {
  return createRouter().openapi(routes.healthz, rootHandlers(deps).healthz);
}
