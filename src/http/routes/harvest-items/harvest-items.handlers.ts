import type { RouteHandler } from '@hono/zod-openapi';
import { desc, eq } from 'drizzle-orm';
import type { Db } from '../../../db/client.ts';
import { harvestItems } from '../../../db/schema.ts';
import type * as routes from './harvest-items.routes.ts';

// The statements stay here until harvest_items has a module of its own under src/db/.
export function harvestItemHandlers({ db }: { db: Db }) {
  const create: RouteHandler<typeof routes.create> = async (c) => {
    const { title, content, source_url } = c.req.valid('json');
    const [row] = await db.insert(harvestItems).values({ title, content, source_url: source_url ?? null }).returning();
    return c.json(row!, 201);
  };

  const list: RouteHandler<typeof routes.list> = async (c) => {
    const { status, limit, offset } = c.req.valid('query');
    const rows = await db
      .select()
      .from(harvestItems)
      .where(status ? eq(harvestItems.status, status) : undefined)
      .orderBy(desc(harvestItems.id))
      .limit(limit)
      .offset(offset);
    return c.json(rows, 200);
  };

  return { create, list };
}
