import type { AppDeps } from '../../app.ts';
import { createRouter } from '../../lib/create-router.ts';
import { cronHandlers } from './cron.handlers.ts';
import * as routes from './cron.routes.ts';

/** /api/cron/preview: the next runs of an expression, before it is saved. */
export function cronRouter(deps: AppDeps) {
  const handlers = cronHandlers(deps);
  return createRouter().openapi(routes.preview, handlers.preview);
}
