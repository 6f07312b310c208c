import { createHash } from 'node:crypto';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context, MiddlewareHandler } from 'hono';
import { rateLimiter } from 'hono-rate-limiter';

/**
 * At most `perMinute` requests a minute per client, for the route it is put on (manual runs); more
 * are a 429 `{ error }` with `Retry-After` (seconds) and `RateLimit-*` headers.
 *
 * The client is the bearer token when auth is on (every caller holding API_TOKEN shares one budget;
 * the token itself is kept only as a hash), else the remote address. Counters live in this process
 * (hono-rate-limiter's MemoryStore, a fixed window per client): with several API instances each
 * allows `perMinute`, and a restart forgets them. Good enough to stop a runaway script; a shared
 * limit would need a shared store.
 */
export function rateLimitPerClient(perMinute: number, { authOn }: { authOn: boolean }): MiddlewareHandler {
  return rateLimiter({
    windowMs: 60_000,
    limit: perMinute,
    standardHeaders: 'draft-6',
    keyGenerator: (c) => (authOn ? tokenKey(c) : addressKey(c)),
    message: { error: `too many manual runs from this client: at most ${perMinute} a minute; try again after Retry-After seconds` },
  });
}

function tokenKey(c: Context): string {
  // Auth ran first, so the header holds a valid token.
  const token = /^Bearer\s+(\S+)/i.exec(c.req.header('authorization') ?? '')?.[1] ?? '';
  return `token:${createHash('sha256').update(token).digest('base64url')}`;
}

function addressKey(c: Context): string {
  try {
    return `address:${getConnInfo(c).remote.address ?? 'unknown'}`;
  } catch {
    // Not served by @hono/node-server (e.g. app.request() in a test): no socket to ask.
    return 'address:unknown';
  }
}
