import type { Db } from '../../../db/client.ts';
import { createRouter } from '../../lib/create-router.ts';
import { alertHandlers } from './alerts.handlers.ts';
import * as routes from './alerts.routes.ts';

export function alertsRouter(deps: { db: Db }) {
  const handlers = alertHandlers(deps);
  return createRouter().openapi(routes.list, handlers.list);
}
