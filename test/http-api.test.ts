import { Agent } from 'node:http';
import { asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drops, examBlueprints, harvestItems, jobSchedule } from '../src/db/schema.ts';
import { asJson, call, expectError, ISO, JOBS, postJson, type Json } from './support/http.ts';
import { rawRequest, repeat } from './support/raw-http.ts';
import { startTestService, type TestService } from './support/service.ts';

const MAX_BODY = 1024 * 1024;

async function count(t: TestService, table: string): Promise<number> {
  const { rows } = await t.service.database.pool.query(`select count(*)::int as n from ${table}`);
  return rows[0].n;
}

describe('harvest items, blueprints and drops', () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService();
    // Items must stay as inserted: no run may pick them up, even if a cron fires meanwhile.
    for (const job of JOBS) await t.service.boss.offWork(job);
  });
  afterAll(() => t?.stop());

  it('POST /api/harvest-items creates a PENDING item and returns the row', async () => {
    const res = await postJson(t, '/api/harvest-items', { title: '  Edital PF 2025  ', content: 'Conteúdo programático', source_url: 'https://example.com/edital.pdf' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ title: 'Edital PF 2025', content: 'Conteúdo programático', source_url: 'https://example.com/edital.pdf', status: 'PENDING', error_message: null });
    expect(res.body.id).toEqual(expect.any(Number));
    expect(res.body.created_at).toMatch(ISO);
    expect(res.body.updated_at).toMatch(ISO);
    const [row] = await t.service.database.db.select().from(harvestItems).where(eq(harvestItems.id, res.body.id));
    expect(res.body).toEqual(asJson(row));

    const noUrl = await postJson(t, '/api/harvest-items', { title: 'Sem URL', content: 'x' });
    expect(noUrl.status).toBe(201);
    expect(noUrl.body.source_url).toBeNull();
    const nullUrl = await postJson(t, '/api/harvest-items', { title: 'URL nula', content: 'x', source_url: null });
    expect(nullUrl.status).toBe(201);
    expect(nullUrl.body.source_url).toBeNull();
  });

  it('POST /api/harvest-items refuses bad input and stores nothing', async () => {
    const before = await count(t, 'harvest_items');
    const cases: Array<[unknown, RegExp, Record<string, string>?]> = [
      [{ title: 'T', content: '' }, /content must not be empty/],
      [{ title: 'T', content: '   ' }, /content must not be empty/],
      [{ title: '', content: 'c' }, /title must not be empty/],
      [{ content: 'c' }, /title/],
      [{ title: 'T' }, /content/],
      [{ title: 'T', content: 'c', status: 'BLUEPRINT_DONE' }, /unknown field.*status/],
      [{ title: 'T', content: 'c', source_url: 'not a url' }, /^source_url: must be an http\(s\) URL$/],
      [{ title: 'T', content: 'c', source_url: 'javascript:alert(1)' }, /^source_url: must be an http\(s\) URL$/],
      [{ title: 'T', content: 'c', source_url: 'ftp://example.com/x' }, /^source_url: must be an http\(s\) URL$/],
      [{ title: 'T', content: 'c', source_url: '' }, /source_url/],
      [{ title: 'x'.repeat(501), content: 'c' }, /title is longer than 500/],
      [{ title: 'T', content: 'a\u0000b' }, /NUL/],
      [{ title: 42, content: 'c' }, /title/],
      ['{"title": "T", "content": ', /JSON/i],
      ['title=T&content=c', /Content-Type must be application\/json/, { 'content-type': 'application/x-www-form-urlencoded' }],
    ];
    for (const [body, error, headers] of cases) {
      const res = await call(t, '/api/harvest-items', {
        method: 'POST',
        headers: headers ?? { 'content-type': 'application/json' },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      expectError(res, 400, error);
      expect(Object.keys(res.body)).toEqual(['error']);
    }
    expect(await count(t, 'harvest_items')).toBe(before);
  });

  it('GET /api/harvest-items lists newest first, filters by status, pages, and refuses a bad status', async () => {
    const db = t.service.database.db;
    await db.delete(harvestItems);
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) ids.push((await postJson(t, '/api/harvest-items', { title: `Item ${i}`, content: `c${i}` })).body.id);
    await db.update(harvestItems).set({ status: 'BLUEPRINT_DONE' }).where(eq(harvestItems.id, ids[1]!));
    await db.update(harvestItems).set({ status: 'BLUEPRINT_ERROR', error_message: 'bad' }).where(eq(harvestItems.id, ids[3]!));

    const all = await call(t, '/api/harvest-items');
    expect(all.status).toBe(200);
    expect(all.body.map((r: Json) => r.id)).toEqual([...ids].reverse());
    expect((await call(t, '/api/harvest-items?status=PENDING')).body.map((r: Json) => r.id)).toEqual([ids[4], ids[2], ids[0]]);
    expect((await call(t, '/api/harvest-items?status=BLUEPRINT_DONE')).body.map((r: Json) => [r.id, r.status])).toEqual([[ids[1], 'BLUEPRINT_DONE']]);
    expect((await call(t, '/api/harvest-items?status=BLUEPRINT_ERROR')).body.map((r: Json) => [r.id, r.error_message])).toEqual([[ids[3], 'bad']]);
    expect((await call(t, '/api/harvest-items?status=PROCESSING')).body).toEqual([]);
    expect((await call(t, '/api/harvest-items?limit=2&offset=1')).body.map((r: Json) => r.id)).toEqual([ids[3], ids[2]]);
    expect((await call(t, '/api/harvest-items?status=PENDING&limit=1&offset=1')).body.map((r: Json) => r.id)).toEqual([ids[2]]);

    expectError(await call(t, '/api/harvest-items?status=pending'), 400, /status must be one of PENDING, PROCESSING, BLUEPRINT_DONE, BLUEPRINT_ERROR/);
    expectError(await call(t, '/api/harvest-items?status=DONE'), 400, /status/);
    expectError(await call(t, '/api/harvest-items?limit=0'), 400, /limit/);
    expectError(await call(t, '/api/harvest-items?offset=-1'), 400, /offset/);
  });

  describe('blueprints and drops', () => {
    let bp: Array<{ id: number }>;
    beforeAll(async () => {
      const db = t.service.database.db;
      const items = await db
        .insert(harvestItems)
        .values([1, 2, 3].map((i) => ({ title: `Edital ${i}`, content: `c${i}`, status: 'BLUEPRINT_DONE' as const })))
        .returning();
      bp = await db
        .insert(examBlueprints)
        .values(
          items.map((item, i) => ({
            harvest_item_id: item.id,
            exam_name: `Exam ${i}`,
            organization: i === 0 ? null : `Org ${i}`,
            topics: [{ code: 'A', name: 'Topic A', discipline: 'D' }, { code: 'B', name: 'Topic B', discipline: 'D' }],
            raw_output: { i },
            model: 'gpt-test',
          })),
        )
        .returning();
      // Inserted out of reading order on purpose.
      const rows = [
        [1, 'B', 2], [0, 'B', 1], [1, 'A', 1], [0, 'A', 2], [0, 'A', 1], [1, 'B', 1], [0, 'B', 2], [1, 'A', 2], [2, 'A', 1],
      ] as const;
      await db.insert(drops).values(rows.map(([b, topic, position]) => ({ blueprint_id: bp[b]!.id, topic_code: topic, position, title: `${b}${topic}${position}`, content: 'text' })));
    });

    it('GET /api/blueprints lists newest first and pages', async () => {
      const res = await call(t, '/api/blueprints');
      expect(res.status).toBe(200);
      expect(res.body.map((r: Json) => r.id)).toEqual(bp.map((b) => b.id).reverse());
      expect(res.body[2]).toMatchObject({ exam_name: 'Exam 0', organization: null, model: 'gpt-test', drops_generated_at: null });
      expect(res.body[2].topics).toEqual([{ code: 'A', name: 'Topic A', discipline: 'D' }, { code: 'B', name: 'Topic B', discipline: 'D' }]);
      expect(res.body[0].created_at).toMatch(ISO);
      expect((await call(t, '/api/blueprints?limit=1&offset=1')).body.map((r: Json) => r.id)).toEqual([bp[1]!.id]);
      expectError(await call(t, '/api/blueprints?limit=101'), 400, /limit/);
    });

    it('GET /api/blueprints/:id returns one; 404 when missing, 400 when not a positive integer', async () => {
      const one = await call(t, `/api/blueprints/${bp[1]!.id}`);
      expect(one.status).toBe(200);
      const [row] = await t.service.database.db.select().from(examBlueprints).where(eq(examBlueprints.id, bp[1]!.id));
      expect(one.body).toEqual(asJson(row));

      expectError(await call(t, '/api/blueprints/999999'), 404, /999999/);
      for (const id of ['abc', '0', '-1', '1.5', '99999999999']) {
        const res = await call(t, `/api/blueprints/${id}`);
        expectError(res, 400, /id/);
      }
    });

    it('GET /api/drops returns drops in reading order and filters by blueprintId and topicCode', async () => {
      const titles = (res: { body: Json }) => res.body.map((r: Json) => r.title);
      const all = await call(t, '/api/drops');
      expect(all.status).toBe(200);
      expect(titles(all)).toEqual(['0A1', '0A2', '0B1', '0B2', '1A1', '1A2', '1B1', '1B2', '2A1']);
      expect(all.body[0]).toMatchObject({ blueprint_id: bp[0]!.id, topic_code: 'A', position: 1, content: 'text' });
      expect(all.body[0].created_at).toMatch(ISO);

      expect(titles(await call(t, `/api/drops?blueprintId=${bp[1]!.id}`))).toEqual(['1A1', '1A2', '1B1', '1B2']);
      expect(titles(await call(t, '/api/drops?topicCode=B'))).toEqual(['0B1', '0B2', '1B1', '1B2']);
      expect(titles(await call(t, `/api/drops?blueprintId=${bp[0]!.id}&topicCode=B`))).toEqual(['0B1', '0B2']);
      expect(titles(await call(t, `/api/drops?blueprintId=${bp[2]!.id}&topicCode=B`))).toEqual([]);
      expect((await call(t, '/api/drops?blueprintId=999999')).body).toEqual([]);
      expect(titles(await call(t, '/api/drops?limit=3&offset=2'))).toEqual(['0B1', '0B2', '1A1']);

      expectError(await call(t, '/api/drops?blueprintId=abc'), 400, /blueprintId/);
      expectError(await call(t, '/api/drops?blueprintId=0'), 400, /blueprintId/);
      expectError(await call(t, '/api/drops?limit=abc'), 400, /limit/);
    });
  });

  describe('request body limit (1 MB)', () => {
    const item = (contentLength: number) => {
      const skeleton = JSON.stringify({ title: 'Big', content: '' });
      return JSON.stringify({ title: 'Big', content: 'x'.repeat(contentLength - skeleton.length) });
    };

    it('accepts a body of exactly 1 MB', async () => {
      const body = item(MAX_BODY);
      expect(Buffer.byteLength(body)).toBe(MAX_BODY);
      const res = await postJson(t, '/api/harvest-items', body);
      expect(res.status).toBe(201);
      expect(res.body.content).toHaveLength(MAX_BODY - JSON.stringify({ title: 'Big', content: '' }).length);
      await t.service.database.db.delete(harvestItems).where(eq(harvestItems.id, res.body.id));
    });

    it('413 for a body over 1 MB with a Content-Length, storing nothing', async () => {
      const before = await count(t, 'harvest_items');
      const body = item(MAX_BODY + 1);
      const res = await rawRequest(t.service.url, {
        method: 'POST',
        path: '/api/harvest-items',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        chunks: [body],
      });
      expectError(res, 413, /larger than 1048576 bytes/);
      expect(Object.keys(res.body)).toEqual(['error']);
      expect(await count(t, 'harvest_items')).toBe(before);

      const schedule = await t.service.database.db.select().from(jobSchedule).orderBy(asc(jobSchedule.id));
      const putBody = JSON.stringify({ cron_expression: '*/5 * * * *', padding: 'x'.repeat(MAX_BODY) });
      const put = await rawRequest(t.service.url, {
        method: 'PUT',
        path: '/api/jobs/schedules/generate-drops',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(putBody) },
        chunks: [putBody],
      });
      expectError(put, 413, /larger than/);
      expect(await t.service.database.db.select().from(jobSchedule).orderBy(asc(jobSchedule.id))).toEqual(schedule);
      expect((await t.service.boss.getSchedules('generate-drops')).map((s) => s.cron)).toEqual(['0 0 * * *']);
    });

    it('accepts a small chunked body (no Content-Length)', async () => {
      const body = JSON.stringify({ title: 'Chunked', content: 'small body' });
      const res = await rawRequest(t.service.url, {
        method: 'POST',
        path: '/api/harvest-items',
        headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
        chunks: [body.slice(0, 10), body.slice(10)],
      });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ title: 'Chunked', content: 'small body', status: 'PENDING' });
      await t.service.database.db.delete(harvestItems).where(eq(harvestItems.id, res.body.id));
    });

    it('413 for a chunked body over 1 MB (no Content-Length), storing nothing', async () => {
      const before = await count(t, 'harvest_items');
      const chunk = Buffer.alloc(64 * 1024, 'x');
      const res = await rawRequest(t.service.url, {
        method: 'POST',
        path: '/api/harvest-items',
        headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
        chunks: [Buffer.from('{"title":"Big","content":"'), ...repeat(chunk, 17), Buffer.from('"}')],
      });
      expectError(res, 413, /larger than 1048576 bytes/);
      expect(await count(t, 'harvest_items')).toBe(before);
      // The server is still fine afterwards.
      expect((await call(t, '/healthz')).status).toBe(200);
    });

    // A client that keeps its connection open (every HTTP/1.1 client does by default) must be able
    // to send its next request after a refusal: either the connection keeps working, or the server
    // says `Connection: close` so the client opens a new one.
    const refusals: Array<{ name: string; status: number; path: string; headers: Record<string, string | number>; chunks: () => Iterable<Buffer | string> }> = [
      {
        name: '413 (Content-Length over the limit)',
        status: 413,
        path: '/api/harvest-items',
        headers: { 'content-type': 'application/json', 'content-length': MAX_BODY + 1 },
        chunks: () => [item(MAX_BODY + 1)],
      },
      {
        name: '413 (chunked body over the limit)',
        status: 413,
        path: '/api/harvest-items',
        headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
        chunks: () => repeat(Buffer.alloc(64 * 1024, 'x'), 17),
      },
      {
        name: '400 (a large body that is not JSON)',
        status: 400,
        path: '/api/harvest-items',
        headers: { 'content-type': 'text/plain', 'content-length': 512 * 1024 },
        chunks: () => [Buffer.alloc(512 * 1024, 'x')],
      },
    ];
    for (const r of refusals) {
      it(`after a ${r.name} the client's keep-alive connection still serves its next request`, async () => {
        const agent = new Agent({ keepAlive: true, maxSockets: 1 });
        try {
          const refused = await rawRequest(t.service.url, { method: 'POST', path: r.path, headers: r.headers, chunks: r.chunks(), agent });
          expect(refused.status).toBe(r.status);
          const next = await rawRequest(t.service.url, { method: 'GET', path: '/api/jobs/schedules', agent });
          expect(next.status).toBe(200);
          expect(next.body).toHaveLength(2);
        } finally {
          agent.destroy();
        }
      });
    }
  });

  it('a 500 says "internal error" and leaks no stack trace or SQL', async () => {
    const pool = t.service.database.pool;
    await pool.query('alter table drops rename to drops_hidden');
    try {
      const res = await call(t, '/api/drops');
      expect(res.status).toBe(500);
      expect(res.body).toEqual({ error: 'internal error' });
      expect(res.headers.get('content-type')).toMatch(/application\/json/);
    } finally {
      await pool.query('alter table drops_hidden rename to drops');
    }
    expect((await call(t, '/api/drops')).status).toBe(200);
  });
});

describe('health, routing and headers', () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService();
  });
  afterAll(() => t?.stop());

  it('GET /healthz is 200 { status: ok }', async () => {
    const res = await call(t, '/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('without API_TOKEN the API is open', async () => {
    for (const path of ['/api/jobs/schedules', '/api/jobs/logs', '/api/jobs/status', '/api/harvest-items', '/api/blueprints', '/api/drops']) {
      expect((await call(t, path)).status, path).toBe(200);
    }
  });

  it('an unknown route is a JSON 404', async () => {
    for (const [method, path] of [
      ['GET', '/nope'],
      ['GET', '/api/nope'],
      ['GET', '/api/jobs'],
      ['DELETE', '/api/jobs/schedules/generate-drops'],
      ['POST', '/api/blueprints'],
    ] as const) {
      const res = await call(t, path, { method });
      expectError(res, 404, /no route/);
      expect(res.headers.get('content-type'), `${method} ${path}`).toMatch(/application\/json/);
    }
    // The DELETE did nothing.
    expect((await call(t, '/api/jobs/schedules/generate-drops')).status).toBe(200);
  });

  it('sets security headers on every kind of response', async () => {
    for (const path of ['/healthz', '/api/jobs/schedules', '/nope', '/api/blueprints/abc']) {
      const res = await t.http(path);
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('x-frame-options'), path).toBe('SAMEORIGIN');
      expect(res.headers.get('referrer-policy'), path).toBe('no-referrer');
      expect(res.headers.get('x-powered-by'), path).toBeNull();
    }
  });
});

describe('bearer auth (API_TOKEN set)', () => {
  const TOKEN = 'test-token-0123456789abcdef';
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService({ API_TOKEN: TOKEN });
  });
  afterAll(() => t?.stop());

  const routes: Array<{ method: string; path: string; body?: unknown; ok: number }> = [
    { method: 'GET', path: '/api/jobs/schedules', ok: 200 },
    { method: 'GET', path: '/api/jobs/schedules/generate-drops', ok: 200 },
    { method: 'PUT', path: '/api/jobs/schedules/generate-drops', body: { timezone: 'UTC' }, ok: 200 },
    { method: 'GET', path: '/api/jobs/logs', ok: 200 },
    { method: 'GET', path: '/api/jobs/logs/generate-drops/latest', ok: 404 },
    { method: 'GET', path: '/api/jobs/status', ok: 200 },
    { method: 'GET', path: '/api/harvest-items', ok: 200 },
    { method: 'GET', path: '/api/blueprints', ok: 200 },
    { method: 'GET', path: '/api/blueprints/1', ok: 404 },
    { method: 'GET', path: '/api/drops', ok: 200 },
  ];
  const send = (r: (typeof routes)[number], auth?: string) =>
    call(t, r.path, {
      method: r.method,
      headers: { ...(auth === undefined ? {} : { authorization: auth }), ...(r.body ? { 'content-type': 'application/json' } : {}) },
      body: r.body ? JSON.stringify(r.body) : undefined,
    });

  it('every /api route without a token, or with a wrong one, is a 401', async () => {
    for (const r of routes) {
      for (const auth of [undefined, `Bearer ${TOKEN}x`, 'Bearer wrong-token-0123456789', `Basic ${Buffer.from(`user:${TOKEN}`).toString('base64')}`, TOKEN, 'Bearer']) {
        const res = await send(r, auth);
        expectError(res, 401, /bearer token/);
        expect(Object.keys(res.body)).toEqual(['error']);
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      }
    }
    // Unknown /api paths do not reveal themselves either.
    expectError(await call(t, '/api/nope'), 401, /bearer token/);
  });

  it('odd spellings of an /api path never get past the token check', async () => {
    for (const path of ['/%61pi/jobs/schedules', '/api/%6Aobs/schedules', '/api//jobs/schedules', '//api/jobs/schedules', '/api/jobs/schedules/', '/API/jobs/schedules', '/api/./jobs/schedules', '/x/../api/jobs/schedules']) {
      const res = await rawRequest(t.service.url, { method: 'GET', path });
      expect([401, 404], path).toContain(res.status);
      expect(typeof res.body.error, path).toBe('string');
      expect(Array.isArray(res.body), path).toBe(false);
    }
  });

  it('routes outside /api are not behind the token: an unknown one is a plain 404', async () => {
    expectError(await call(t, '/nope'), 404, /no route/);
  });

  it('refused requests change nothing: no item, no run, no schedule edit', async () => {
    const items = await count(t, 'harvest_items');
    const harvest = await postJson(t, '/api/harvest-items', { title: 'T', content: 'c' });
    expect(harvest.status).toBe(401);
    expect(await count(t, 'harvest_items')).toBe(items);

    const run = await call(t, '/api/jobs/run/generate-drops', { method: 'POST', headers: { authorization: 'Bearer not-the-token-at-all' } });
    expect(run.status).toBe(401);
    expect(await t.service.boss.findJobs('generate-drops')).toEqual([]);

    const put = await call(t, '/api/jobs/schedules/generate-drops', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ is_active: false }) });
    expect(put.status).toBe(401);
    const [row] = await t.service.database.db.select().from(jobSchedule).where(eq(jobSchedule.job_name, 'generate-drops'));
    expect(row!.is_active).toBe(true);
    expect((await t.service.boss.getSchedules('generate-drops')).map((s) => s.cron)).toEqual(['0 0 * * *']);
  });

  it('the right token opens every route', async () => {
    for (const r of routes) {
      for (const auth of [`Bearer ${TOKEN}`, `bearer ${TOKEN}`]) {
        const res = await send(r, auth);
        expect(res.status, `${r.method} ${r.path}`).toBe(r.ok);
      }
    }
    const harvest = await postJson(t, '/api/harvest-items', { title: 'T', content: 'c' }, { authorization: `Bearer ${TOKEN}` });
    expect(harvest.status).toBe(201);
  });

  it('/healthz needs no token', async () => {
    const res = await call(t, '/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });
});
