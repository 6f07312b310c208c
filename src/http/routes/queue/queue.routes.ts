import { createRoute, z } from '@hono/zod-openapi';
import type { CancelledRun } from '../../../boss/cancel.ts';
import { QUEUE_LIMIT_DEFAULT, QUEUE_LIMIT_MAX, QUEUE_STATES, type QueuedJob } from '../../../boss/queue.ts';
import { API_ERRORS, BEARER, errors, json, WRITE_ERRORS } from '../../lib/contract.ts';
import { text, timestamp } from '../../lib/schemas.ts';
import { noBody } from '../../lib/validation.ts';

/** /api/jobs/queue and cancelling a run: the pg-boss jobs of our jobs that have not ended. */

const tags = ['queue'];
const STATES = QUEUE_STATES.join(', ');

const QueuedJobSchema = z
  .strictObject({
    job_id: z.string().openapi({ description: 'the pg-boss job id (what cancel takes)', format: 'uuid' }),
    job_name: z.string(),
    state: z.enum(QUEUE_STATES).openapi({ description: '`created` waiting to start, `active` running, `retry` waiting to retry' }),
    trigger: z.string().nullable().openapi({ description: 'cron, manual or cli' }),
    created_at: timestamp(),
    start_after: timestamp().openapi({ description: 'when it may start; for a retry, when the retry fires' }),
    retry_count: z.number().int(),
    retry_limit: z.number().int(),
    log_id: z.number().int().nullable().openapi({ description: 'its newest run (GET /api/jobs/logs/{id}): the running or last attempt; null when it never started' }),
  })
  .openapi('QueuedJob') satisfies z.ZodType<QueuedJob>;

const QueueQuerySchema = z.object({
  jobName: text().optional().openapi({ description: 'only this job (a registered job: 404 otherwise)', example: 'extract-blueprints' }),
  state: z.enum(QUEUE_STATES, `state must be one of ${STATES}`).optional().openapi({ description: 'only jobs in this state' }),
  limit: z.coerce
    .number('limit must be a number')
    .int('limit must be an integer')
    .min(1, `limit must be between 1 and ${QUEUE_LIMIT_MAX}`)
    .max(QUEUE_LIMIT_MAX, `limit must be between 1 and ${QUEUE_LIMIT_MAX}`)
    .default(QUEUE_LIMIT_DEFAULT)
    .openapi({ description: `at most this many, 1 to ${QUEUE_LIMIT_MAX}` }),
});

const JobIdParamSchema = z.object({
  jobId: z
    .string()
    .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'jobId must be a UUID')
    .openapi({ description: 'the pg-boss job id (`job_id` in the queue, `jobId` of a manual run)', format: 'uuid', example: '0b9c4c1e-4f4a-4d43-9a57-2f7f1f0d8a11' }),
});

const CancelledSchema = z
  .strictObject({
    job_id: z.string(),
    job_name: z.string(),
    state_before: z.enum(QUEUE_STATES).openapi({ description: 'what the job was doing when it was cancelled' }),
    message: z.string(),
  })
  .openapi('RunCancelled') satisfies z.ZodType<CancelledRun>;

const EndedSchema = z
  .strictObject({ error: z.string(), state: z.string().openapi({ description: "pg-boss's state of the job: completed, failed, cancelled…" }) })
  .openapi('RunEnded');

export const list = createRoute({
  operationId: 'listQueue',
  method: 'get',
  path: '/api/jobs/queue',
  tags,
  summary: 'List the runs waiting, running or waiting to retry',
  description: `pg-boss jobs of the registered jobs (not dead letters) in state ${STATES}: running first, then by when each may start.`,
  security: BEARER,
  request: { query: QueueQuerySchema },
  responses: {
    200: json(z.array(QueuedJobSchema), 'the queue'),
    ...errors({ 400: `invalid query: a state other than ${STATES}, limit out of range, or a NUL character`, 404: 'unknown job' }),
    ...API_ERRORS,
  },
});

export const cancel = createRoute({
  operationId: 'cancelRun',
  method: 'post',
  path: '/api/jobs/runs/{jobId}/cancel',
  tags,
  summary: 'Cancel a waiting or running run',
  description:
    'Takes no body (or `{}`). The job is cancelled in pg-boss: never retried, never dead-lettered. A running run is stopped ' +
    'at once on the instance that answers, or within its heartbeat on another; its log ends FAILED `cancelled by operator` ' +
    'and its claimed items go back to PENDING. A run waiting to retry: its last log is amended to `will_retry: false, cancelled: true`.',
  security: BEARER,
  middleware: [noBody],
  request: { params: JobIdParamSchema },
  responses: {
    200: json(CancelledSchema, 'cancelled'),
    ...errors({
      400: 'jobId is not a UUID, or a body other than `{}`, malformed JSON, non-JSON Content-Type',
      404: 'no job with that id in the queues of the registered jobs',
    }),
    409: json(EndedSchema, 'the job has already ended (completed, failed, cancelled…); nothing was changed'),
    ...API_ERRORS,
    ...WRITE_ERRORS,
  },
});
