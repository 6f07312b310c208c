import { createRoute, z } from '@hono/zod-openapi';
import { AUTH_ERRORS, BEARER, errors, json } from '../../lib/contract.ts';

/** The routes outside any resource: the API's index and the health check. */

const tags = ['service'];

/** Where things are, relative to the service's origin. */
export const LINKS = {
  docs: '/docs',
  openapi: '/openapi.json',
  metrics: '/metrics',
  healthz: '/healthz',
  schedules: '/api/jobs/schedules',
  logs: '/api/jobs/logs',
  queue: '/api/jobs/queue',
  status: '/api/jobs/status',
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
