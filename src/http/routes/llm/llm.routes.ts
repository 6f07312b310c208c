import { createRoute, z } from '@hono/zod-openapi';
import { USAGE_GROUPS, type UsageGroup } from '../../../db/llm-calls.ts';
import { API_ERRORS, BEARER, errors, json } from '../../lib/contract.ts';
import { instant, timestamp } from '../../lib/schemas.ts';

/** /api/llm: what the model cost (the llm_calls ledger) and the prompts' versions. */

const DEFAULT_RANGE_MS = 7 * 24 * 3_600_000;

const GroupBySchema = z
  .string()
  .default('day')
  .transform((value, ctx): UsageGroup[] => {
    const groups = value.split(',').map((g) => g.trim());
    const unknown = groups.filter((g) => !(USAGE_GROUPS as readonly string[]).includes(g));
    if (unknown.length) ctx.addIssue({ code: 'custom', message: `groupBy must be a comma-separated list of ${USAGE_GROUPS.join(', ')} (got ${unknown.map((g) => JSON.stringify(g)).join(', ')})` });
    else if (new Set(groups).size !== groups.length) ctx.addIssue({ code: 'custom', message: 'groupBy names a group twice' });
    // Always in the same order (day, job, model), whatever order the query names them in.
    return USAGE_GROUPS.filter((g) => groups.includes(g));
  })
  .openapi({ type: 'string', example: 'day,job', description: 'comma-separated: day, job, model (default day)' });

const UsageQuerySchema = z
  .object({
    from: instant('from').optional().openapi({ description: 'start, inclusive (default: `to` minus 7 days)', example: '2026-01-01T00:00:00Z' }),
    to: instant('to').optional().openapi({ description: 'end, exclusive (default: now)', example: '2026-01-08T00:00:00Z' }),
    groupBy: GroupBySchema,
  })
  .transform(({ from, to, groupBy }) => {
    const end = to ? new Date(to) : new Date();
    return { from: from ? new Date(from) : new Date(end.getTime() - DEFAULT_RANGE_MS), to: end, groupBy };
  })
  .refine(({ from, to }) => to > from, { message: 'to must be later than from', path: ['to'] });

const count = () => z.number().int().nonnegative();
const UsageRowSchema = z
  .strictObject({
    day: z.string().optional().openapi({ description: 'YYYY-MM-DD: in the job\'s schedule time zone when grouped by job too, UTC otherwise' }),
    job_name: z.string().optional(),
    model: z.string().optional(),
    calls: count().openapi({ description: 'HTTP attempts, retries and re-asks included' }),
    prompt_tokens: count(),
    cached_prompt_tokens: count().openapi({ description: 'part of prompt_tokens served from the provider\'s prompt cache' }),
    completion_tokens: count(),
    cost_usd: z.number().nullable().openapi({ description: 'USD of the priced calls; null when none had a price' }),
    unpriced_calls: count().openapi({ description: 'calls whose model had no price (LLM_PRICES_FILE): their tokens are counted, their cost is not' }),
    cached_share: z.number().min(0).max(1).openapi({ description: 'cached_prompt_tokens / prompt_tokens' }),
  })
  .openapi('LlmUsageRow');

const UsageReportSchema = z
  .strictObject({
    from: timestamp(),
    to: timestamp(),
    group_by: z.array(z.enum(USAGE_GROUPS)),
    rows: z.array(UsageRowSchema),
    total: UsageRowSchema.openapi({ description: 'the whole range, whatever the grouping' }),
  })
  .openapi('LlmUsage');

export const usage = createRoute({
  operationId: 'llmUsage',
  method: 'get',
  path: '/api/llm/usage',
  tags: ['llm'],
  summary: 'What the LLM calls cost, grouped by day, job and/or model',
  description:
    'Sums the ledger (every HTTP attempt to the model, retries and re-asks included) over [from, to), grouped by `groupBy`, ' +
    'any of day, job, model, comma-separated (e.g. `day,job`), rows ordered by their keys, plus a `total` row for the whole range. ' +
    'Days are in the schedule\'s time zone with job, UTC otherwise (a day at the edge of the range can be partial). ' +
    'The range is read through the index on llm_calls.at (llm_calls_at_idx). The ledger is written in batches every ~2 s and when a run ends: a call still in flight is not in it yet.',
  security: BEARER,
  request: { query: UsageQuerySchema },
  responses: { 200: json(UsageReportSchema, 'usage over the range'), ...errors({ 400: 'from, to or groupBy malformed, or to not later than from' }), ...API_ERRORS },
});

const PromptSchema = z
  .strictObject({
    name: z.string().openapi({ description: 'the response format name it is sent with', example: 'exam_blueprint' }),
    job: z.string(),
    version: z.string().openapi({ description: 'first 12 hex of SHA-256 over the system text, the user template and the response JSON schema', example: '171edbd25c9c' }),
    system_chars: count(),
    user_template_chars: count(),
    response_schema_chars: count(),
    made_with_older: z
      .strictObject({ blueprints: count().nullable(), drops: count().nullable(), cache_entries: count().nullable() })
      .openapi({
        description:
          'rows made with another version of this prompt, those made before versions were recorded (null version) included; null where this prompt makes no such rows. ' +
          'Stale drops are remade with POST /api/blueprints/{id}/regenerate-drops and bypassCache: a new prompt does not invalidate the drop cache.',
      }),
  })
  .openapi('Prompt');

export const prompts = createRoute({
  operationId: 'listPrompts',
  method: 'get',
  path: '/api/llm/prompts',
  tags: ['llm'],
  summary: 'The prompts\' current versions, and how many stored rows were made with older ones',
  security: BEARER,
  responses: { 200: json(z.array(PromptSchema), 'the prompts the jobs send today'), ...API_ERRORS },
});
