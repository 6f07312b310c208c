import type { RouteHandler } from '@hono/zod-openapi';
import type { Db } from '../../../db/client.ts';
import { listDrops } from '../../../db/drops.ts';
import type * as routes from './drops.routes.ts';

export function dropHandlers({ db }: { db: Db }) {
  const list: RouteHandler<typeof routes.list> = async (c) => c.json(await listDrops(db, c.req.valid('query')), 200);
  return { list };
}
