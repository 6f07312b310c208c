import type { MiddlewareHandler } from 'hono';
import { timingSafeEqual } from 'hono/utils/buffer';

export type Tokens = {
  /** API_TOKEN: every route. */
  token: string;
  /** API_TOKEN_READONLY: GET and HEAD only; anything else with it is a 403. */
  readOnlyToken?: string;
};

/** Which token a request was let in with; unset when the API runs without API_TOKEN. */
export type TokenRole = 'api_token' | 'api_token_readonly';

declare module 'hono' {
  interface ContextVariableMap {
    /** Set by requireBearer on success: what a write records as its actor. */
    tokenRole: TokenRole;
  }
}

/** Methods the read-only token may use: they change nothing. */
const READ_METHODS = new Set(['GET', 'HEAD']);

/**
 * `Authorization: Bearer <token>`, compared in constant time; 401 with our error shape otherwise.
 * Both tokens are always compared, so the time taken says nothing about which one (if any) matched.
 */
export function requireBearer({ token, readOnlyToken }: Tokens): MiddlewareHandler {
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const given = match?.[1];
    const [full, readOnly] = given === undefined ? [false, false] : await Promise.all([timingSafeEqual(given, token), readOnlyToken ? timingSafeEqual(given, readOnlyToken) : false]);
    if (!full && !readOnly) {
      c.header('WWW-Authenticate', 'Bearer realm="memodrops-scheduler"');
      return c.json({ error: match ? 'invalid bearer token' : 'missing bearer token (Authorization: Bearer <API_TOKEN>)' }, 401);
    }
    if (!full && !READ_METHODS.has(c.req.method)) {
      return c.json({ error: `the read-only token (API_TOKEN_READONLY) may only read (GET); ${c.req.method} needs API_TOKEN` }, 403);
    }
    c.set('tokenRole', full ? 'api_token' : 'api_token_readonly');
    await next();
  };
}
