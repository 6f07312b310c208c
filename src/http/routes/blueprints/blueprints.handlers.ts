import type { RouteHandler } from '@hono/zod-openapi';
import { blueprintById, listBlueprints } from '../../../db/blueprints.ts';
import type { Db } from '../../../db/client.ts';
import { InvalidRequestError, NotFoundError, StateConflictError } from '../../../pipeline/errors.ts';
import { requestDropsRegeneration } from '../../../pipeline/regenerate-drops.ts';
import type * as routes from './blueprints.routes.ts';

export function blueprintHandlers({ db }: { db: Db }) {
  const list: RouteHandler<typeof routes.list> = async (c) => c.json(await listBlueprints(db, c.req.valid('query')), 200);

  const get: RouteHandler<typeof routes.get> = async (c) => {
    const { id } = c.req.valid('param');
    const row = await blueprintById(db, id);
    if (!row) return c.json({ error: `no blueprint with id ${id}` }, 404);
    return c.json(row, 200);
  };

  const regenerateDrops: RouteHandler<typeof routes.regenerateDrops> = async (c) => {
    try {
      const { blueprint } = await requestDropsRegeneration(db, c.req.valid('param').id, c.req.valid('json'));
      return c.json(blueprint, 202);
    } catch (error) {
      if (error instanceof NotFoundError) return c.json({ error: error.message }, 404);
      if (error instanceof StateConflictError) return c.json({ error: error.message }, 409);
      if (error instanceof InvalidRequestError) return c.json({ error: error.message }, 400);
      throw error;
    }
  };

  return { list, get, regenerateDrops };
}
