import type { MiddlewareHandler } from 'hono';
import { timingSafeEqual } from 'hono/utils/buffer';

/** `Authorization: Bearer <token>`, compared in constant time; 401 with our error shape otherwise. */
export function requireBearer(token: string): MiddlewareHandler {
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match || !(await timingSafeEqual(match[1]!, token))) {
      c.header('WWW-Authenticate', 'Bearer realm="memodrops-scheduler"');
      return c.json({ error: match ? 'invalid bearer token' : 'missing bearer token (Authorization: Bearer <API_TOKEN>)' }, 401);
    }
    await next();
  };
}
