import { createRoute, z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { HARVEST_STATUSES, type HarvestItemRow } from '../../../db/schema.ts';
import { API_ERRORS, BEARER, errors, json, QUERY_400, WRITE_ERRORS } from '../../lib/contract.ts';
import { IdParamSchema, PaginationSchema, rowId, text, timestamp, type Serialized } from '../../lib/schemas.ts';
import { defaultHook, jsonContentType, noBody } from '../../lib/validation.ts';
import type { HarvestItemWithBlueprint } from '../../../db/harvest-items.ts';

/** /api/harvest-items: harvested exam notices, the input of extract-blueprints. */

const tags = ['harvest items'];

const harvestItemFields = {
    id: rowId(),
    title: z.string(),
    source_url: z.string().nullable(),
    content: z.string(),
    status: z.enum(HARVEST_STATUSES),
    error_message: z.string().nullable(),
    claimed_by_log_id: z.number().int().nullable().openapi({ description: 'the run (job_logs id) holding the PROCESSING claim' }),
    created_at: timestamp(),
    updated_at: timestamp(),
};

const HarvestItemSchema = z.strictObject(harvestItemFields).openapi('HarvestItem') satisfies z.ZodType<Serialized<HarvestItemRow>>;

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

/** Most items one POST may carry (they go in one statement and one transaction). */
export const MAX_BULK_ITEMS = 1000;

const NewHarvestItemsSchema = z
  .array(NewHarvestItemSchema)
  .min(1, `must hold 1 to ${MAX_BULK_ITEMS} items`)
  .max(MAX_BULK_ITEMS, `must hold 1 to ${MAX_BULK_ITEMS} items`)
  .openapi({ description: `1 to ${MAX_BULK_ITEMS} items, stored all or nothing` });

const CreateBodySchema = z.union([NewHarvestItemSchema, NewHarvestItemsSchema], {
  error: `body must be an item object or an array of 1 to ${MAX_BULK_ITEMS} items`,
});

/**
 * The body is checked here first, against the shape it has: an array is reported by its first bad
 * item, named by index (`items[3].source_url: must be an http(s) URL`), an object as on every route
 * (`source_url: …`). The union the route declares would report either as "not one of the two".
 */
const itemErrors: MiddlewareHandler = async (c, next) => {
  const body: unknown = await c.req.json().catch(() => undefined);
  if (Array.isArray(body)) {
    const result = NewHarvestItemsSchema.safeParse(body);
    if (result.success) return next();
    const itemIssues = result.error.issues.filter((issue) => typeof issue.path[0] === 'number');
    if (itemIssues.length === 0) return c.json({ error: `body: ${result.error.issues[0]!.message}` }, 400);
    const first = Math.min(...itemIssues.map((issue) => issue.path[0] as number));
    const error = itemIssues
      .filter((issue) => issue.path[0] === first)
      .map((issue) => {
        if (issue.code === 'unrecognized_keys') return `items[${first}]: unknown field${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.join(', ')}`;
        return `${[`items[${first}]`, ...issue.path.slice(1)].join('.')}: ${issue.message}`;
      })
      .join('; ');
    return c.json({ error }, 400);
  }
  if (typeof body === 'object' && body !== null) {
    const result = NewHarvestItemSchema.safeParse(body);
    if (!result.success) return defaultHook({ ...result, target: 'json' }, c);
  }
  return next();
};

const CreateQuerySchema = z.object({
  onConflict: z
    .enum(['fail', 'skip'], 'onConflict must be fail or skip')
    .optional()
    .openapi({ description: '`fail` (default): a source_url already stored (or repeated in the array) refuses the request; `skip`: such items are left out and listed in `skipped`' }),
});

const SkippedItemSchema = z.strictObject({
  index: z.number().int().openapi({ description: 'its place in the request (0 for a single item)' }),
  source_url: z.string(),
  existing_id: rowId().openapi({ description: 'the stored item with that URL (for a repeat within the array, the one stored from its first occurrence)' }),
});

const CreatedItemsSchema = z
  .strictObject({ created: z.array(HarvestItemSchema), skipped: z.array(SkippedItemSchema) })
  .openapi('CreatedHarvestItems');

const DuplicateSchema = z
  .strictObject({
    error: z.string(),
    existing_id: rowId().openapi({ description: 'the stored item with that source_url' }),
    index: z.number().int().optional().openapi({ description: 'the refused item\'s place in an array body' }),
  })
  .openapi('DuplicateHarvestItem');

// Its own object, not an extension of HarvestItem: that one is strict (additionalProperties: false) in the document.
const HarvestItemDetailSchema = z
  .strictObject({ ...harvestItemFields, blueprint_id: rowId().nullable().openapi({ description: "its blueprint's id, null while it has none" }) })
  .openapi('HarvestItemDetail') satisfies z.ZodType<Serialized<HarvestItemWithBlueprint>>;

const DeletedSchema = z
  .strictObject({
    deleted: z.strictObject({
      harvest_item_id: rowId(),
      blueprint_id: rowId().nullable().openapi({ description: 'its blueprint, deleted with it (null: it had none)' }),
      drops: z.number().int().openapi({ description: "how many of that blueprint's drops were deleted with it (its drop cache went too)" }),
    }),
  })
  .openapi('DeletedHarvestItem');

const ListQuerySchema = PaginationSchema.extend({
  status: z.enum(HARVEST_STATUSES, `status must be one of ${HARVEST_STATUSES.join(', ')}`).optional(),
  q: text()
    .max(200, 'q must be at most 200 characters')
    .refine((q) => /[\p{L}\p{N}]/u.test(q), 'q must contain a word (a letter or a digit)')
    .optional()
    .openapi({ description: 'words of the title, each as the start of a title word, case-insensitive: `edit trt` finds "Edital TRT 2ª Região"', example: 'edital trt' }),
});

export const create = createRoute({
  operationId: 'createHarvestItem',
  method: 'post',
  path: '/api/harvest-items',
  tags,
  summary: 'Add a harvest item, or up to 1000 at once',
  description:
    'Stored as `PENDING`, for the next extract-blueprints run. An array body is stored all or nothing, in one transaction; ' +
    'a bad item refuses it, naming its index (`items[3].source_url: …`). A `source_url` is stored once: a second item with it ' +
    'is a 409 naming the stored item, unless `?onConflict=skip`. A single object answers the stored row; an array, or a ' +
    'single object with `?onConflict=skip`, answers `{ created, skipped }`.',
  security: BEARER,
  middleware: [jsonContentType, itemErrors],
  request: { query: CreateQuerySchema, body: { ...json(CreateBodySchema, 'the notice, or an array of notices'), required: true } },
  responses: {
    201: json(z.union([HarvestItemSchema, CreatedItemsSchema]), 'the stored row (a single object); `{ created, skipped }` (an array, or `?onConflict=skip`)'),
    ...errors({
      400:
        'invalid item (the first bad one of an array, by index): empty or too long title, empty content, not an http(s) URL, unknown field, NUL character; ' +
        'an empty array or more than 1000 items; a source_url repeated within the array (without `?onConflict=skip`); a bad onConflict; malformed JSON or non-JSON Content-Type',
    }),
    409: json(DuplicateSchema, 'a source_url is already stored (without `?onConflict=skip`); nothing was stored'),
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
  description: '`status` and `q` combine. `q` reads a full-text index of the titles (PostgreSQL\'s `simple` configuration: lowercased, accents and stems kept as written).',
  security: BEARER,
  request: { query: ListQuerySchema },
  responses: { 200: json(z.array(HarvestItemSchema), 'a page of items'), ...errors({ 400: QUERY_400 }), ...API_ERRORS },
});

export const get = createRoute({
  operationId: 'getHarvestItem',
  method: 'get',
  path: '/api/harvest-items/{id}',
  tags,
  summary: 'Get one harvest item, with its blueprint id',
  security: BEARER,
  request: { params: IdParamSchema },
  responses: { 200: json(HarvestItemDetailSchema, 'the item'), ...errors({ 400: 'id is not a positive integer', 404: 'no harvest item with that id' }), ...API_ERRORS },
});

export const remove = createRoute({
  operationId: 'deleteHarvestItem',
  method: 'delete',
  path: '/api/harvest-items/{id}',
  tags,
  summary: 'Delete a harvest item, with its blueprint and drops',
  description:
    "The item's blueprint, that blueprint's drops and its drop cache are derived from the item, so they go with it (a blueprint " +
    'cannot outlive its item); the answer says what went. Refused while a run holds the item or is writing its drops.',
  security: BEARER,
  request: { params: IdParamSchema },
  responses: {
    200: json(DeletedSchema, 'deleted, with what went with it'),
    ...errors({
      400: 'id is not a positive integer',
      404: 'no harvest item with that id',
      409: 'an extract-blueprints run holds the item (PROCESSING), or a generate-drops run is writing its blueprint\'s drops; nothing was deleted',
    }),
    ...API_ERRORS,
    ...WRITE_ERRORS,
  },
});

export const retry = createRoute({
  operationId: 'retryHarvestItem',
  method: 'post',
  path: '/api/harvest-items/{id}/retry',
  tags,
  summary: 'Send a failed harvest item back to PENDING',
  description: 'A `BLUEPRINT_ERROR` item goes back to `PENDING` (error_message cleared) for the next extract-blueprints run. Takes no body (or `{}`).',
  security: BEARER,
  middleware: [noBody],
  request: { params: IdParamSchema },
  responses: {
    200: json(HarvestItemDetailSchema, 'the item, now PENDING'),
    ...errors({ 400: 'id is not a positive integer, or a body other than `{}`', 404: 'no harvest item with that id', 409: 'the item is not BLUEPRINT_ERROR (the message names its status)' }),
    ...API_ERRORS,
    ...WRITE_ERRORS,
  },
});

export const retryFailed = createRoute({
  operationId: 'retryFailedHarvestItems',
  method: 'post',
  path: '/api/harvest-items/retry-failed',
  tags,
  summary: 'Send every failed harvest item back to PENDING',
  description: 'Every `BLUEPRINT_ERROR` item goes back to `PENDING` (error_message cleared), in one statement. Takes no body (or `{}`).',
  security: BEARER,
  middleware: [noBody],
  responses: {
    200: json(z.strictObject({ retried: z.number().int().openapi({ description: 'items moved back to PENDING' }) }).openapi('RetriedHarvestItems'), 'how many went back'),
    ...errors({ 400: 'a body other than `{}`' }),
    ...API_ERRORS,
    ...WRITE_ERRORS,
  },
});
