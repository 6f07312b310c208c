import { createRoute, z } from '@hono/zod-openapi';
import { HARVEST_STATUSES, type HarvestItemRow } from '../../../db/schema.ts';
import { API_ERRORS, BEARER, errors, json, QUERY_400, WRITE_ERRORS } from '../../lib/contract.ts';
import { PaginationSchema, rowId, text, timestamp, type Serialized } from '../../lib/schemas.ts';
import { jsonContentType } from '../../lib/validation.ts';

/** /api/harvest-items: harvested exam notices, the input of extract-blueprints. */

const tags = ['harvest items'];

const HarvestItemSchema = z
  .strictObject({
    id: rowId(),
    title: z.string(),
    source_url: z.string().nullable(),
    content: z.string(),
    status: z.enum(HARVEST_STATUSES),
    error_message: z.string().nullable(),
    claimed_by_log_id: z.number().int().nullable().openapi({ description: 'the run (job_logs id) holding the PROCESSING claim' }),
    created_at: timestamp(),
    updated_at: timestamp(),
  })
  .openapi('HarvestItem') satisfies z.ZodType<Serialized<HarvestItemRow>>;

const NewHarvestItemSchema = z
  .strictObject({
    title: text().trim().min(1, 'title must not be empty').max(500, 'title is longer than 500 characters'),
    content: text().trim().min(1, 'content must not be empty'),
    // One check for the scheme, so a bad URL gets one message (the path already names the field).
    source_url: z
      .url({ protocol: /^https?$/i, error: 'must be an http(s) URL' })
      .max(2000, 'must be at most 2000 characters')
      // The URL parser lets a NUL through (it would be percent-encoded), but we store the text as given.
      .refine((u) => !u.includes('\u0000'), 'must not contain NUL (\\u0000) characters')
      .nullish(),
  })
  .openapi('NewHarvestItem');

const ListQuerySchema = PaginationSchema.extend({
  status: z.enum(HARVEST_STATUSES, `status must be one of ${HARVEST_STATUSES.join(', ')}`).optional(),
});

export const create = createRoute({
  operationId: 'createHarvestItem',
  method: 'post',
  path: '/api/harvest-items',
  tags,
  summary: 'Add a harvest item',
  description: 'Stored as `PENDING`, for the next extract-blueprints run.',
  security: BEARER,
  middleware: [jsonContentType],
  request: { body: { ...json(NewHarvestItemSchema, 'the notice'), required: true } },
  responses: {
    201: json(HarvestItemSchema, 'the stored row'),
    ...errors({ 400: 'invalid item: empty or too long title, empty content, not an http(s) URL, unknown field, NUL character, malformed JSON or non-JSON Content-Type' }),
    ...API_ERRORS,
    ...WRITE_ERRORS,
  },
});

export const list = createRoute({
  operationId: 'listHarvestItems',
  method: 'get',
  path: '/api/harvest-items',
  tags,
  summary: 'List harvest items, newest first',
  security: BEARER,
  request: { query: ListQuerySchema },
  responses: { 200: json(z.array(HarvestItemSchema), 'a page of items'), ...errors({ 400: QUERY_400 }), ...API_ERRORS },
});
