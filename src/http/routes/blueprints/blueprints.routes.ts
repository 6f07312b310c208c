import { createRoute, z } from '@hono/zod-openapi';
import type { ExamBlueprintRow } from '../../../db/schema.ts';
import { API_ERRORS, BEARER, errors, json, QUERY_400 } from '../../lib/contract.ts';
import { IdParamSchema, PaginationSchema, rowId, timestamp, type Serialized } from '../../lib/schemas.ts';

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
