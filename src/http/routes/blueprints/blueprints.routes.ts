import { createRoute, z } from '@hono/zod-openapi';
import type { ExamBlueprintRow } from '../../../db/schema.ts';
import { API_ERRORS, BEARER, errors, json, QUERY_400, WRITE_ERRORS } from '../../lib/contract.ts';
import { IdParamSchema, PaginationSchema, rowId, text, timestamp, type Serialized } from '../../lib/schemas.ts';
import { jsonContentType } from '../../lib/validation.ts';

/** /api/blueprints: exam blueprints extracted by the LLM. */

const tags = ['blueprints'];

const BlueprintSchema = z
  .strictObject({
    id: rowId(),
    harvest_item_id: rowId(),
    exam_name: z.string(),
    organization: z.string().nullable(),
    topics: z.array(z.strictObject({ code: z.string(), name: z.string(), discipline: z.string() })),
    raw_output: z.unknown().openapi({ description: "the model's answer as it came" }),
    model: z.string(),
    drops_generated_at: timestamp().nullable(),
    drops_claimed_by_log_id: z.number().int().nullable(),
    drops_regenerate: z
      .strictObject({ topic_codes: z.array(z.string()).nullable(), bypass_cache: z.boolean(), requested_at: z.string() })
      .nullable()
      .openapi({ description: 'a regenerate-drops request the next generate-drops run carries out; null when none is pending' }),
    prompt_version: z.string().nullable().openapi({ description: 'the version of the extraction prompt it was made with (null: before prompts had versions)' }),
    cost_usd: z.number().nullable().openapi({ description: "what its LLM calls cost in USD, retries and re-asks included; null when the model had no price or it was made before costs were recorded" }),
    created_at: timestamp(),
  })
  .openapi('Blueprint') satisfies z.ZodType<Serialized<ExamBlueprintRow>>;

export const list = createRoute({
  operationId: 'listBlueprints',
  method: 'get',
  path: '/api/blueprints',
  tags,
  summary: 'List blueprints, newest first',
  security: BEARER,
  request: { query: PaginationSchema },
  responses: { 200: json(z.array(BlueprintSchema), 'a page of blueprints'), ...errors({ 400: QUERY_400 }), ...API_ERRORS },
});

export const get = createRoute({
  operationId: 'getBlueprint',
  method: 'get',
  path: '/api/blueprints/{id}',
  tags,
  summary: 'Get one blueprint',
  security: BEARER,
  request: { params: IdParamSchema },
  responses: { 200: json(BlueprintSchema, 'the blueprint'), ...errors({ 400: 'id is not a positive integer', 404: 'no blueprint with that id' }), ...API_ERRORS },
});

const RegenerateDropsSchema = z
  .strictObject({
    topicCodes: z
      .array(text().min(1, 'a topic code must not be empty'))
      .min(1, 'topicCodes must name at least one topic (leave it out for all)')
      .max(1000, 'topicCodes must name at most 1000 topics')
      .optional()
      .openapi({ description: "the topics whose drops are written again (codes from the blueprint's `topics`); all when left out" }),
    bypassCache: z
      .boolean('bypassCache must be true or false')
      .optional()
      .openapi({ description: 'true: ask the model again and replace the topics\' drops and cache entries; false (default): save them again from the cache, filling missing drops, no LLM call' }),
  })
  .openapi('RegenerateDrops');

export const regenerateDrops = createRoute({
  operationId: 'regenerateDrops',
  method: 'post',
  path: '/api/blueprints/{id}/regenerate-drops',
  tags,
  summary: "Have the next generate-drops run write a blueprint's drops again",
  description:
    'The blueprint becomes due for drops again (`drops_generated_at` null, `drops_regenerate` set) and the next generate-drops run carries ' +
    'the request out, for the chosen topics only; other topics keep their drops. With `bypassCache`, each chosen topic\'s old drops stay until ' +
    'its new ones are saved, then are replaced in one transaction. When the run finishes the blueprint, `drops_regenerate` goes back to null. ' +
    'A request still pending is replaced. The body is optional.',
  security: BEARER,
  middleware: [jsonContentType],
  request: { params: IdParamSchema, body: { ...json(RegenerateDropsSchema, 'which topics, and whether to skip the cache'), required: false } },
  responses: {
    202: json(BlueprintSchema, 'the blueprint, with the pending request in `drops_regenerate`'),
    ...errors({
      400: 'id is not a positive integer; topicCodes empty or naming topics the blueprint does not have (named); an unknown field; malformed JSON or non-JSON Content-Type',
      404: 'no blueprint with that id',
      409: 'a generate-drops run is writing its drops now (`drops_claimed_by_log_id` set); nothing was changed',
    }),
    ...API_ERRORS,
    ...WRITE_ERRORS,
  },
});
