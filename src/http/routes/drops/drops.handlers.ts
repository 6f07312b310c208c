import type { RouteHandler } from '@hono/zod-openapi';
import { and, asc, eq } from 'drizzle-orm';
import type { Db } from '../../../db/client.ts';
import { drops } from '../../../db/schema.ts';
import type * as routes from './drops.routes.ts';

// The statement stays here until drops has a module of its own under src/db/.
export function dropHandlers({ db }: { db: Db }) {
  const list: RouteHandler<typeof routes.list> = async (c) => {
    const { blueprintId, topicCode, limit, offset } = c.req.valid('query');
    const rows = await db
      .select()
      .from(drops)
      .where(and(blueprintId ? eq(drops.blueprint_id, blueprintId) : undefined, topicCode ? eq(drops.topic_code, topicCode) : undefined))
      .orderBy(asc(drops.blueprint_id), asc(drops.topic_code), asc(drops.position))
      .limit(limit)
      .offset(offset);
    return c.json(rows, 200);
  };

  return { list };
}
