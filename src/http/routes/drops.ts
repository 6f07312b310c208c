import { and, asc, eq } from 'drizzle-orm';
import { Hono } from 'hono';
import type { Db } from '../../db/client.ts';
import { drops } from '../../db/schema.ts';
import { IdParamSchema, PaginationSchema, text, validate } from '../validation.ts';

const ListSchema = PaginationSchema.extend({
  blueprintId: IdParamSchema.shape.id.optional(),
  topicCode: text().max(200).optional(),
});

/** Drops (short lessons), in reading order: blueprint, topic, position. */
export function dropsRoutes(db: Db): Hono {
  const app = new Hono();

  app.get('/', validate('query', ListSchema), async (c) => {
    const { blueprintId, topicCode, limit, offset } = c.req.valid('query');
    const rows = await db
      .select()
      .from(drops)
      .where(and(blueprintId ? eq(drops.blueprint_id, blueprintId) : undefined, topicCode ? eq(drops.topic_code, topicCode) : undefined))
      .orderBy(asc(drops.blueprint_id), asc(drops.topic_code), asc(drops.position))
      .limit(limit)
      .offset(offset);
    return c.json(rows);
  });

  return app;
}
