import type { Hook } from '@hono/zod-openapi';
import type { Env, MiddlewareHandler } from 'hono';
import { z } from '@hono/zod-openapi';

/**
 * The one place where invalid input becomes a 400 `{ "error": "<field>: <problem>" }`: every route's
 * zod schemas (params, query, headers, body) report here through the routers' defaultHook.
 */
export const defaultHook: Hook<unknown, Env, string, Response | undefined> = (result, c) => {
  if (!result.success) return c.json({ error: describe(result.error.issues, result.target) }, 400);
};

function describe(issues: readonly z.core.$ZodIssue[], target: string): string {
  return issues
    .map((issue) => {
      if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.join(', ')}`;
      const where = issue.path.length ? issue.path.join('.') : target === 'json' ? 'body' : target;
      return `${where}: ${issue.message}`;
    })
    .join('; ');
}

/** JSON as @hono/zod-openapi's media-type check takes it, or narrower, so a body it would refuse is refused here first, as a 400. */
const JSON_CONTENT_TYPE = /^application\/json(;\s*[a-zA-Z0-9-]+=[^;]+)*$/i;
const NOT_JSON = 'Content-Type must be application/json';

/** A body we would ignore or misread is refused, not guessed at: on every /api route, a body must be sent as JSON. */
export const bodiesAreJson: MiddlewareHandler = async (c, next) => {
  const length = c.req.header('content-length');
  const hasBody = (length !== undefined && length !== '0') || c.req.header('transfer-encoding') !== undefined;
  if ((c.req.method === 'POST' || c.req.method === 'PUT') && hasBody && !JSON_CONTENT_TYPE.test(c.req.header('content-type') ?? '')) {
    return c.json({ error: NOT_JSON }, 400);
  }
  await next();
};

/**
 * For routes whose body is JSON: a Content-Type that is not JSON is a 400 even on an empty body
 * (@hono/zod-openapi would answer a 415 of its own shape).
 */
export const jsonContentType: MiddlewareHandler = async (c, next) => {
  const type = c.req.header('content-type');
  if (type !== undefined && !JSON_CONTENT_TYPE.test(type)) return c.json({ error: NOT_JSON }, 400);
  await next();
};

const EmptyBodySchema = z.strictObject({}, 'body must be a JSON object');

/**
 * For POST routes that take no input: no body, an empty one, or `{}`. Anything else is a 400, as on
 * the routes that do take a body (a field we would ignore is refused, not guessed at).
 */
export const noBody: MiddlewareHandler = async (c, next) => {
  const body = await c.req.text();
  if (body.trim() !== '') {
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch {
      return c.json({ error: 'Malformed JSON in request body' }, 400);
    }
    const result = EmptyBodySchema.safeParse(value);
    if (!result.success) return c.json({ error: `this route takes no body; ${describe(result.error.issues, 'json')}` }, 400);
  }
  await next();
};
