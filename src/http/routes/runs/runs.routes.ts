import { createRoute, z } from '@hono/zod-openapi';
import { IDEMPOTENCY_KEY, IDEMPOTENCY_KEY_TTL_HOURS } from '../../../boss/run-requests.ts';
import { type JobLogRow, RUN_STATUSES } from '../../../db/schema.ts';
import { TRIGGERS } from '../../../jobs/job.ts';
import { API_ERRORS, BEARER, errors, json, QUERY_400, WRITE_ERRORS } from '../../lib/contract.ts';
import { IdParamSchema, JobNameParamSchema, JobPageQuerySchema, PaginationSchema, rowId, timestamp, type Serialized } from '../../lib/schemas.ts';
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
    trigger: z.string().nullable().openapi({ description: 'how the run was started (`cron`, `manual`, `cli`): `metadata.trigger`, kept by the database, what `?trigger=` filters on; null when metadata has none' }),
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

const LogsQuerySchema = JobPageQuerySchema.extend({
  // No default here, so that an offset sent with `before` can be refused; the handler reads a missing one as 0.
  offset: PaginationSchema.shape.offset.unwrap().optional().openapi({ description: 'rows to skip (default 0); the database still reads them, so deep pages get slower: page with `before` instead' }),
  status: z.enum(RUN_STATUSES, `status must be one of ${RUN_STATUSES.join(', ')}`).optional().openapi({ description: 'only runs in this status' }),
  trigger: z.enum(TRIGGERS, `trigger must be one of ${TRIGGERS.join(', ')}`).optional().openapi({ description: 'only runs started this way (the `trigger` field)' }),
  before: z.coerce
    .number('before must be a log id (a positive integer)')
    .int('before must be a log id (a positive integer)')
    .min(1, 'before must be a log id (a positive integer)')
    .max(2_147_483_647, 'before is out of range')
    .optional()
    .openapi({
      description: "a log id: only the runs after it in this order (older, or as old with a lower id). Pass the last row's id to get the next page; as fast deep in the history as on the first page. Not with `offset`",
      example: 1234,
    }),
}).refine((query) => query.before === undefined || query.offset === undefined, { path: ['offset'], message: 'offset cannot be combined with before: page with one or the other' });

export const list = createRoute({
  operationId: 'listRuns',
  method: 'get',
  path: '/api/jobs/logs',
  tags,
  summary: 'List runs, newest first',
  description:
    'Newest first by `started_at`, then `id`. Filters combine (`jobName`, `status`, `trigger`). To page, pass the last row\'s id as `before` ' +
    '(keyset: as fast on the thousandth page as on the first, and no row is skipped or repeated when new runs arrive); `offset` still works, ' +
    'but the database reads every row it skips. `trigger` and `status=FAILED` read only the matching runs, however rare. `status=STARTED` and `COMPLETED` ' +
    'check the runs newest first (an index on status would cost every run\'s closing update): COMPLETED is fast, STARTED reads the whole history ' +
    'when fewer runs are in flight than the page asks for (0.25–0.4 s at 1 M rows).',
  security: BEARER,
  request: { query: LogsQuerySchema },
  responses: {
    200: json(z.array(RunSchema), 'a page of runs'),
    ...errors({ 400: `${QUERY_400}; an unknown status or trigger; before that is not an id, or sent with offset`, 404: 'unknown job, or no log with the id given as before' }),
    ...API_ERRORS,
  },
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
