import { createRoute, z } from '@hono/zod-openapi';
import { IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_TTL_HOURS } from '../../../boss/run-requests.ts';
import { type JobLogRow, RUN_STATUSES } from '../../../db/schema.ts';
import { API_ERRORS, BEARER, errors, json, QUERY_400, WRITE_ERRORS } from '../../lib/contract.ts';
import { IdParamSchema, JobNameParamSchema, JobPageQuerySchema, rowId, timestamp, type Serialized } from '../../lib/schemas.ts';
import { noBody } from '../../lib/validation.ts';
import { AcceptLanguageHeaderSchema } from '../../lib/language.ts';
import { inLanguage, ScheduleSchema } from '../schedules/schedules.routes.ts';

/** Runs: ask for one (a manual run), and read what ran (job_logs). */

const tags = ['runs'];

export const RunSchema = z
  .strictObject({
    id: rowId(),
    job_name: z.string(),
    status: z.enum(RUN_STATUSES),
    started_at: timestamp(),
    ended_at: timestamp().nullable(),
    items_processed: z.number().int(),
    items_failed: z.number().int(),
    error_message: z.string().nullable(),
    metadata: z.record(z.string(), z.unknown()).openapi({ description: 'trigger, pg-boss job_id, attempt, duration_ms, worker, llm usage…' }),
    job_id: z.string().nullable().openapi({ description: 'the pg-boss job this run is an attempt of (a retry keeps it); null only for rows written by hand' }),
  })
  .openapi('Run', { description: 'one run of a job (a job_logs row)' }) satisfies z.ZodType<Serialized<JobLogRow>>;

const RunAcceptedSchema = z
  .strictObject({
    message: z.string(),
    jobName: z.string(),
    jobId: z.string().openapi({ description: 'the pg-boss job id of the run' }),
    replayed: z.literal(true).optional().openapi({ description: 'present when this Idempotency-Key already made this run' }),
  })
  .openapi('RunAccepted');

const RunWaitingSchema = z
  .strictObject({
    error: z.string(),
    jobName: z.string(),
    jobId: z.string().nullable().openapi({ description: 'the run already waiting' }),
  })
  .openapi('RunWaiting');

const BudgetStatusSchema = z
  .strictObject({
    daily_budget_usd: z.number().nullable().openapi({ description: 'null: no budget' }),
    spent_today_usd: z.number().openapi({ description: "what the LLM calls of the local day cost so far (the ledger, all instances)" }),
    remaining_usd: z.number().nullable().openapi({ description: 'what is left today, never below 0; null without a budget' }),
    day: z.string().openapi({ description: 'the local day, YYYY-MM-DD', example: '2027-03-12' }),
    timezone: z.string().openapi({ description: "whose day: the schedule's zone, or SCHEDULER_TIMEZONE for the global budget" }),
  })
  .openapi('BudgetStatus');

const StatusSchema = z
  .strictObject({
    budgets: z
      .strictObject({
        jobs: z.record(z.string(), BudgetStatusSchema).openapi({ description: "each scheduled job's daily_budget_usd and today's spend, in its schedule's zone" }),
        global: BudgetStatusSchema.openapi({ description: 'LLM_DAILY_BUDGET_USD across all jobs, in SCHEDULER_TIMEZONE' }),
      })
      .openapi({ description: 'daily LLM budgets: today\'s spend and what is left' }),
    schedules: z.array(ScheduleSchema),
    latestLogs: z.record(z.string(), z.union([RunSchema, z.null()])).openapi({ description: 'the latest run of each registered job, null before its first' }),
    totalLogs: z.number().int(),
    totalLogsEstimated: z.boolean().openapi({ description: 'true when totalLogs is PostgreSQL\'s estimate (above 10,000 rows)' }),
  })
  .openapi('Status');

const RunHeadersSchema = z.object({
  'idempotency-key': z
    .string()
    .regex(IDEMPOTENCY_KEY, 'Idempotency-Key must be 1 to 200 printable ASCII characters')
    .optional()
    .openapi({ description: `1 to 200 printable ASCII characters; the same key for the same job within ${IDEMPOTENCY_KEY_TTL_HOURS} h gives the same run` }),
});

export const run = createRoute({
  operationId: 'runJob',
  method: 'post',
  path: '/api/jobs/run/{jobName}',
  tags,
  summary: 'Run a job now',
  description: 'Takes no body (or `{}`). Limited to RUN_RATE_LIMIT_PER_MINUTE per client.',
  security: BEARER,
  middleware: [noBody],
  request: { params: JobNameParamSchema, headers: RunHeadersSchema },
  responses: {
    202: json(RunAcceptedSchema, 'enqueued (or, with a known Idempotency-Key, the run it made before)'),
    ...errors({
      400: 'a body other than `{}`, malformed JSON, non-JSON Content-Type, or a malformed Idempotency-Key',
      404: 'unknown job',
    }),
    409: json(RunWaitingSchema, 'the job already has a run waiting to start'),
    429: {
      ...json(z.strictObject({ error: z.string() }), 'too many manual runs from this client'),
      headers: z.object({ 'Retry-After': z.string().openapi({ description: 'seconds' }) }),
    },
    ...API_ERRORS,
    ...WRITE_ERRORS,
  },
});

export const list = createRoute({
  operationId: 'listRuns',
  method: 'get',
  path: '/api/jobs/logs',
  tags,
  summary: 'List runs, newest first',
  security: BEARER,
  request: { query: JobPageQuerySchema },
  responses: { 200: json(z.array(RunSchema), 'a page of runs'), ...errors({ 400: QUERY_400, 404: 'unknown job' }), ...API_ERRORS },
});

export const get = createRoute({
  operationId: 'getRun',
  method: 'get',
  path: '/api/jobs/logs/{id}',
  tags,
  summary: 'Get one run by id',
  security: BEARER,
  request: { params: IdParamSchema },
  responses: { 200: json(RunSchema, 'the run'), ...errors({ 400: 'id is not a positive integer', 404: 'no run with that id' }), ...API_ERRORS },
});

export const latest = createRoute({
  operationId: 'getLatestRun',
  method: 'get',
  path: '/api/jobs/logs/{jobName}/latest',
  tags,
  summary: "Get a job's latest run",
  security: BEARER,
  request: { params: JobNameParamSchema },
  responses: { 200: json(RunSchema, 'the run'), ...errors({ 404: 'unknown job, or it has not run yet' }), ...API_ERRORS },
});

export const status = createRoute({
  operationId: 'getStatus',
  method: 'get',
  path: '/api/jobs/status',
  tags,
  summary: 'Schedules, latest runs and the number of runs',
  description: 'Its cost does not grow with history: `totalLogs` is exact up to 10,000 rows, PostgreSQL\'s estimate above.',
  security: BEARER,
  request: { headers: AcceptLanguageHeaderSchema },
  responses: { 200: inLanguage(StatusSchema, 'the summary'), ...API_ERRORS },
});
