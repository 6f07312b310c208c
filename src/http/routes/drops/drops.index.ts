import type { Db } from '../../../db/client.ts';
import { createRouter } from '../../lib/create-router.ts';
import { dropHandlers } from './drops.handlers.ts';
import * as routes from './drops.routes.ts';

export function dropsRouter(deps: { db: Db }) {
  const handlers = dropHandlers(deps);
  return createRouter().openapi(routes.list, handlers.list);
}
