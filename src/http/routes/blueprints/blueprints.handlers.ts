import type { RouteHandler } from '@hono/zod-openapi';
import { desc, eq } from 'drizzle-orm';
import type { Db } from '../../../db/client.ts';
import { examBlueprints } from '../../../db/schema.ts';
import type * as routes from './blueprints.routes.ts';

// The statements stay here until exam_blueprints has a module of its own under src/db/.
export function blueprintHandlers({ db }: { db: Db }) {
  const list: RouteHandler<typeof routes.list> = async (c) => {
    const { limit, offset } = c.req.valid('query');
    return c.json(await db.select().from(examBlueprints).orderBy(desc(examBlueprints.id)).limit(limit).offset(offset), 200);
  };

  const get: RouteHandler<typeof routes.get> = async (c) => {
    const { id } = c.req.valid('param');
    const [row] = await db.select().from(examBlueprints).where(eq(examBlueprints.id, id));
    if (!row) return c.json({ error: `no blueprint with id ${id}` }, 404);
    return c.json(row, 200);
  };

  return { list, get };
}
