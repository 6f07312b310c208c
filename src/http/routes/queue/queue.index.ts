import type { AppDeps } from '../../app.ts';
import { createRouter } from '../../lib/create-router.ts';
import { queueHandlers } from './queue.handlers.ts';
import * as routes from './queue.routes.ts';

/** /api/jobs/queue and /api/jobs/runs/{jobId}/cancel. */
export function queueRouter(deps: AppDeps) {
  const handlers = queueHandlers(deps);
  return createRouter().openapi(routes.list, handlers.list).openapi(routes.cancel, handlers.cancel);
}
