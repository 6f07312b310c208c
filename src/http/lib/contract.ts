import type { z } from '@hono/zod-openapi';
import { ErrorSchema } from './schemas.ts';

/** Helpers for the `responses` of a route contract, so every route declares its errors the same way. */

export const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { 'application/json': { schema } } });

/** The security requirement of every /api route: the bearer token, when the service has API_TOKEN. */
export const BEARER = [{ bearerAuth: [] }];

export const BEARER_SCHEME = {
  type: 'http',
  scheme: 'bearer',
  description:
    'API_TOKEN, for every /api route; or API_TOKEN_READONLY, for GET and HEAD only (anything else with it is a 403). ' +
    'Checked only when the service runs with API_TOKEN; without it the API is open.',
} as const;

type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 429 | 500 | 503;

/** `{ "error": "..." }` responses, one per status, each with why a route answers it. */
export function errors<const T extends Partial<Record<ErrorStatus, string>>>(described: T): { [K in keyof T]: ReturnType<typeof json<typeof ErrorSchema>> } {
  return Object.fromEntries(Object.entries(described).map(([status, description]) => [status, json(ErrorSchema, description as string)])) as never;
}

/** What any route that reads the database can answer besides its own statuses. */
export const SERVER_ERRORS = errors({
  500: '`internal error`, without details (they are logged)',
  503: '`database unavailable`',
});

/** What every /api route can answer when the service runs with API_TOKEN. */
export const AUTH_ERRORS = errors({ 401: 'missing or invalid bearer token (only when the service runs with API_TOKEN)' });

/** What every /api route that reads the database can answer: the token check, then a failure of ours or of the database. */
export const API_ERRORS = { ...AUTH_ERRORS, ...SERVER_ERRORS };

/** What every /api route that changes something can answer before it runs, besides API_ERRORS. */
export const WRITE_ERRORS = errors({
  403: 'the read-only token (API_TOKEN_READONLY) on a route that changes something',
  413: 'request body larger than 1 MB (1048576 bytes)',
});

/** The 400 of a list route: its query does not parse. */
export const QUERY_400 = 'invalid query: limit, offset or a filter out of range, or a NUL character';
