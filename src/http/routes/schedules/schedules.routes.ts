import { createRoute, z } from '@hono/zod-openapi';
import { type JobScheduleRow, MISSED_POLICIES } from '../../../db/schema.ts';
import { API_ERRORS, BEARER, errors, json, WRITE_ERRORS } from '../../lib/contract.ts';
import { JobNameParamSchema, rowId, text, timestamp, type Serialized } from '../../lib/schemas.ts';
import { jsonContentType } from '../../lib/validation.ts';

const tags = ['schedules'];

export const ScheduleSchema = z
  .strictObject({
    id: rowId(),
    job_name: z.string(),
    cron_expression: z.string().openapi({ description: '5 fields: minute hour day-of-month month day-of-week', example: '0 */6 * * *' }),
    timezone: z.string().openapi({ description: 'IANA time zone the cron is read in', example: 'America/Sao_Paulo' }),
    is_active: z.boolean(),
    missed_policy: z.enum(MISSED_POLICIES).openapi({ description: 'occurrences missed while no instance ran: `skip` them, or run `once` for the latest' }),
    last_run_at: timestamp().nullable(),
    next_run_at: timestamp().nullable().openapi({ description: 'null when inactive' }),
    created_at: timestamp(),
    updated_at: timestamp(),
  })
  .openapi('Schedule') satisfies z.ZodType<Serialized<JobScheduleRow>>;

export const SchedulePatchSchema = z
  .strictObject({
    cron_expression: text().max(200, 'cron_expression is too long').optional().openapi({ example: '*/15 * * * *' }),
    is_active: z.boolean('is_active must be true or false').optional(),
    timezone: text().max(100, 'timezone is too long').optional().openapi({ example: 'UTC' }),
    missed_policy: z.enum(MISSED_POLICIES, `missed_policy must be one of: ${MISSED_POLICIES.join(', ')}`).optional(),
  })
  .refine((patch) => Object.keys(patch).length > 0, 'give at least one of cron_expression, is_active, timezone, missed_policy')
  .openapi('SchedulePatch', { description: 'at least one field; fields left out keep their value' });

const UNKNOWN_JOB = 'unknown job, or no schedule row for it';

export const list = createRoute({
  operationId: 'listSchedules',
  method: 'get',
  path: '/api/jobs/schedules',
  tags,
  summary: 'List every schedule',
  security: BEARER,
  responses: { 200: json(z.array(ScheduleSchema), 'every job_schedule row, by id'), ...API_ERRORS },
});

export const get = createRoute({
  operationId: 'getSchedule',
  method: 'get',
  path: '/api/jobs/schedules/{jobName}',
  tags,
  summary: "Get one job's schedule",
  security: BEARER,
  request: { params: JobNameParamSchema },
  responses: { 200: json(ScheduleSchema, 'the row'), ...errors({ 404: UNKNOWN_JOB }), ...API_ERRORS },
});

export const update = createRoute({
  operationId: 'updateSchedule',
  method: 'put',
  path: '/api/jobs/schedules/{jobName}',
  tags,
  summary: "Edit a job's schedule",
  description: 'Applied to the table and to pg-boss in one transaction; `next_run_at` is recomputed (null when inactive).',
  security: BEARER,
  middleware: [jsonContentType],
  request: { params: JobNameParamSchema, body: { ...json(SchedulePatchSchema, 'the fields to change'), required: true } },
  responses: {
    200: json(ScheduleSchema, 'the row as it is now'),
    ...errors({
      400: 'invalid patch: unknown field, bad cron (6-field included), unknown time zone, NUL character, malformed JSON or non-JSON Content-Type',
      404: 'unknown job',
    }),
    ...API_ERRORS,
    ...WRITE_ERRORS,
  },
});
