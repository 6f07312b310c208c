import type { Db } from '../../../db/client.ts';
import { createRouter } from '../../lib/create-router.ts';
import { blueprintHandlers } from './blueprints.handlers.ts';
import * as routes from './blueprints.routes.ts';

export function blueprintsRouter(deps: { db: Db }) {
  const handlers = blueprintHandlers(deps);
  return createRouter().openapi(routes.list, handlers.list).openapi(routes.get, handlers.get).openapi(routes.regenerateDrops, handlers.regenerateDrops);
}
