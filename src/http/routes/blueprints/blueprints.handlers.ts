import type { RouteHandler } from '@hono/zod-openapi';
import { blueprintById, listBlueprints } from '../../../db/blueprints.ts';
import type { Db } from '../../../db/client.ts';
import type * as routes from './blueprints.routes.ts';

export function blueprintHandlers({ db }: { db: Db }) {
  const list: RouteHandler<typeof routes.list> = async (c) => c.json(await listBlueprints(db, c.req.valid('query')), 200);

  const get: RouteHandler<typeof routes.get> = async (c) => {
    const { id } = c.req.valid('param');
    const row = await blueprintById(db, id);
    if (!row) return c.json({ error: `no blueprint with id ${id}` }, 404);
    return c.json(row, 200);
  };

  return { list, get };
}
