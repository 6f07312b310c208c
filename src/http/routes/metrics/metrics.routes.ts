import { createRoute, z } from '@hono/zod-openapi';
import { AUTH_ERRORS, BEARER } from '../../lib/contract.ts';

/** /metrics: this instance's Prometheus metrics (README "Metrics"). */

export const scrape = createRoute({
  operationId: 'getMetrics',
  method: 'get',
  path: '/metrics',
  tags: ['service'],
  summary: "This instance's Prometheus metrics",
  description:
    'Prometheus text exposition format 0.0.4. Counters are what this instance did (sum them across instances); ' +
    'gauges read from the database are the same on every instance (take the max). Same token rules as /api; the read-only token may scrape.',
  security: BEARER,
  responses: {
    200: { description: 'the metrics', content: { 'text/plain': { schema: z.string().openapi({ example: 'scheduler_job_runs_total{job_name="extract-blueprints",status="completed",trigger="cron"} 3' }) } } },
    ...AUTH_ERRORS,
  },
});
