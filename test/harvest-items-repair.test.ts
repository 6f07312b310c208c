import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, expectError, postJson, type Json } from './support/http.ts';
import { startTestService, type TestService } from './support/service.ts';

/**
 * Repairing pipeline data over HTTP, without SQL: one item with its blueprint id, deleting one (with
 * what was derived from it), bulk inserts, duplicate URLs, and sending failed items back. The service
 * runs as ROLE=api, so no run or reaper touches the rows the tests set up.
 */

let t: TestService;
beforeAll(async () => {
  t = await startTestService({ ROLE: 'api' });
});
afterAll(() => t?.stop());

const query = async (text: string, values: unknown[] = []) => (await t.service.database.pool.query(text, values)).rows;
const count = async (table: string) => (await query(`select count(*)::int as n from ${table}`))[0].n as number;
/** Every row of the pipeline tables, to compare before and after a refused request. */
const snapshot = async () => ({
  items: await query('select * from harvest_items order by id'),
  blueprints: await query('select * from exam_blueprints order by id'),
  drops: await query('select * from drops order by id'),
  cache: await query('select * from drop_cache order by id'),
});
let seq = 0;
const url = () => `https://example.com/edital-${++seq}-${Math.random().toString(36).slice(2)}.pdf`;
const item = (source_url: string | null = url()) => ({ title: `Edital ${++seq}`, content: 'Conteúdo programático: crase', source_url });

async function createItem(body = item()): Promise<Json> {
  const res = await postJson(t, '/api/harvest-items', body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

/** A blueprint for the item, with `dropCount` drops of topic A and a cache entry. */
async function addBlueprint(itemId: number, dropCount: number): Promise<number> {
  const [bp] = await query(
    `insert into exam_blueprints (harvest_item_id, exam_name, topics, raw_output, model, drops_generated_at)
     values ($1, 'Exam', '[{"code":"A","name":"Topic A","discipline":"D"}]', '{}', 'gpt-test', now()) returning id`,
    [itemId],
  );
  for (let i = 1; i <= dropCount; i++) await query(`insert into drops (blueprint_id, topic_code, title, content, position) values ($1, 'A', 't', 'c', $2)`, [bp.id, i]);
  await query(`insert into drop_cache (blueprint_id, hash, payload) values ($1, 'h', '{}')`, [bp.id]);
  await query(`update harvest_items set status = 'BLUEPRINT_DONE' where id = $1`, [itemId]);
  return bp.id;
}

describe('GET /api/harvest-items/{id}', () => {
  it('answers the item with its blueprint id (null until it has one); 404 unknown, 400 bad id', async () => {
    const created = await createItem();
    const before = await call(t, `/api/harvest-items/${created.id}`);
    expect(before.status).toBe(200);
    expect(before.body).toEqual({ ...created, blueprint_id: null });

    const blueprintId = await addBlueprint(created.id, 1);
    const after = await call(t, `/api/harvest-items/${created.id}`);
    expect(after.body).toMatchObject({ id: created.id, status: 'BLUEPRINT_DONE', blueprint_id: blueprintId, error_message: null });

    expectError(await call(t, '/api/harvest-items/99999999'), 404, /^no harvest item with id 99999999$/);
    expectError(await call(t, '/api/harvest-items/abc'), 400, /id must be a number/);
    expectError(await call(t, '/api/harvest-items/0'), 400, /id must be positive/);
  });
});

describe('DELETE /api/harvest-items/{id}', () => {
  it('deletes the item with its blueprint, drops and drop cache, and says what went', async () => {
    const keep = await createItem();
    const keepBlueprint = await addBlueprint(keep.id, 2);
    const gone = await createItem();
    const blueprintId = await addBlueprint(gone.id, 3);

    const res = await call(t, `/api/harvest-items/${gone.id}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ deleted: { harvest_item_id: gone.id, blueprint_id: blueprintId, drops: 3 } });
    expect(await query('select 1 from harvest_items where id = $1', [gone.id])).toHaveLength(0);
    expect(await query('select 1 from exam_blueprints where id = $1', [blueprintId])).toHaveLength(0);
    expect(await query('select 1 from drops where blueprint_id = $1', [blueprintId])).toHaveLength(0);
    expect(await query('select 1 from drop_cache where blueprint_id = $1', [blueprintId])).toHaveLength(0);
    // The other item and what hangs from it are untouched.
    expect(await query('select 1 from drops where blueprint_id = $1', [keepBlueprint])).toHaveLength(2);
    expectError(await call(t, `/api/harvest-items/${gone.id}`), 404, /no harvest item/);
    expectError(await call(t, `/api/harvest-items/${gone.id}`, { method: 'DELETE' }), 404, new RegExp(`^no harvest item with id ${gone.id}$`));

    // Its URL is free again.
    await createItem(item(gone.source_url));

    const plain = await createItem();
    const res2 = await call(t, `/api/harvest-items/${plain.id}`, { method: 'DELETE' });
    expect(res2.body).toEqual({ deleted: { harvest_item_id: plain.id, blueprint_id: null, drops: 0 } });
  });

  it('409 while a run holds the item or writes its drops, 400 for a bad id; nothing deleted', async () => {
    const held = await createItem();
    await query(`update harvest_items set status = 'PROCESSING', claimed_by_log_id = 4242 where id = $1`, [held.id]);
    const writing = await createItem();
    const blueprintId = await addBlueprint(writing.id, 2);
    await query('update exam_blueprints set drops_claimed_by_log_id = 4343 where id = $1', [blueprintId]);
    const before = await snapshot();

    expectError(await call(t, `/api/harvest-items/${held.id}`, { method: 'DELETE' }), 409, new RegExp(`harvest item ${held.id} is PROCESSING: an extract-blueprints run \\(log 4242\\) holds it`));
    expectError(await call(t, `/api/harvest-items/${writing.id}`, { method: 'DELETE' }), 409, new RegExp(`generate-drops run \\(log 4343\\) is writing the drops of its blueprint ${blueprintId}`));
    expectError(await call(t, '/api/harvest-items/-1', { method: 'DELETE' }), 400, /id/);
    expect(await snapshot()).toEqual(before);
  });
});

describe('POST /api/harvest-items: bulk and duplicates', () => {
  it('stores 1,000 items from one request, in order', async () => {
    const before = await count('harvest_items');
    const items = Array.from({ length: 1000 }, (_, i) => ({ title: `Edital bulk ${i}`, content: `c${i}`, source_url: i % 10 === 0 ? null : `https://bulk.example.com/${i}` }));
    const res = await postJson(t, '/api/harvest-items', items);
    expect(res.status).toBe(201);
    expect(res.body.skipped).toEqual([]);
    expect(res.body.created).toHaveLength(1000);
    expect(res.body.created.map((row: Json) => row.title)).toEqual(items.map((i) => i.title));
    expect(res.body.created.every((row: Json) => row.status === 'PENDING')).toBe(true);
    expect(await count('harvest_items')).toBe(before + 1000);
  });

  it('refuses a bad array naming the first bad item, an empty one and one over 1,000; nothing stored', async () => {
    const before = await snapshot();
    const good = () => item();
    const cases: Array<[unknown, RegExp]> = [
      [[good(), good(), good(), { ...good(), source_url: 'ftp://x/y' }, { ...good(), title: '' }], /^items\[3\]\.source_url: must be an http\(s\) URL$/],
      [[good(), { ...good(), title: '' }], /^items\[1\]\.title: title must not be empty$/],
      [[good(), { ...good(), status: 'BLUEPRINT_DONE' }], /^items\[1\]: unknown field: status$/],
      [[], /must hold 1 to 1000 items/],
      [Array.from({ length: 1001 }, (_, i) => ({ title: `t${i}`, content: 'c' })), /must hold 1 to 1000 items/],
      [42, /body must be an item object or an array/],
      // A single object is reported as before the array form existed.
      [{ ...good(), source_url: 'ftp://x/y' }, /^source_url: must be an http\(s\) URL$/],
      [{ ...good(), status: 'PENDING' }, /^unknown field: status$/],
      [{ content: 'c' }, /^title: /],
      [{ title: 42, content: 'c' }, /^title: /],
      [{ title: 'T' }, /^content: /],
    ];
    for (const [body, error] of cases) {
      const res = await postJson(t, '/api/harvest-items', body);
      expectError(res, 400, error);
      expect(Object.keys(res.body)).toEqual(['error']);
    }
    expectError(await postJson(t, '/api/harvest-items?onConflict=maybe', good()), 400, /onConflict must be fail or skip/);
    expect(await snapshot()).toEqual(before);
  });

  it('a source_url already stored is a 409 naming it and the stored id (single and bulk); nothing stored', async () => {
    const stored = await createItem();
    const before = await snapshot();

    const single = await postJson(t, '/api/harvest-items', item(stored.source_url));
    expectError(single, 409, new RegExp(`^source_url: ${stored.source_url.replace(/[.]/g, '\\.')} is already stored as harvest item ${stored.id}$`));
    expect(single.body).toEqual({ error: single.body.error, existing_id: stored.id });

    const bulk = await postJson(t, '/api/harvest-items', [item(), item(), item(stored.source_url), item()]);
    expectError(bulk, 409, new RegExp(`^items\\[2\\]\\.source_url: .* is already stored as harvest item ${stored.id}$`));
    expect(bulk.body).toMatchObject({ existing_id: stored.id, index: 2 });

    const repeated = url();
    expectError(await postJson(t, '/api/harvest-items', [item(repeated), item(), item(repeated)]), 400, /^items\[2\]\.source_url: .* repeats items\[0\]; send it once, or use \?onConflict=skip$/);
    expect(await snapshot()).toEqual(before);
  });

  it('?onConflict=skip leaves duplicates out (against the table and within the array) and lists them', async () => {
    const stored = await createItem();
    const repeated = url();
    const body = [item(), item(stored.source_url), item(repeated), item(null), item(repeated), item(null)];
    const before = await count('harvest_items');
    const res = await postJson(t, '/api/harvest-items?onConflict=skip', body);
    expect(res.status).toBe(201);
    expect(res.body.created.map((row: Json) => row.title)).toEqual([body[0]!.title, body[2]!.title, body[3]!.title, body[5]!.title]);
    const repeatedId = res.body.created[1].id;
    expect(res.body.skipped).toEqual([
      { index: 1, source_url: stored.source_url, existing_id: stored.id },
      { index: 4, source_url: repeated, existing_id: repeatedId },
    ]);
    expect(await count('harvest_items')).toBe(before + 4);

    // A single object with skip answers like an array of one.
    const single = await postJson(t, '/api/harvest-items?onConflict=skip', item(stored.source_url));
    expect(single.status).toBe(201);
    expect(single.body).toEqual({ created: [], skipped: [{ index: 0, source_url: stored.source_url, existing_id: stored.id }] });
    const fresh = await postJson(t, '/api/harvest-items?onConflict=skip', item());
    expect(fresh.body.created).toHaveLength(1);
    expect(await count('harvest_items')).toBe(before + 5);
  });

  it('of two concurrent inserts of one URL exactly one wins, the other is a 409 naming it', async () => {
    for (let round = 0; round < 5; round++) {
      const same = url();
      const results = await Promise.all([postJson(t, '/api/harvest-items', item(same)), postJson(t, '/api/harvest-items', [item(same)])]);
      const statuses = results.map((r) => r.status).sort();
      expect(statuses).toEqual([201, 409]);
      const winner = results.find((r) => r.status === 201)!.body;
      const winnerId = Array.isArray(winner.created) ? winner.created[0].id : winner.id;
      expect(results.find((r) => r.status === 409)!.body.existing_id).toBe(winnerId);
      expect(await query('select id from harvest_items where source_url = $1', [same])).toEqual([{ id: winnerId }]);
    }
  });
});

describe('sending failed items back', () => {
  async function failedItem(): Promise<Json> {
    const created = await createItem();
    await query(`update harvest_items set status = 'BLUEPRINT_ERROR', error_message = 'the model refused' where id = $1`, [created.id]);
    return created;
  }

  it('POST /{id}/retry: a BLUEPRINT_ERROR item back to PENDING, error cleared; 409 for another status; 404; 400', async () => {
    const failed = await failedItem();
    const res = await call(t, `/api/harvest-items/${failed.id}/retry`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: failed.id, status: 'PENDING', error_message: null, blueprint_id: null });
    expect(await query('select status, error_message from harvest_items where id = $1', [failed.id])).toEqual([{ status: 'PENDING', error_message: null }]);

    const before = await snapshot();
    expectError(await call(t, `/api/harvest-items/${failed.id}/retry`, { method: 'POST' }), 409, new RegExp(`^harvest item ${failed.id} is PENDING: only a BLUEPRINT_ERROR item can be retried$`));
    expectError(await call(t, '/api/harvest-items/99999999/retry', { method: 'POST' }), 404, /no harvest item with id 99999999/);
    expectError(await postJson(t, `/api/harvest-items/${failed.id}/retry`, { force: true }), 400, /takes no body/);
    expect(await snapshot()).toEqual(before);
  });

  it('POST /retry-failed: every BLUEPRINT_ERROR item back to PENDING, counted', async () => {
    await query(`update harvest_items set status = 'BLUEPRINT_DONE' where status = 'BLUEPRINT_ERROR'`);
    const failed = [await failedItem(), await failedItem(), await failedItem()];
    const other = await createItem();
    const res = await call(t, '/api/harvest-items/retry-failed', { method: 'POST' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ retried: 3 });
    const rows = await query('select id, status, error_message from harvest_items where id = any($1) order by id', [failed.map((f) => f.id)]);
    expect(rows).toEqual(failed.map((f) => ({ id: f.id, status: 'PENDING', error_message: null })));
    expect((await call(t, `/api/harvest-items/${other.id}`)).body.status).toBe('PENDING');

    expect((await call(t, '/api/harvest-items/retry-failed', { method: 'POST' })).body).toEqual({ retried: 0 });
    const before = await snapshot();
    expectError(await postJson(t, '/api/harvest-items/retry-failed', { all: true }), 400, /takes no body/);
    expect(await snapshot()).toEqual(before);
  });
});
