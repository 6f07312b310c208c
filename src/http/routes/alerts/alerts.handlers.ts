import type { RouteHandler } from '@hono/zod-openapi';
import { listAlerts } from '../../../alerts/alerts.ts';
import type { Db } from '../../../db/client.ts';
import type * as routes from './alerts.routes.ts';

export function alertHandlers({ db }: { db: Db }) {
  const list: RouteHandler<typeof routes.list> = async (c) => c.json(await listAlerts(db, c.req.valid('query')), 200);
  return { list };
}
