import type { Db } from '../../../db/client.ts';
import { createRouter } from '../../lib/create-router.ts';
import { harvestItemHandlers } from './harvest-items.handlers.ts';
import * as routes from './harvest-items.routes.ts';

export function harvestItemsRouter(deps: { db: Db }) {
  const handlers = harvestItemHandlers(deps);
  return createRouter()
    .openapi(routes.create, handlers.create)
    .openapi(routes.list, handlers.list)
    .openapi(routes.retryFailed, handlers.retryFailed)
    .openapi(routes.get, handlers.get)
    .openapi(routes.remove, handlers.remove)
    .openapi(routes.retry, handlers.retry);
}
