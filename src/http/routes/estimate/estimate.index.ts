import { createRouter } from '../../lib/create-router.ts';
import { estimateHandlers, type EstimateRouteDeps } from './estimate.handlers.ts';
import * as routes from './estimate.routes.ts';

export function estimateRouter(deps: EstimateRouteDeps) {
  return createRouter().openapi(routes.estimate, estimateHandlers(deps).get);
}
