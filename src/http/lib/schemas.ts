import { z } from '@hono/zod-openapi';

/**
 * The zod building blocks of the route contracts: what a route validates its input with is what
 * the OpenAPI document says it takes, and what it answers with is what the document says it returns.
 */

/** Postgres text cannot hold NUL; refuse it here instead of failing in the database. */
export const text = (required?: string) => z.string(required).refine((s) => !s.includes('\u0000'), 'must not contain NUL (\\u0000) characters');

/** A row as `c.json` sends it: its Dates become ISO strings. For `satisfies` checks, so a response schema cannot drift from its table. */
export type Serialized<T> = { [K in keyof T]: T[K] extends Date ? string : T[K] extends Date | null ? string | null : T[K] };

/** How a Date in a row reaches the client: `toISOString()`, always UTC. */
export const timestamp = () => z.iso.datetime();

/** A query parameter that is an instant: ISO 8601 with `Z` or an offset; the error names the parameter. */
export const instant = (name: string) => z.iso.datetime({ offset: true, message: `${name} must be an ISO 8601 instant, e.g. 2026-01-31T00:00:00Z` });

export const PaginationSchema = z.object({
  limit: z.coerce
    .number('limit must be a number')
    .int('limit must be an integer')
    .min(1, 'limit must be between 1 and 100')
    .max(100, 'limit must be between 1 and 100')
    .default(20)
    .openapi({ description: 'page size, 1 to 100' }),
  offset: z.coerce
    .number('offset must be a number')
    .int('offset must be an integer')
    .min(0, 'offset must be 0 or more')
    .max(1_000_000, 'offset must be at most 1000000')
    .default(0)
    .openapi({ description: 'rows to skip' }),
});

/** A row id (Postgres `integer`). */
export const rowId = () => z.coerce.number('id must be a number').int('id must be an integer').min(1, 'id must be positive').max(2_147_483_647, 'id is out of range');

export const IdParamSchema = z.object({ id: rowId().openapi({ example: 1 }) });

/** pg-boss job ids. Checked before any query, where a malformed one would be a database error. */
export const UuidParamSchema = z.object({
  id: z
    .string()
    .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'id must be a UUID')
    .openapi({ format: 'uuid', example: '0b9c4c1e-4f4a-4d43-9a57-2f7f1f0d8a11' }),
});

// No length limit and no NUL check: any name that is not a registered job is a 404, whatever it holds.
const jobName = () => z.string().openapi({ description: 'a registered job (`GET /api/jobs/schedules` lists them)', example: 'extract-blueprints' });
export const JobNameParamSchema = z.object({ jobName: jobName() });
/** A page of a list that can be narrowed to one job. */
export const JobPageQuerySchema = PaginationSchema.extend({ jobName: text().optional().openapi({ description: 'only this job (a registered job: 404 otherwise)', example: 'extract-blueprints' }) });

/** The one error shape. Routes that say more (409s) declare their own schema with `error` first. */
export const ErrorSchema = z.strictObject({ error: z.string().openapi({ description: 'what went wrong, for a human' }) }).openapi('Error');
