import type { RouteHandler } from '@hono/zod-openapi';
import type { Db } from '../../../db/client.ts';
import { listHarvestItems } from '../../../db/harvest-items.ts';
import { DuplicateSourceUrlError, InvalidRequestError, NotFoundError, StateConflictError } from '../../../pipeline/errors.ts';
import { addHarvestItems, deleteHarvestItemCascade, getHarvestItem, retryAllFailedHarvestItems, retryHarvestItem } from '../../../pipeline/harvest-items.ts';
import type * as routes from './harvest-items.routes.ts';

export function harvestItemHandlers({ db }: { db: Db }) {
  const create: RouteHandler<typeof routes.create> = async (c) => {
    const body = c.req.valid('json');
    const { onConflict } = c.req.valid('query');
    const bulk = Array.isArray(body);
    try {
      const added = await addHarvestItems(db, bulk ? body : [body], { onConflict, bulk });
      // A single object keeps its answer (the row) unless skipping was asked for: then it answers like an array of one.
      if (!bulk && onConflict !== 'skip') return c.json(added.created[0]!, 201);
      return c.json(added, 201);
    } catch (error) {
      if (error instanceof DuplicateSourceUrlError) return c.json({ error: error.message, existing_id: error.existingId, ...(error.index === undefined ? {} : { index: error.index }) }, 409);
      if (error instanceof InvalidRequestError) return c.json({ error: error.message }, 400);
      throw error;
    }
  };

  const list: RouteHandler<typeof routes.list> = async (c) => c.json(await listHarvestItems(db, c.req.valid('query')), 200);

  const get: RouteHandler<typeof routes.get> = async (c) => {
    try {
      return c.json(await getHarvestItem(db, c.req.valid('param').id), 200);
    } catch (error) {
      if (error instanceof NotFoundError) return c.json({ error: error.message }, 404);
      throw error;
    }
  };

  const remove: RouteHandler<typeof routes.remove> = async (c) => {
    try {
      return c.json({ deleted: await deleteHarvestItemCascade(db, c.req.valid('param').id) }, 200);
    } catch (error) {
      if (error instanceof NotFoundError) return c.json({ error: error.message }, 404);
      if (error instanceof StateConflictError) return c.json({ error: error.message }, 409);
      throw error;
    }
  };

  const retry: RouteHandler<typeof routes.retry> = async (c) => {
    try {
      return c.json(await retryHarvestItem(db, c.req.valid('param').id), 200);
    } catch (error) {
      if (error instanceof NotFoundError) return c.json({ error: error.message }, 404);
      if (error instanceof StateConflictError) return c.json({ error: error.message }, 409);
      throw error;
    }
  };

  const retryFailed: RouteHandler<typeof routes.retryFailed> = async (c) => c.json({ retried: (await retryAllFailedHarvestItems(db)).length }, 200);

  return { create, list, get, remove, retry, retryFailed };
}
