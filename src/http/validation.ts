import { zValidator } from '@hono/zod-validator';
import type { MiddlewareHandler, ValidationTargets } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { z } from 'zod';

/** Postgres text cannot hold NUL; refuse it here instead of failing in the database. */
export const text = () => z.string().refine((s) => !s.includes('\u0000'), 'must not contain NUL (\\u0000) characters');

export const PaginationSchema = z.object({
  limit: z.coerce.number('limit must be a number').int('limit must be an integer').min(1, 'limit must be between 1 and 100').max(100, 'limit must be between 1 and 100').default(20),
  offset: z.coerce.number('offset must be a number').int('offset must be an integer').min(0, 'offset must be 0 or more').max(1_000_000, 'offset must be at most 1000000').default(0),
});

export const IdParamSchema = z.object({ id: z.coerce.number('id must be a number').int('id must be an integer').min(1, 'id must be positive').max(2_147_483_647, 'id is out of range') });

/** pg-boss job ids. Checked before any query, where a malformed one would be a database error. */
export const UuidParamSchema = z.object({ id: z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'id must be a UUID') });

const EmptyBodySchema = z.strictObject({}, 'body must be a JSON object');

/**
 * For POST routes that take no input: no body, an empty one, or `{}`. Anything else is a 400, as on
 * the routes that do take a body (a field we would ignore is refused, not guessed at).
 */
export function noBody(): MiddlewareHandler {
  return async (c, next) => {
    const text = await c.req.text();
    if (text.trim() !== '') {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        throw new HTTPException(400, { message: 'Malformed JSON in request body' });
      }
      const result = EmptyBodySchema.safeParse(value);
      if (!result.success) throw new HTTPException(400, { message: `this route takes no body; ${describe(result.error.issues, 'json')}` });
    }
    await next();
  };
}

/** zod-validator with our one error shape: `{ "error": "<field>: <problem>" }`, status 400. */
export function validate<T extends z.ZodType, Target extends keyof ValidationTargets>(target: Target, schema: T) {
  return zValidator(target, schema, (result) => {
    if (!result.success) throw new HTTPException(400, { message: describe(result.error.issues, target) });
  });
}

function describe(issues: readonly z.core.$ZodIssue[], target: string): string {
  return issues
    .map((issue) => {
      if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.join(', ')}`;
      const where = issue.path.length ? issue.path.join('.') : target === 'json' ? 'body' : target;
      return `${where}: ${issue.message}`;
    })
    .join('; ');
}
