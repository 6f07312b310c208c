import { createRoute, z } from '@hono/zod-openapi';
import { CRON_MACROS } from '../../../boss/cron.ts';
import { API_ERRORS, BEARER, errors } from '../../lib/contract.ts';
import { AcceptLanguageHeaderSchema } from '../../lib/language.ts';
import { text } from '../../lib/schemas.ts';
import { cronDescription, inLanguage, PREVIEW_QUERY_400, PreviewQuerySchema, PreviewRunSchema, truncatedNote } from '../schedules/schedules.routes.ts';

/** Cron arithmetic on an expression not saved anywhere: try one before a PUT. */

const tags = ['schedules'];

const CronPreviewQuerySchema = PreviewQuerySchema.extend({
  cron_expression: text('cron_expression is required: 5 fields or a macro such as @daily')
    .max(200, 'cron_expression is too long')
    .openapi({ description: `5 fields (minute hour day-of-month month day-of-week) or a macro: ${CRON_MACROS.join(', ')}`, example: '30 2 * * *' }),
  timezone: text().max(100, 'timezone is too long').optional().openapi({ description: "IANA time zone (default: the service's SCHEDULER_TIMEZONE)", example: 'America/New_York' }),
});

const CronPreviewSchema = z
  .strictObject({
    cron_expression: z.string(),
    timezone: z.string(),
    description: cronDescription(),
    runs: z.array(PreviewRunSchema).openapi({ description: 'the next occurrences after `from`, as pg-boss would fire them (across daylight-saving changes too)' }),
    truncated_note: truncatedNote(),
  })
  .openapi('CronPreview');

export const preview = createRoute({
  operationId: 'previewCron',
  method: 'get',
  path: '/api/cron/preview',
  tags,
  summary: 'List the next runs of a cron expression',
  description: 'What a schedule with this cron and zone would run, without saving anything. Refused with the same messages as PUT /api/jobs/schedules/{jobName}.',
  security: BEARER,
  request: { query: CronPreviewQuerySchema, headers: AcceptLanguageHeaderSchema },
  responses: {
    200: inLanguage(CronPreviewSchema, 'the expression and its next runs'),
    ...errors({ 400: `cron_expression missing or invalid (6 fields, an unknown \`@\` word…), an unknown time zone, or ${PREVIEW_QUERY_400}` }),
    ...API_ERRORS,
  },
});
