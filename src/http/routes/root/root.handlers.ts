import type { RouteHandler } from '@hono/zod-openapi';
import { sql } from 'drizzle-orm';
import type { Db } from '../../../db/client.ts';
import { LINKS, type healthz as healthzRoute, type index as indexRoute, type session as sessionRoute } from './root.routes.ts';
import { withTimeout } from '../../../with-timeout.ts';

export function rootHandlers({ db }: { db: Db }) {
  const index: RouteHandler<typeof indexRoute> = (c) => c.json({ links: LINKS }, 200);

  const session: RouteHandler<typeof sessionRoute> = (c) => {
    // Set by requireBearer; unset when the API runs without API_TOKEN.
    const role = c.get('tokenRole') ?? null;
    return c.json({ auth: role !== null, role, can_write: role !== 'api_token_readonly' }, 200);
  };

  const healthz: RouteHandler<typeof healthzRoute> = async (c) => {
    try {
      await withTimeout(db.execute(sql`select 1`), 2_000);
      return c.json({ status: 'ok' as const }, 200);
    } catch {
      return c.json({ error: 'database unavailable' }, 503);
    }
  };

  return { index, session, healthz };
}
