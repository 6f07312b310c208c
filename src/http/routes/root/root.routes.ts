import { createRoute, z } from '@hono/zod-openapi';
import { AUTH_ERRORS, BEARER, errors, json } from '../../lib/contract.ts';

/** The routes outside any resource: the API's index and the health check. */

const tags = ['service'];

/** Where things are, relative to the service's origin. */
export const LINKS = {
  console: '/',
  docs: '/docs',
  session: '/api/session',
  openapi: '/openapi.json',
  metrics: '/metrics',
  healthz: '/healthz',
  schedules: '/api/jobs/schedules',
  logs: '/api/jobs/logs',
  queue: '/api/jobs/queue',
  status: '/api/jobs/status',
  stats: '/api/jobs/stats',
  cronPreview: '/api/cron/preview?cron_expression=@daily',
  deadLetters: '/api/jobs/dead-letters',
  alerts: '/api/alerts',
  harvestItems: '/api/harvest-items',
  blueprints: '/api/blueprints',
  drops: '/api/drops',
} as const;

const ApiIndexSchema = z
  .strictObject({ links: z.strictObject(Object.fromEntries(Object.entries(LINKS).map(([name, path]) => [name, z.string().openapi({ example: path })])) as Record<keyof typeof LINKS, z.ZodString>) })
  .openapi('ApiIndex');

export const index = createRoute({
  operationId: 'getApiIndex',
  method: 'get',
  path: '/api',
  tags,
  summary: 'Links to the documentation and the resources',
  security: BEARER,
  responses: { 200: json(ApiIndexSchema, 'paths on this service'), ...AUTH_ERRORS },
});

const SessionSchema = z
  .strictObject({
    auth: z.boolean().openapi({ description: 'whether the service runs with API_TOKEN' }),
    role: z.enum(['api_token', 'api_token_readonly']).nullable().openapi({ description: 'the token this request was let in with; null with auth off' }),
    can_write: z.boolean().openapi({ description: 'false for the read-only token: every POST, PUT and DELETE would be a 403' }),
  })
  .openapi('Session');

export const session = createRoute({
  operationId: 'getSession',
  method: 'get',
  path: '/api/session',
  tags,
  summary: 'What the token of this request may do',
  description: 'The console asks it once at sign-in, to check the token and to disable the write controls for the read-only one.',
  security: BEARER,
  responses: { 200: json(SessionSchema, 'the token is accepted'), ...AUTH_ERRORS },
});

export const healthz = createRoute({
  operationId: 'getHealth',
  method: 'get',
  path: '/healthz',
  tags,
  summary: 'Health check: does the database answer?',
  description: 'No token needed, even with API_TOKEN set.',
  responses: {
    200: json(z.strictObject({ status: z.literal('ok') }), 'the database answered'),
    ...errors({ 503: '`database unavailable`: no answer within 2 s' }),
  },
});
