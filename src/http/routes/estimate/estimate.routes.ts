import { createRoute, z } from '@hono/zod-openapi';
import { API_ERRORS, BEARER, errors, json } from '../../lib/contract.ts';
import { JobNameParamSchema } from '../../lib/schemas.ts';

/** /api/jobs/{jobName}/estimate: what a run would cost, before it runs. */

const tags = ['runs'];

const EstimateQuerySchema = z.object({
  all: z
    .enum(['true', 'false'], 'all must be true or false')
    .optional()
    .openapi({ description: 'true: the whole backlog; false (default): what the next run would claim (its batch size)' }),
});

const EstimateSchema = z
  .strictObject({
    job_name: z.string(),
    model: z.string().openapi({ description: 'OPENAI_MODEL, whose tokenizer and price are used' }),
    items: z.number().int().openapi({ description: 'harvest items (extract-blueprints) or topics, cache hits included (generate-drops)' }),
    llm_calls: z.number().int().openapi({ description: 'one per item not served from the drop cache; retries and re-asks not included' }),
    cache_hits: z.number().int().openapi({ description: 'generate-drops topics whose drop_cache entry exists (and no bypassCache request): no call' }),
    prompt_tokens: z.number().int(),
    completion_tokens: z.number().int(),
    cost_usd: z.number().nullable().openapi({ description: 'null when the model has no price (basis.cost says so)' }),
    basis: z
      .strictObject({
        scope: z.string().openapi({ description: 'next run (and its batch size) or the whole backlog' }),
        prompt_tokens: z.string().openapi({ description: 'the encoding and counting rule; whether a large backlog was sampled' }),
        completion_tokens: z.string().openapi({ description: 'mean per call of recent runs, or the default when none called the model' }),
        cost: z.string().openapi({ description: 'where the prices come from, or why cost_usd is null' }),
      })
      .openapi({ description: 'how each figure was reached, for a human' }),
  })
  .openapi('Estimate');

export const estimate = createRoute({
  operationId: 'estimateJob',
  method: 'get',
  path: '/api/jobs/{jobName}/estimate',
  tags,
  summary: 'Estimate the tokens and cost of the next run, or of the whole backlog, without calling the model',
  description:
    'Prompt tokens are counted with the model\'s tokenizer over the exact messages and response schema the run would send; completion tokens ' +
    'come from the mean per call of the job\'s last 20 runs that called the model (among its last 10,000 runs), or a stated default. Backlogs whose user messages exceed ' +
    '2 M characters are counted on an even sample of 500 calls and scaled by characters (`basis.prompt_tokens` says so). Nothing is claimed or changed.',
  security: BEARER,
  request: { params: JobNameParamSchema, query: EstimateQuerySchema },
  responses: {
    200: json(EstimateSchema, 'the estimate and its basis'),
    ...errors({ 400: 'all is not true or false', 404: 'no such job, or a job that makes no LLM calls' }),
    ...API_ERRORS,
  },
});
