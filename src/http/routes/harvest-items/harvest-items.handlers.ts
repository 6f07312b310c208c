import type { RouteHandler } from '@hono/zod-openapi';
import type { Db } from '../../../db/client.ts';
import { createHarvestItem, listHarvestItems } from '../../../db/harvest-items.ts';
import type * as routes from './harvest-items.routes.ts';

export function harvestItemHandlers({ db }: { db: Db }) {
  const create: RouteHandler<typeof routes.create> = async (c) => c.json(await createHarvestItem(db, c.req.valid('json')), 201);
  const list: RouteHandler<typeof routes.list> = async (c) => c.json(await listHarvestItems(db, c.req.valid('query')), 200);
  return { create, list };
}
