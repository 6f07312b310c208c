import { createRoute, z } from '@hono/zod-openapi';
import { CRON_MACROS } from '../../../boss/cron.ts';
import { PREVIEW_MAX_COUNT } from '../../../boss/cron-preview.ts';
import { type JobScheduleChangeRow, type JobScheduleRow, MISSED_POLICIES, SCHEDULE_CHANGE_SOURCES, type ScheduleState } from '../../../db/schema.ts';
import { API_ERRORS, BEARER, errors, json, QUERY_400, WRITE_ERRORS } from '../../lib/contract.ts';
import { AcceptLanguageHeaderSchema, LanguageHeadersSchema } from '../../lib/language.ts';
import { JobNameParamSchema, PaginationSchema, rowId, text, timestamp, type Serialized } from '../../lib/schemas.ts';
import { jsonContentType } from '../../lib/validation.ts';

const tags = ['schedules'];

/** `description` of every schedule a response carries: the cron in words, in the request's language. */
export const cronDescription = () =>
  z.string().openapi({ description: 'the cron in plain words, 24-hour clock, in the language Accept-Language asks for (Portuguese for `pt*`, else English)', example: 'At 00:00' });

/** A 200 whose schedules are described in words: it says in which language. */
export const inLanguage = <T extends z.ZodType>(schema: T, description: string) => ({ ...json(schema, description), headers: LanguageHeadersSchema });

const ScheduleRowSchema = z
  .strictObject({
    id: rowId(),
    job_name: z.string(),
    cron_expression: z.string().openapi({ description: `5 fields (minute hour day-of-month month day-of-week) or a macro: ${CRON_MACROS.join(', ')}`, example: '0 */6 * * *' }),
    timezone: z.string().openapi({ description: 'IANA time zone the cron is read in', example: 'America/Sao_Paulo' }),
    is_active: z.boolean(),
    missed_policy: z.enum(MISSED_POLICIES).openapi({ description: 'occurrences missed while no instance ran: `skip` them, or run `once` for the latest' }),
    last_run_at: timestamp().nullable(),
    next_run_at: timestamp().nullable().openapi({ description: 'null when inactive' }),
    daily_budget_usd: z.number().nullable().openapi({ description: "most the job's LLM calls may cost per day of its time zone, USD; null = no budget", example: 0.05 }),
    created_at: timestamp(),
    updated_at: timestamp(),
  }) satisfies z.ZodType<Serialized<JobScheduleRow>>;

export const ScheduleSchema = ScheduleRowSchema.extend({ description: cronDescription() }).openapi('Schedule');

/** The occurrences a preview lists. */
export const PreviewRunSchema = z
  .strictObject({
    at: timestamp().openapi({ description: 'the instant, UTC', example: '2027-03-14T07:30:00.000Z' }),
    local: z.string().openapi({ description: "the wall time in the schedule's zone, with its offset", example: '2027-03-14T03:30:00-04:00' }),
  })
  .openapi('PreviewRun');

export const PreviewQuerySchema = z.object({
  count: z.coerce
    .number('count must be a number')
    .int('count must be an integer')
    .min(1, `count must be between 1 and ${PREVIEW_MAX_COUNT}`)
    .max(PREVIEW_MAX_COUNT, `count must be between 1 and ${PREVIEW_MAX_COUNT}`)
    .default(10)
    .openapi({ description: `how many occurrences, 1 to ${PREVIEW_MAX_COUNT}` }),
  from: z.iso
    .datetime({ offset: true, error: 'from must be an ISO-8601 instant with seconds and a zone designator (Z or ±hh:mm), e.g. 2027-03-12T00:00:00Z' })
    .refine((from) => Date.parse(from) >= 0, 'from must be 1970-01-01T00:00:00Z or later')
    .optional()
    .openapi({ description: 'list the occurrences after this instant (default: now)', example: '2027-03-12T00:00:00Z' }),
});

/** Said when a preview lists fewer runs than asked. */
export const truncatedNote = () =>
  z.string().optional().openapi({ description: 'present when fewer than `count` runs are listed: the walk took too long (a sparse schedule such as `0 0 29 2 *`; page with `from`) or passed the year 9999' });

/** The 400 of a preview's query. */
export const PREVIEW_QUERY_400 = 'count is not an integer from 1 to 100, or from is not an ISO-8601 instant with a zone designator';

const SchedulePreviewSchema = z
  .strictObject({
    job_name: z.string(),
    cron_expression: z.string(),
    timezone: z.string(),
    is_active: z.boolean(),
    description: cronDescription(),
    paused_note: z.string().optional().openapi({ description: 'present when the schedule is paused: nothing runs until it is active again; `runs` is what it would do' }),
    runs: z.array(PreviewRunSchema).openapi({ description: 'the next occurrences after `from`, as pg-boss fires them (across daylight-saving changes too)' }),
    truncated_note: truncatedNote(),
  })
  .openapi('SchedulePreview');

const ScheduleStateSchema = z
  .strictObject({
    cron_expression: z.string(),
    timezone: z.string(),
    is_active: z.boolean(),
    missed_policy: z.enum(MISSED_POLICIES),
    daily_budget_usd: z.number().nullable().openapi({ description: 'null: no budget (and for changes recorded before budgets existed)' }),
  })
  .openapi('ScheduleState') satisfies z.ZodType<ScheduleState>;

const ScheduleChangeSchema = z
  .strictObject({
    id: rowId(),
    job_name: z.string(),
    before: ScheduleStateSchema.nullable().openapi({
      description: 'null for a `seed` (no row before), and for a `table` change pg-boss held no schedule before (and no earlier change says what was paused)',
    }),
    after: ScheduleStateSchema,
    source: z.enum(SCHEDULE_CHANGE_SOURCES).openapi({ description: '`api`: PUT /api/jobs/schedules/{jobName}; `table`: a direct edit of job_schedule, picked up by the schedule sync (`before` is what pg-boss held); `seed`: the default row, inserted at first start' }),
    actor: z.string().nullable().openapi({ description: 'for `api`: `api_token` (the service runs with API_TOKEN) or `none` (without auth); null otherwise' }),
    changed_at: timestamp(),
  })
  .openapi('ScheduleChange') satisfies z.ZodType<Serialized<JobScheduleChangeRow>>;

const HistoryQuerySchema = PaginationSchema.extend({
  limit: z.coerce
    .number('limit must be a number')
    .int('limit must be an integer')
    .min(1, 'limit must be between 1 and 500')
    .max(500, 'limit must be between 1 and 500')
    .default(50)
    .openapi({ description: 'page size, 1 to 500' }),
});

export const SchedulePatchSchema = z
  .strictObject({
    cron_expression: text().max(200, 'cron_expression is too long').optional().openapi({ example: '*/15 * * * *' }),
    is_active: z.boolean('is_active must be true or false').optional(),
    timezone: text().max(100, 'timezone is too long').optional().openapi({ example: 'UTC' }),
    missed_policy: z.enum(MISSED_POLICIES, `missed_policy must be one of: ${MISSED_POLICIES.join(', ')}`).optional(),
    daily_budget_usd: z
      .number('daily_budget_usd must be a number of USD or null')
      .min(0, 'daily_budget_usd must be 0 or more')
      .max(999_999, 'daily_budget_usd must be at most 999999')
      .nullable()
      .optional()
      .openapi({ description: "most the job's LLM calls may cost per day of the schedule's time zone, USD (8 decimals kept); null removes the budget", example: 0.05 }),
  })
  .refine((patch) => Object.keys(patch).length > 0, 'give at least one of cron_expression, is_active, timezone, missed_policy, daily_budget_usd')
  .openapi('SchedulePatch', { description: 'at least one field; fields left out keep their value' });

const UNKNOWN_JOB = 'unknown job, or no schedule row for it';

export const list = createRoute({
  operationId: 'listSchedules',
  method: 'get',
  path: '/api/jobs/schedules',
  tags,
  summary: 'List every schedule',
  security: BEARER,
  request: { headers: AcceptLanguageHeaderSchema },
  responses: { 200: inLanguage(z.array(ScheduleSchema), 'every job_schedule row, by id'), ...API_ERRORS },
});

export const get = createRoute({
  operationId: 'getSchedule',
  method: 'get',
  path: '/api/jobs/schedules/{jobName}',
  tags,
  summary: "Get one job's schedule",
  security: BEARER,
  request: { params: JobNameParamSchema, headers: AcceptLanguageHeaderSchema },
  responses: { 200: inLanguage(ScheduleSchema, 'the row'), ...errors({ 404: UNKNOWN_JOB }), ...API_ERRORS },
});

export const update = createRoute({
  operationId: 'updateSchedule',
  method: 'put',
  path: '/api/jobs/schedules/{jobName}',
  tags,
  summary: "Edit a job's schedule",
  description:
    'Applied to the table, to pg-boss and to the history (`source: api`) in one transaction; `next_run_at` is recomputed (null when inactive). ' +
    'A patch that changes nothing answers 200 with the row and records nothing. ' +
    `Besides 5 fields, cron_expression may be a macro: ${CRON_MACROS.join(', ')}.`,
  security: BEARER,
  middleware: [jsonContentType],
  request: { params: JobNameParamSchema, headers: AcceptLanguageHeaderSchema, body: { ...json(SchedulePatchSchema, 'the fields to change'), required: true } },
  responses: {
    200: inLanguage(ScheduleSchema, 'the row as it is now'),
    ...errors({
      400: 'invalid patch: unknown field, daily_budget_usd not null or a number from 0 to 999999, bad cron (6-field included, or an `@` word other than the macros), unknown time zone, NUL character, malformed JSON or non-JSON Content-Type',
      404: 'unknown job',
    }),
    ...API_ERRORS,
    ...WRITE_ERRORS,
  },
});

export const preview = createRoute({
  operationId: 'previewSchedule',
  method: 'get',
  path: '/api/jobs/schedules/{jobName}/preview',
  tags,
  summary: "List a job's next runs",
  description: "The saved schedule's next occurrences after `from`, in UTC and in its zone. A paused schedule says so (`paused_note`) and lists what it would do.",
  security: BEARER,
  request: { params: JobNameParamSchema, query: PreviewQuerySchema, headers: AcceptLanguageHeaderSchema },
  responses: {
    200: inLanguage(SchedulePreviewSchema, 'the schedule and its next runs'),
    ...errors({ 400: PREVIEW_QUERY_400, 404: UNKNOWN_JOB, 409: 'the saved row was edited by hand into a cron or zone that cannot run (pg-boss keeps its previous schedule); fix it with PUT' }),
    ...API_ERRORS,
  },
});

export const history = createRoute({
  operationId: 'listScheduleChanges',
  method: 'get',
  path: '/api/jobs/schedules/{jobName}/history',
  tags,
  summary: "List the changes to a job's schedule, newest first",
  description: 'Every change: through the API, by a direct edit of job_schedule (recorded when the schedule sync hands it to pg-boss), and the first seed.',
  security: BEARER,
  request: { params: JobNameParamSchema, query: HistoryQuerySchema },
  responses: { 200: json(z.array(ScheduleChangeSchema), 'a page of changes'), ...errors({ 400: QUERY_400, 404: 'unknown job' }), ...API_ERRORS },
});
