import { desc, eq } from 'drizzle-orm';
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { Db } from '../../db/client.ts';
import { examBlueprints } from '../../db/schema.ts';
import { IdParamSchema, PaginationSchema, validate } from '../validation.ts';

/** Exam blueprints extracted by the LLM. */
export function blueprintsRoutes(db: Db): Hono {
  const app = new Hono();

  app.get('/', validate('query', PaginationSchema), async (c) => {
    const { limit, offset } = c.req.valid('query');
    return c.json(await db.select().from(examBlueprints).orderBy(desc(examBlueprints.id)).limit(limit).offset(offset));
  });

  app.get('/:id', validate('param', IdParamSchema), async (c) => {
    const { id } = c.req.valid('param');
    const [row] = await db.select().from(examBlueprints).where(eq(examBlueprints.id, id));
    if (!row) throw new HTTPException(404, { message: `no blueprint with id ${id}` });
    return c.json(row);
  });

  return app;
}
