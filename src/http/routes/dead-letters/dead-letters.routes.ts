import { createRoute, z } from '@hono/zod-openapi';
import type { DeadLetter, JobSentBack } from '../../../boss/dead-letters.ts';
import { API_ERRORS, BEARER, errors, json, QUERY_400, WRITE_ERRORS } from '../../lib/contract.ts';
import { JobPageQuerySchema, text, timestamp, UuidParamSchema } from '../../lib/schemas.ts';
import { jsonContentType, noBody } from '../../lib/validation.ts';

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

const errorFilter = () =>
  text()
    .min(1, 'error must not be empty')
    .max(500, 'error must be at most 500 characters')
    .optional()
    .openapi({ description: "only dead letters whose error message contains this text (any case)", example: 'rate limit' });

const ListQuerySchema = JobPageQuerySchema.extend({ error: errorFilter() });

const RetryMatchingBodySchema = z
  .strictObject({
    jobName: z.string().optional().openapi({ description: 'only this job (a registered job: 404 otherwise); every job when left out', example: 'extract-blueprints' }),
    error: errorFilter(),
  })
  .openapi('DeadLetterFilter');

const JobSentBackSchema = z
  .strictObject({
    jobName: z.string(),
    jobId: z.string().nullable().openapi({ description: "the new run's pg-boss job id; null when nothing was sent for this job" }),
    sent: z.string().nullable().openapi({ description: 'the dead letter sent back: the newest that matched' }),
    settled: z.array(z.string()).openapi({ description: 'the other matching dead letters, removed from the dead-letter queue: the run sent back does their work' }),
    left: z.array(z.string()).openapi({ description: 'matching dead letters left as they were (see reason)' }),
    reason: z.string().nullable().openapi({ description: 'why dead letters were left; null when none were' }),
    waitingJobId: z.string().nullable().openapi({ description: 'the run already waiting, when that is the reason' }),
  })
  .openapi('DeadLettersSentBack') satisfies z.ZodType<JobSentBack>;

const RetryMatchingResultSchema = z.strictObject({ message: z.string(), jobs: z.array(JobSentBackSchema) }).openapi('DeadLettersRetried');
const RetryMatchingRefusedSchema = z.strictObject({ error: z.string(), jobs: z.array(JobSentBackSchema) }).openapi('DeadLettersRetryRefused');

export const list = createRoute({
  operationId: 'listDeadLetters',
  method: 'get',
  path: '/api/jobs/dead-letters',
  tags,
  summary: 'List dead letters, newest first',
  description: "Runs whose retries were all spent (pg-boss queue `<job>/dead-letter`, kept 90 days).",
  security: BEARER,
  request: { query: ListQuerySchema },
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

export const retryMatching = createRoute({
  operationId: 'retryMatchingDeadLetters',
  method: 'post',
  path: '/api/jobs/dead-letters/retry',
  tags,
  summary: 'Send back every dead letter that matches a filter, as one run per job',
  description:
    "Every dead letter of `jobName` (all jobs when left out) whose error contains `error`. A run's payload is only its trigger and every run " +
    "takes all of its job's pending work, so each job gets one run back: the newest match is sent back, the other matches are removed from " +
    "the dead-letter queue, and the logs of the runs they came from get `metadata.sent_back_as` (the new run's pg-boss id). A job that " +
    'already has a run waiting is left untouched (`left`, `reason`); the other jobs still go. The body is optional: none means every dead letter.',
  security: BEARER,
  middleware: [jsonContentType],
  request: { body: { ...json(RetryMatchingBodySchema, 'which dead letters'), required: false } },
  responses: {
    202: json(RetryMatchingResultSchema, 'at least one run was sent back; per job, what was sent, settled and left'),
    ...errors({
      400: 'an unknown field, an empty or over-long error filter, malformed JSON or non-JSON Content-Type',
      404: 'unknown job, or no dead letter matches',
    }),
    409: json(RetryMatchingRefusedSchema, 'dead letters matched, but every job they belong to already has a run waiting; nothing was changed'),
    ...API_ERRORS,
    ...WRITE_ERRORS,
  },
});
