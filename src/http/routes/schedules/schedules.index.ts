import type { AppDeps } from '../../app.ts';
import { createRouter } from '../../lib/create-router.ts';
import { scheduleHandlers } from './schedules.handlers.ts';
import * as routes from './schedules.routes.ts';

/** /api/jobs/schedules: read and edit the job_schedule rows (pg-boss follows them), preview their runs, read their history. */
export function schedulesRouter(deps: AppDeps) {
  const handlers = scheduleHandlers(deps);
  return createRouter()
    .openapi(routes.list, handlers.list)
    .openapi(routes.get, handlers.get)
    .openapi(routes.update, handlers.update)
    .openapi(routes.preview, handlers.preview)
    .openapi(routes.history, handlers.history);
}
