import { createRouter } from '../../lib/create-router.ts';
import { statsHandlers, type StatsRouteDeps } from './stats.handlers.ts';
import * as routes from './stats.routes.ts';

/** /api/jobs/stats. */
export function statsRouter(deps: StatsRouteDeps) {
  return createRouter().openapi(routes.stats, statsHandlers(deps).get);
}
