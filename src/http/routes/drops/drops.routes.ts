import { createRoute, z } from '@hono/zod-openapi';
import type { DropRow } from '../../../db/schema.ts';
import { API_ERRORS, BEARER, errors, json, QUERY_400 } from '../../lib/contract.ts';
import { IdParamSchema, PaginationSchema, rowId, text, timestamp, type Serialized } from '../../lib/schemas.ts';

/** /api/drops: drops (short lessons), in reading order: blueprint, topic, position. */

const DropSchema = z
  .strictObject({
    id: rowId(),
    blueprint_id: rowId(),
    topic_code: z.string(),
    title: z.string(),
    content: z.string(),
    position: z.number().int(),
    model: z.string().nullable().openapi({ description: 'the model that wrote it (null: made before this was recorded)' }),
    prompt_version: z.string().nullable().openapi({ description: 'the version of the drops prompt it was made with' }),
    cost_usd: z.number().nullable().openapi({ description: "its share of its topic's LLM calls in USD; 0 when it came from the cache; null when the model had no price" }),
    created_at: timestamp(),
  })
  .openapi('Drop') satisfies z.ZodType<Serialized<DropRow>>;

const ListQuerySchema = PaginationSchema.extend({
  blueprintId: IdParamSchema.shape.id.optional().openapi({ description: 'only this blueprint\'s drops' }),
  topicCode: text().max(200).optional().openapi({ description: 'only this topic\'s drops' }),
});

export const list = createRoute({
  operationId: 'listDrops',
  method: 'get',
  path: '/api/drops',
  tags: ['drops'],
  summary: 'List drops in reading order',
  security: BEARER,
  request: { query: ListQuerySchema },
  responses: { 200: json(z.array(DropSchema), 'a page of drops'), ...errors({ 400: QUERY_400 }), ...API_ERRORS },
});
