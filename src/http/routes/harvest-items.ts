import { desc, eq } from 'drizzle-orm';
import { Hono } from 'hono';
import { z } from 'zod';
import type { Db } from '../../db/client.ts';
import { HARVEST_STATUSES, harvestItems } from '../../db/schema.ts';
import { PaginationSchema, text, validate } from '../validation.ts';

const NewHarvestItemSchema = z.strictObject({
  title: text().trim().min(1, 'title must not be empty').max(500, 'title is longer than 500 characters'),
  content: text().trim().min(1, 'content must not be empty'),
  // One check for the scheme, so a bad URL gets one message (the path already names the field).
  source_url: z
    .url({ protocol: /^https?$/i, error: 'must be an http(s) URL' })
    .max(2000, 'must be at most 2000 characters')
    // The URL parser lets a NUL through (it would be percent-encoded), but we store the text as given.
    .refine((u) => !u.includes('\u0000'), 'must not contain NUL (\\u0000) characters')
    .nullish(),
});

const ListSchema = PaginationSchema.extend({ status: z.enum(HARVEST_STATUSES, `status must be one of ${HARVEST_STATUSES.join(', ')}`).optional() });

/** Harvested exam notices: the input of extract-blueprints. */
export function harvestItemsRoutes(db: Db): Hono {
  const app = new Hono();

  app.post('/', validate('json', NewHarvestItemSchema), async (c) => {
    const { title, content, source_url } = c.req.valid('json');
    const [row] = await db.insert(harvestItems).values({ title, content, source_url: source_url ?? null }).returning();
    return c.json(row, 201);
  });

  app.get('/', validate('query', ListSchema), async (c) => {
    const { status, limit, offset } = c.req.valid('query');
    const rows = await db
      .select()
      .from(harvestItems)
      .where(status ? eq(harvestItems.status, status) : undefined)
      .orderBy(desc(harvestItems.id))
      .limit(limit)
      .offset(offset);
    return c.json(rows);
  });

  return app;
}
