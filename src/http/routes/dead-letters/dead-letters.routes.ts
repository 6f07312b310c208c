import { createRoute, z } from '@hono/zod-openapi';
import type { DeadLetter } from '../../../boss/dead-letters.ts';
import { API_ERRORS, BEARER, errors, json, QUERY_400, WRITE_ERRORS } from '../../lib/contract.ts';
import { JobPageQuerySchema, timestamp, UuidParamSchema } from '../../lib/schemas.ts';
import { noBody } from '../../lib/validation.ts';

/** /api/jobs/dead-letters: the runs whose retries are spent, and sending one back to its job. */

const tags = ['dead letters'];

const DeadLetterSchema = z
  .strictObject({
    id: z.string().openapi({ description: 'its id in the dead-letter queue: what retry takes', format: 'uuid' }),
    job_name: z.string(),
    data: z.unknown().openapi({ description: 'the payload of the failed run' }),
    state: z.string().openapi({ description: '`created` while it waits; `failed` if a retry found its job\'s queue full' }),
    created_at: timestamp().openapi({ description: 'when it was dead-lettered' }),
    source_job_id: z.string().nullable(),
    source_created_at: timestamp().nullable(),
    retry_count: z.number().int().nullable(),
    error: z.string().nullable().openapi({ description: "the failure's message" }),
  })
  .openapi('DeadLetter') satisfies z.ZodType<DeadLetter>;

const ids = {
  jobName: z.string(),
  id: z.string().openapi({ description: 'the dead letter' }),
};

const RetryAcceptedSchema = z
  .strictObject({ message: z.string(), ...ids, jobId: z.string().nullable().openapi({ description: 'the new run\'s pg-boss job id' }) })
  .openapi('DeadLetterRetried');

const RetryRefusedSchema = z
  .strictObject({ error: z.string(), ...ids, jobId: z.string().nullable().openapi({ description: 'the run already waiting' }) })
  .openapi('DeadLetterRetryRefused');

export const list = createRoute({
  operationId: 'listDeadLetters',
  method: 'get',
  path: '/api/jobs/dead-letters',
  tags,
  summary: 'List dead letters, newest first',
  description: "Runs whose retries were all spent (pg-boss queue `<job>/dead-letter`, kept 90 days).",
  security: BEARER,
  request: { query: JobPageQuerySchema },
  responses: { 200: json(z.array(DeadLetterSchema), 'a page of dead letters'), ...errors({ 400: QUERY_400, 404: 'unknown job' }), ...API_ERRORS },
});

export const retry = createRoute({
  operationId: 'retryDeadLetter',
  method: 'post',
  path: '/api/jobs/dead-letters/{id}/retry',
  tags,
  summary: 'Send a dead letter back to its job',
  description: 'Takes no body (or `{}`). The run goes back to its job\'s queue as a new job.',
  security: BEARER,
  middleware: [noBody],
  request: { params: UuidParamSchema },
  responses: {
    202: json(RetryAcceptedSchema, 'sent back'),
    ...errors({
      400: 'id is not a UUID, or a body other than `{}`, malformed JSON, non-JSON Content-Type',
      404: 'no such dead letter (or it was already retried)',
    }),
    409: json(RetryRefusedSchema, 'the job already has a run waiting; the dead letter is left as it was'),
    ...API_ERRORS,
    ...WRITE_ERRORS,
  },
});
