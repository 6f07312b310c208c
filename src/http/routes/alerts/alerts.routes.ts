import { createRoute, z } from '@hono/zod-openapi';
import type { Alert } from '../../../alerts/alerts.ts';
import { ALERT_DELIVERY_STATUSES, ALERT_KINDS } from '../../../db/schema.ts';
import { API_ERRORS, BEARER, errors, json, QUERY_400 } from '../../lib/contract.ts';
import { PaginationSchema, timestamp } from '../../lib/schemas.ts';

/** /api/alerts: the failure alerts raised (README "Alerts") and how their delivery went. */

const AlertSchema = z
  .strictObject({
    id: z.number().int(),
    kind: z.enum(ALERT_KINDS),
    job_name: z.string(),
    log_id: z.number().int().nullable().openapi({ description: 'the run it is about (GET /api/jobs/logs/{id}); null for an overdue schedule' }),
    job_id: z.string().nullable().openapi({ description: "the run's pg-boss job; null for an overdue schedule" }),
    error: z.string().nullable(),
    occurred_at: timestamp().openapi({ description: 'when what it reports happened' }),
    created_at: timestamp().openapi({ description: 'when it was raised and queued for delivery' }),
    status: z.enum(ALERT_DELIVERY_STATUSES).openapi({ description: 'pending (queued or retrying), delivered, or failed (retries spent: in `alerts/webhook/dead-letter`)' }),
    delivered: z.boolean(),
    delivered_at: timestamp().nullable(),
    attempts: z.number().int(),
    last_attempt_at: timestamp().nullable(),
    last_error: z.string().nullable().openapi({ description: "the last failed attempt's reason (kept after a later attempt succeeds)" }),
    resolved_by: z.number().int().nullable().openapi({ description: 'the `recovered` alert that closed this failure alert' }),
    message: z.record(z.string(), z.unknown()).openapi({ description: 'the JSON body sent to ALERT_WEBHOOK_URL, but for `alert_id` and `sent_at` (set at each attempt)' }),
  })
  .openapi('Alert') satisfies z.ZodType<Alert>;

export const list = createRoute({
  operationId: 'listAlerts',
  method: 'get',
  path: '/api/alerts',
  tags: ['alerts'],
  summary: 'List the alerts raised, newest first, with their delivery',
  description: 'Kept whether or not ALERT_WEBHOOK_URL is set now; empty while alerts have never been on.',
  security: BEARER,
  request: { query: PaginationSchema },
  responses: { 200: json(z.array(AlertSchema), 'a page of alerts'), ...errors({ 400: QUERY_400 }), ...API_ERRORS },
});
