import { randomUUID } from 'node:crypto';
import { asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobSchedule, runRequests } from '../src/db/schema.ts';
import { call, expectError, JOBS, postJson, type Json } from './support/http.ts';
import { rawRequest, repeat } from './support/raw-http.ts';
import { eventually, startTestService, type TestService } from './support/service.ts';

/** The control plane's hardening: tokens, CORS, rate limit, idempotency, input and output checks. */

const MAX_BODY = 1024 * 1024;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type HeaderBag = Headers | Record<string, string | string[] | undefined>;
const header = (headers: HeaderBag, name: string): string | null => {
  if (headers instanceof Headers) return headers.get(name);
  const value = headers[name.toLowerCase()];
  return value === undefined ? null : String(value);
};

function expectSecureHeaders(headers: HeaderBag, what: string): void {
  expect(header(headers, 'x-content-type-options'), what).toBe('nosniff');
  expect(header(headers, 'x-frame-options'), what).toBe('SAMEORIGIN');
  expect(header(headers, 'referrer-policy'), what).toBe('no-referrer');
  expect(header(headers, 'strict-transport-security'), what).toMatch(/max-age=\d+/);
  expect(header(headers, 'x-powered-by'), what).toBeNull();
}

async function counts(t: TestService): Promise<Record<string, number>> {
  const { rows } = await t.service.database.pool.query(
    `select (select count(*) from job_logs)::int as job_logs, (select count(*) from job_schedule)::int as job_schedule,
            (select count(*) from harvest_items)::int as harvest_items, (select count(*) from run_requests)::int as run_requests,
            (select count(*) from exam_blueprints)::int as exam_blueprints, (select count(*) from drops)::int as drops`,
  );
  return rows[0];
}

const schedules = (t: TestService) => t.service.database.db.select().from(jobSchedule).orderBy(asc(jobSchedule.id));
const jobsOf = async (t: TestService, job: string) => (await t.service.boss.findJobs(job)).map((j) => j.id).sort();
const runPost = (t: TestService, job: string, headers: Record<string, string> = {}) => call(t, `/api/jobs/run/${job}`, { method: 'POST', headers });
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe('API_TOKEN_READONLY, CORS_ORIGINS and secrets in logs', () => {
  const TOKEN = 'full-access-token-0123456789abcdef';
  const READONLY = 'read-only-token-fedcba9876543210';
  const OPENAI_KEY = 'sk-hardening-test-key-4f1d8e2a9c7b';
  const ORIGIN = 'https://admin.example.com';
  let t: TestService;

  beforeAll(async () => {
    // The second origin is written with a trailing slash, which a browser never sends.
    t = await startTestService({ API_TOKEN: TOKEN, API_TOKEN_READONLY: READONLY, OPENAI_API_KEY: OPENAI_KEY, CORS_ORIGINS: `${ORIGIN}, http://localhost:5173/` });
  });
  afterAll(() => t?.stop());

  const reads = [
    '/api/jobs/schedules',
    '/api/jobs/schedules/generate-drops',
    '/api/jobs/logs',
    '/api/jobs/status',
    '/api/jobs/dead-letters',
    '/api/harvest-items',
    '/api/blueprints',
    '/api/drops',
  ];

  it('the read-only token reads every GET route, and HEAD', async () => {
    for (const path of reads) {
      const res = await call(t, path, { headers: bearer(READONLY) });
      expect(res.status, path).toBe(200);
      expectSecureHeaders(res.headers, path);
      const head = await t.http(path, { method: 'HEAD', headers: bearer(READONLY) });
      expect(head.status, `HEAD ${path}`).toBe(200);
      expect(await head.text()).toBe('');
    }
    expectError(await call(t, '/api/blueprints/1', { headers: bearer(READONLY) }), 404, /no blueprint/);
  });

  it('the read-only token changes nothing: POST, PUT and DELETE are 403', async () => {
    const before = await counts(t);
    const scheduleBefore = await schedules(t);
    const json = { ...bearer(READONLY), 'content-type': 'application/json' };
    const mutations: Array<[string, string, RequestInit]> = [
      ['POST', '/api/harvest-items', { headers: json, body: JSON.stringify({ title: 'T', content: 'c' }) }],
      ['PUT', '/api/jobs/schedules/generate-drops', { headers: json, body: JSON.stringify({ is_active: false }) }],
      ['POST', '/api/jobs/run/generate-drops', { headers: bearer(READONLY) }],
      ['POST', '/api/jobs/run/extract-blueprints', { headers: { ...bearer(READONLY), 'idempotency-key': 'k1' } }],
      ['POST', `/api/jobs/dead-letters/${randomUUID()}/retry`, { headers: bearer(READONLY) }],
      ['POST', '/api/jobs/dead-letters/retry', { headers: bearer(READONLY) }],
      ['DELETE', '/api/jobs/schedules/generate-drops', { headers: bearer(READONLY) }],
      ['PATCH', '/api/jobs/schedules/generate-drops', { headers: json, body: '{}' }],
    ];
    for (const [method, path, init] of mutations) {
      const res = await call(t, path, { method, ...init });
      expectError(res, 403, /read-only token.*API_TOKEN/);
      expect(Object.keys(res.body), `${method} ${path}`).toEqual(['error']);
      expectSecureHeaders(res.headers, `${method} ${path}`);
    }
    expect(await counts(t)).toEqual(before);
    expect(await schedules(t)).toEqual(scheduleBefore);
    for (const job of JOBS) expect(await t.service.boss.findJobs(job)).toEqual([]);
  });

  it('API_TOKEN opens every route, mutations included', async () => {
    for (const path of reads) expect((await call(t, path, { headers: bearer(TOKEN) })).status, path).toBe(200);
    expect((await postJson(t, '/api/harvest-items', { title: 'T', content: 'c' }, bearer(TOKEN))).status).toBe(201);
    const put = await call(t, '/api/jobs/schedules/generate-drops', { method: 'PUT', headers: { ...bearer(TOKEN), 'content-type': 'application/json' }, body: JSON.stringify({ timezone: 'UTC' }) });
    expect(put.status).toBe(200);
    // Past auth: an unknown dead letter is a 404, not a 401 or 403.
    expectError(await call(t, `/api/jobs/dead-letters/${randomUUID()}/retry`, { method: 'POST', headers: bearer(TOKEN) }), 404, /no dead letter/);
  });

  it('any other token is a 401, for reads and writes alike', async () => {
    for (const auth of [`Bearer ${READONLY}x`, `Bearer ${READONLY.slice(0, -1)}`, `Bearer ${TOKEN}${READONLY}`, `Bearer ${READONLY} ${TOKEN}`, READONLY, `Basic ${READONLY}`, 'Bearer ']) {
      for (const [method, path] of [['GET', '/api/jobs/schedules'], ['POST', '/api/jobs/run/generate-drops']] as const) {
        const res = await call(t, path, { method, headers: { authorization: auth } });
        expectError(res, 401, /bearer token/);
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      }
    }
    expect((await call(t, '/api/jobs/schedules', { headers: { authorization: `bearer ${READONLY}` } })).status).toBe(200);
  });

  describe('CORS', () => {
    const preflight = (origin: string, path = '/api/jobs/run/generate-drops') =>
      t.http(path, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, idempotency-key' },
      });

    it('a preflight from a listed origin is answered, without a token, and starts nothing', async () => {
      for (const origin of [ORIGIN, 'http://localhost:5173']) {
        const res = await preflight(origin);
        expect(res.status, origin).toBe(204);
        expect(res.headers.get('access-control-allow-origin')).toBe(origin);
        expect(res.headers.get('access-control-allow-methods')).toMatch(/\bPOST\b/);
        expect(res.headers.get('access-control-allow-methods')).toMatch(/\bPUT\b/);
        const allowed = res.headers.get('access-control-allow-headers')!.toLowerCase();
        for (const h of ['authorization', 'content-type', 'idempotency-key']) expect(allowed).toContain(h);
        expect(res.headers.get('access-control-max-age')).toBe('600');
        expect(res.headers.get('vary')).toMatch(/Origin/);
        expectSecureHeaders(res.headers, `preflight ${origin}`);
      }
      expect(await t.service.boss.findJobs('generate-drops')).toEqual([]);
    });

    it('responses to a listed origin carry its Access-Control-Allow-Origin, errors included', async () => {
      const ok = await t.http('/api/jobs/schedules', { headers: { origin: ORIGIN, ...bearer(READONLY) } });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('access-control-allow-origin')).toBe(ORIGIN);
      expect(ok.headers.get('vary')).toMatch(/Origin/);
      expect(ok.headers.get('access-control-expose-headers')).toMatch(/Retry-After/);
      expect(ok.headers.get('access-control-allow-credentials')).toBeNull();
      // A page can read why it was refused.
      const refused = await t.http('/api/jobs/schedules', { headers: { origin: ORIGIN } });
      expect(refused.status).toBe(401);
      expect(refused.headers.get('access-control-allow-origin')).toBe(ORIGIN);
      const forbidden = await t.http('/api/jobs/run/generate-drops', { method: 'POST', headers: { origin: ORIGIN, ...bearer(READONLY) } });
      expect(forbidden.status).toBe(403);
      expect(forbidden.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    });

    it('an origin not listed gets no Access-Control-Allow-Origin, on a preflight or a request', async () => {
      for (const origin of ['https://evil.example.com', 'https://admin.example.com.evil.com', 'http://admin.example.com', 'https://admin.example.com:8443', 'null', 'http://localhost:5174']) {
        const pre = await preflight(origin);
        expect(pre.headers.get('access-control-allow-origin'), origin).toBeNull();
        const res = await t.http('/api/jobs/schedules', { headers: { origin, ...bearer(READONLY) } });
        expect(res.headers.get('access-control-allow-origin'), origin).toBeNull();
      }
      expect((await t.http('/api/jobs/schedules', { headers: bearer(READONLY) })).headers.get('access-control-allow-origin')).toBeNull();
    });
  });

  it('no token, API key or database password appears in the logs', async () => {
    const password = decodeURIComponent(new URL(t.database.url).password);
    expect(password.length).toBeGreaterThan(8);
    const json = { ...bearer(TOKEN), 'content-type': 'application/json' };

    // A successful run (the model is called with the key), and one that fails on the model's 401.
    t.llm.respond((req) =>
      req.responseFormatName === 'exam_blueprint'
        ? { content: { exam_name: 'Concurso', organization: null, topics: [{ code: 'T1', name: 'Tema', discipline: 'Geral' }] } }
        : // As OpenAI says it: the key masked.
          { status: 401, body: { error: { message: `Incorrect API key provided: ${OPENAI_KEY.slice(0, 7)}****${OPENAI_KEY.slice(-4)}.`, type: 'invalid_request_error', code: 'invalid_api_key' } } },
    );
    expect((await postJson(t, '/api/harvest-items', { title: 'Edital', content: 'Programa: Português.' }, bearer(TOKEN))).status).toBe(201);
    const extract = await call(t, '/api/jobs/run/extract-blueprints', { method: 'POST', headers: { ...bearer(TOKEN), 'idempotency-key': 'secrets-run' } });
    expect(extract.status).toBe(202);
    await eventually(async () => (await t.service.database.pool.query(`select 1 from job_logs where metadata->>'job_id' = $1 and status = 'COMPLETED'`, [extract.body.jobId])).rows[0]);
    const drops = await call(t, '/api/jobs/run/generate-drops', { method: 'POST', headers: bearer(TOKEN) });
    expect(drops.status).toBe(202);
    await eventually(async () => (await t.service.database.pool.query(`select 1 from job_logs where metadata->>'job_id' = $1 and status <> 'STARTED'`, [drops.body.jobId])).rows[0]);
    expect(t.llm.requests.length).toBeGreaterThanOrEqual(2);
    expect(t.llm.requests[0]!.headers.authorization).toBe(`Bearer ${OPENAI_KEY}`);

    // Reads and refusals with every token, and an internal error.
    await call(t, '/api/jobs/status', { headers: bearer(READONLY) });
    await call(t, '/api/jobs/run/generate-drops', { method: 'POST', headers: bearer(READONLY) });
    await call(t, '/api/jobs/schedules', { headers: { authorization: `Bearer ${TOKEN}-wrong` } });
    await call(t, `/api/jobs/logs?jobName=${TOKEN}`, { headers: bearer(TOKEN) });
    await call(t, '/api/jobs/schedules/generate-drops', { method: 'PUT', headers: json, body: JSON.stringify({ timezone: READONLY }) });
    const pool = t.service.database.pool;
    await pool.query('alter table drops rename to drops_hidden');
    try {
      expect((await call(t, '/api/drops', { headers: bearer(TOKEN) })).status).toBe(500);
    } finally {
      await pool.query('alter table drops_hidden rename to drops');
    }

    expect(t.logs.length).toBeGreaterThan(20);
    expect(t.logs.some((l) => l.msg === 'request failed')).toBe(true);
    const written = JSON.stringify(t.logs);
    for (const [name, secret] of [['API_TOKEN', TOKEN], ['API_TOKEN_READONLY', READONLY], ['OPENAI_API_KEY', OPENAI_KEY], ['database password', password]] as const) {
      expect(written.includes(secret), `${name} is in the logs`).toBe(false);
      expect(written.includes(encodeURIComponent(secret)), `${name} (URL-encoded) is in the logs`).toBe(false);
    }
  });
});

describe('manual-run rate limit (RUN_RATE_LIMIT_PER_MINUTE), no auth: per remote address', () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService({ RUN_RATE_LIMIT_PER_MINUTE: '3' });
    for (const job of JOBS) await t.service.boss.offWork(job);
  });
  afterAll(() => t?.stop());

  const run = (localAddress?: string) => rawRequest(t.service.url, { method: 'POST', path: '/api/jobs/run/generate-drops', localAddress });

  it('the 4th run request within a minute is a 429 with Retry-After; nothing is enqueued', async () => {
    const answers = [await run(), await run(), await run()];
    // Refused runs (one is already waiting) count too: the limit is on requests.
    expect(answers.map((a) => a.status)).toEqual([202, 409, 409]);
    expect(answers[0]!.headers['ratelimit-limit']).toBe('3');
    expect(answers[0]!.headers['ratelimit-remaining']).toBe('2');
    const jobs = await jobsOf(t, 'generate-drops');

    const limited = await run();
    expectError(limited, 429, /too many manual runs.*3 a minute/);
    expect(Object.keys(limited.body)).toEqual(['error']);
    const retryAfter = Number(limited.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(limited.headers['content-type']).toMatch(/application\/json/);
    expectSecureHeaders(limited.headers, '429');
    // Any job, and with an Idempotency-Key, alike.
    expect((await rawRequest(t.service.url, { method: 'POST', path: '/api/jobs/run/extract-blueprints', headers: { 'idempotency-key': 'x' } })).status).toBe(429);
    expect(await jobsOf(t, 'generate-drops')).toEqual(jobs);
    expect(await t.service.boss.findJobs('extract-blueprints')).toEqual([]);
    expect(await counts(t)).toMatchObject({ run_requests: 0 });
  });

  it('other routes are not limited', async () => {
    for (let i = 0; i < 5; i++) {
      expect((await call(t, '/api/jobs/schedules')).status).toBe(200);
      expect((await postJson(t, '/api/harvest-items', { title: `T${i}`, content: 'c' })).status).toBe(201);
      expect((await call(t, '/api/jobs/schedules/generate-drops', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"timezone":"UTC"}' })).status).toBe(200);
      expect((await call(t, '/api/jobs/dead-letters')).status).toBe(200);
    }
  });

  it('another client (another address) has a budget of its own', async () => {
    expect((await run('127.0.0.2')).status).toBe(409);
    expect((await run('127.0.0.2')).status).toBe(409);
    expect((await run('127.0.0.2')).status).toBe(409);
    expect((await run('127.0.0.2')).status).toBe(429);
    expect((await run('127.0.0.3')).status).toBe(409);
    expect((await run()).status).toBe(429);
  });

  it('without CORS_ORIGINS there is no CORS: no Access-Control-Allow-Origin for anyone', async () => {
    const res = await t.http('/api/jobs/schedules', { headers: { origin: 'https://admin.example.com' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const pre = await t.http('/api/jobs/schedules', { method: 'OPTIONS', headers: { origin: 'https://admin.example.com', 'access-control-request-method': 'GET' } });
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    expect(pre.headers.get('access-control-allow-methods')).toBeNull();
  });
});

describe('manual-run rate limit with auth: per token', () => {
  const TOKEN = 'rate-limit-token-0123456789abcdef';
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService({ API_TOKEN: TOKEN, RUN_RATE_LIMIT_PER_MINUTE: '2' });
    for (const job of JOBS) await t.service.boss.offWork(job);
  });
  afterAll(() => t?.stop());

  it('the token is the client, from whatever address; refused tokens use no budget', async () => {
    const run = (headers: Record<string, string>, localAddress?: string) => rawRequest(t.service.url, { method: 'POST', path: '/api/jobs/run/generate-drops', headers, localAddress });
    for (let i = 0; i < 5; i++) expect((await run({ authorization: 'Bearer not-the-token-0123456789' })).status).toBe(401);
    expect((await run(bearer(TOKEN))).status).toBe(202);
    expect((await run(bearer(TOKEN), '127.0.0.2')).status).toBe(409);
    const limited = await run(bearer(TOKEN), '127.0.0.3');
    expectError(limited, 429, /too many manual runs/);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect((await run(bearer(TOKEN))).status).toBe(429);
  });
});

describe('Idempotency-Key on POST /api/jobs/run/:jobName', () => {
  let t: TestService;
  const rows = (key: string) => t.service.database.db.select().from(runRequests).where(eq(runRequests.idempotency_key, key));
  beforeAll(async () => {
    t = await startTestService({ RUN_RATE_LIMIT_PER_MINUTE: '10000' });
    // Runs stay waiting: the tests read the queue as they left it.
    for (const job of JOBS) await t.service.boss.offWork(job);
  });
  afterAll(() => t?.stop());

  /** Cancels whatever waits in the job's queue, so the next run is accepted. */
  async function clear(job: string): Promise<void> {
    const waiting = await t.service.boss.findJobs(job, { queued: true });
    if (waiting.length) await t.service.boss.cancel(job, waiting.map((j) => j.id));
  }

  it('the same key twice gives the same run, once; the key is recorded with it', async () => {
    // A key older than 24 hours, left by an earlier request: deleted in passing.
    await t.service.database.pool.query(`insert into run_requests (job_name, idempotency_key, job_id, created_at) values ('generate-drops', 'ancient', $1, now() - interval '25 hours')`, [randomUUID()]);

    const first = await runPost(t, 'extract-blueprints', { 'idempotency-key': 'key-A' });
    expect(first.status).toBe(202);
    expect(Object.keys(first.body).sort()).toEqual(['jobId', 'jobName', 'message']);
    expect(first.body.jobId).toMatch(UUID);

    const again = await runPost(t, 'extract-blueprints', { 'idempotency-key': 'key-A' });
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ jobName: 'extract-blueprints', jobId: first.body.jobId, replayed: true });
    expect(await jobsOf(t, 'extract-blueprints')).toEqual([first.body.jobId]);
    expect((await t.service.boss.findJobs('extract-blueprints', { id: first.body.jobId }))[0]!.data).toEqual({ trigger: 'manual' });
    expect((await rows('key-A')).map((r) => [r.job_name, r.job_id])).toEqual([['extract-blueprints', first.body.jobId]]);

    // A key is per job: the same key on another job is another request.
    const other = await runPost(t, 'generate-drops', { 'idempotency-key': 'key-A' });
    expect(other.status).toBe(202);
    expect(other.body.jobId).not.toBe(first.body.jobId);
    expect(other.body.replayed).toBeUndefined();

    await eventually(async () => (await rows('ancient')).length === 0);
  });

  it('a different key, or none, behaves as before: 409 while a run waits, and the key is not used up', async () => {
    const waiting = (await t.service.boss.findJobs('extract-blueprints', { queued: true }))[0]!.id;
    const refused = await runPost(t, 'extract-blueprints', { 'idempotency-key': 'key-B' });
    expectError(refused, 409, /already has a run waiting/);
    expect(refused.body).toMatchObject({ jobName: 'extract-blueprints', jobId: waiting });
    expectError(await runPost(t, 'extract-blueprints'), 409, /waiting/);
    expect(await rows('key-B')).toEqual([]);
    // The original key still replays.
    expect((await runPost(t, 'extract-blueprints', { 'idempotency-key': 'key-A' })).body).toMatchObject({ jobId: waiting, replayed: true });

    await clear('extract-blueprints');
    const later = await runPost(t, 'extract-blueprints', { 'idempotency-key': 'key-B' });
    expect(later.status).toBe(202);
    expect(later.body.jobId).not.toBe(waiting);
    expect((await rows('key-B')).map((r) => r.job_id)).toEqual([later.body.jobId]);
  });

  it('a key that is not 1 to 200 printable ASCII characters is a 400, and nothing is enqueued', async () => {
    await clear('extract-blueprints');
    const before = await counts(t);
    const path = '/api/jobs/run/extract-blueprints';
    const bad = ['', 'x'.repeat(201), 'caf\u00e9', 'a\tb', '\u00a0nbsp'];
    for (const key of bad) {
      const res = await rawRequest(t.service.url, { method: 'POST', path, headers: { 'idempotency-key': key } });
      expectError(res, 400, /Idempotency-Key must be 1 to 200 printable ASCII characters/);
    }
    expect(await t.service.boss.findJobs('extract-blueprints', { queued: true })).toEqual([]);
    expect(await counts(t)).toEqual(before);

    const longest = await runPost(t, 'extract-blueprints', { 'idempotency-key': `~ !"#$%&'()*+,-./:;<=>?@[\\]^_\`{|}`.padEnd(200, 'z') });
    expect(longest.status).toBe(202);
    await clear('extract-blueprints');
    expect((await runPost(t, 'extract-blueprints', { 'idempotency-key': "'; drop table run_requests;--" })).status).toBe(202);
    expect((await runPost(t, 'extract-blueprints', { 'idempotency-key': "'; drop table run_requests;--" })).body.replayed).toBe(true);
  });

  it('concurrent requests with one key create one job and all get its id', async () => {
    await clear('generate-drops');
    const before = await jobsOf(t, 'generate-drops');
    const answers = await Promise.all(Array.from({ length: 20 }, () => runPost(t, 'generate-drops', { 'idempotency-key': 'burst' })));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(202));
    const ids = new Set(answers.map((a) => a.body.jobId));
    expect(ids.size).toBe(1);
    const [jobId] = ids;
    expect(answers.filter((a) => a.body.replayed === true)).toHaveLength(19);
    expect(await jobsOf(t, 'generate-drops')).toEqual([...before, jobId].sort());
    expect((await rows('burst')).map((r) => r.job_id)).toEqual([jobId]);
  });

  it('the key and the job commit together: a failure at commit leaves neither, and the key free', async () => {
    await clear('generate-drops');
    const pool = t.service.database.pool;
    const before = await jobsOf(t, 'generate-drops');
    await pool.query(`create function fail_at_commit() returns trigger language plpgsql as $$ begin raise exception 'simulated crash at commit'; end $$`);
    await pool.query(`create constraint trigger fail_at_commit after insert on run_requests deferrable initially deferred for each row execute function fail_at_commit()`);
    try {
      const res = await runPost(t, 'generate-drops', { 'idempotency-key': 'crash' });
      expect(res.status).toBe(500);
      expect(res.body).toEqual({ error: 'internal error' });
      expectSecureHeaders(res.headers, '500');
    } finally {
      await pool.query('drop trigger fail_at_commit on run_requests');
      await pool.query('drop function fail_at_commit()');
    }
    // The job was sent inside the transaction that failed: it is gone with the key.
    expect(await jobsOf(t, 'generate-drops')).toEqual(before);
    expect(await rows('crash')).toEqual([]);
    const retried = await runPost(t, 'generate-drops', { 'idempotency-key': 'crash' });
    expect(retried.status).toBe(202);
    expect(retried.body.replayed).toBeUndefined();
  });

  it('a key older than 24 hours is forgotten: it starts a new run', async () => {
    await clear('extract-blueprints');
    const [old] = await rows('key-A');
    await t.service.database.pool.query(`update run_requests set created_at = now() - interval '25 hours' where idempotency_key = 'key-A' and job_name = 'extract-blueprints'`);
    const res = await runPost(t, 'extract-blueprints', { 'idempotency-key': 'key-A' });
    expect(res.status).toBe(202);
    expect(res.body.replayed).toBeUndefined();
    expect(res.body.jobId).not.toBe(old!.job_id);
    expect((await rows('key-A')).filter((r) => r.job_name === 'extract-blueprints').map((r) => r.job_id)).toEqual([res.body.jobId]);
  });
});

describe('input and output hardening', () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService({ RUN_RATE_LIMIT_PER_MINUTE: '10000' });
    for (const job of JOBS) await t.service.boss.offWork(job);
  });
  afterAll(() => t?.stop());

  /** Every route that takes a body (or refuses one), with a body it accepts when there is one. */
  const writes = () => [
    { method: 'POST', path: '/api/harvest-items', valid: { title: 'T', content: 'c' } },
    { method: 'PUT', path: '/api/jobs/schedules/generate-drops', valid: { timezone: 'UTC' } },
    { method: 'POST', path: '/api/jobs/run/generate-drops', valid: {} },
    { method: 'POST', path: `/api/jobs/dead-letters/${randomUUID()}/retry`, valid: {} },
    { method: 'POST', path: '/api/jobs/dead-letters/retry', valid: { jobName: 'generate-drops' } },
  ];

  async function unchanged(fn: () => Promise<void>): Promise<void> {
    const before = { counts: await counts(t), schedules: await schedules(t), jobs: await Promise.all(JOBS.map((j) => jobsOf(t, j))) };
    await fn();
    expect({ counts: await counts(t), schedules: await schedules(t), jobs: await Promise.all(JOBS.map((j) => jobsOf(t, j))) }).toEqual(before);
  }

  it('bodies over 1 MB are a 413 on every route, with a Content-Length or chunked', async () => {
    await unchanged(async () => {
      for (const { method, path } of writes()) {
        const body = JSON.stringify({ padding: 'x'.repeat(MAX_BODY) });
        const sized = await rawRequest(t.service.url, { method, path, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, chunks: [body] });
        expectError(sized, 413, /larger than 1048576 bytes/);
        expectSecureHeaders(sized.headers, `413 ${method} ${path}`);
        const chunked = await rawRequest(t.service.url, {
          method,
          path,
          headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
          chunks: [Buffer.from('{"padding":"'), ...repeat(Buffer.alloc(64 * 1024, 'x'), 17), Buffer.from('"}')],
        });
        expectError(chunked, 413, /larger than 1048576 bytes/);
      }
    });
    expect((await call(t, '/healthz')).status).toBe(200);
  });

  it('a body that is not JSON, or not sent as JSON, is a 400 on every route', async () => {
    await unchanged(async () => {
      for (const { method, path, valid } of writes()) {
        const cases: Array<[Record<string, string>, string, RegExp]> = [
          [{ 'content-type': 'text/plain' }, JSON.stringify(valid) === '{}' ? '{"a":1}' : JSON.stringify(valid), /Content-Type must be application\/json/],
          [{ 'content-type': 'application/x-www-form-urlencoded' }, 'a=1', /Content-Type/],
          [{ 'content-type': 'application/jsonx' }, '{}', /Content-Type/],
          [{}, '{}', /Content-Type/],
          [{ 'content-type': 'application/json' }, '{"a": ', /JSON/],
          [{ 'content-type': 'application/json' }, 'not json', /JSON/],
        ];
        for (const [headers, body, error] of cases) {
          const res = await rawRequest(t.service.url, { method, path, headers: { ...headers, 'content-length': Buffer.byteLength(body) }, chunks: [body] });
          expectError(res, 400, error);
          expect(Object.keys(res.body)).toEqual(['error']);
        }
      }
    });
  });

  it('unknown body fields, and bodies that are not objects, are a 400 on every route', async () => {
    await unchanged(async () => {
      for (const { method, path, valid } of writes()) {
        for (const body of [{ ...valid, extra: 1 }, { ...valid, __proto__x: 1 }, [], null, 'text', 42]) {
          const res = await call(t, path, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
          expect(res.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(400);
          expect(typeof res.body.error).toBe('string');
        }
        const proto = await call(t, path, { method, headers: { 'content-type': 'application/json' }, body: `{"__proto__": {"admin": true}${JSON.stringify(valid) === '{}' ? '' : `, ${JSON.stringify(valid).slice(1, -1)}`}}` });
        expectError(proto, 400, /unknown field.*__proto__/);
      }
    });
    // The routes that take no input accept none, an empty body, or {}.
    for (const init of [{}, { headers: { 'content-type': 'application/json' } }, { headers: { 'content-type': 'application/json' }, body: '{}' }, { headers: { 'content-type': 'application/json; charset=utf-8' }, body: ' { } ' }]) {
      await t.service.boss.deleteAllJobs('generate-drops');
      const res = await call(t, '/api/jobs/run/generate-drops', { method: 'POST', ...init });
      expect(res.status, JSON.stringify(init)).toBe(202);
    }
    await t.service.boss.deleteAllJobs('generate-drops');
  });

  it('a NUL (\\u0000) in any string of any body, query or path is refused, never a 500', async () => {
    await unchanged(async () => {
      const bodies: Array<[string, string, unknown]> = [
        ['POST', '/api/harvest-items', { title: 'T\u0000', content: 'c' }],
        ['POST', '/api/harvest-items', { title: 'T', content: '\u0000' }],
        ['POST', '/api/harvest-items', { title: 'T', content: 'c', source_url: 'https://example.com/a\u0000b' }],
        ['POST', '/api/harvest-items', { title: 'T', content: 'c', source_url: 'https://example.com/?q=\u0000' }],
        ['POST', '/api/harvest-items', { title: 'T', content: 'c', 'x\u0000': 'y' }],
        ['PUT', '/api/jobs/schedules/generate-drops', { cron_expression: '\u0000' }],
        ['PUT', '/api/jobs/schedules/generate-drops', { timezone: 'Europe/Lisbon\u0000' }],
        ['PUT', '/api/jobs/schedules/generate-drops', { missed_policy: 'skip\u0000' }],
        ['POST', '/api/jobs/run/generate-drops', { 'a\u0000': '\u0000' }],
        ['POST', `/api/jobs/dead-letters/${randomUUID()}/retry`, { note: '\u0000' }],
        ['POST', '/api/jobs/dead-letters/retry', { error: 'quota\u0000' }],
      ];
      for (const [method, path, body] of bodies) {
        const res = await call(t, path, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        expect(res.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(400);
        expect(typeof res.body.error).toBe('string');
      }
      const queries: Array<[string, number]> = [
        ['/api/drops?topicCode=%00', 400],
        ['/api/harvest-items?status=%00', 400],
        ['/api/jobs/logs?jobName=%00', 400],
        ['/api/jobs/dead-letters?jobName=a%00', 400],
        ['/api/drops?blueprintId=%00', 400],
        ['/api/jobs/logs?limit=%00', 400],
        ['/api/jobs/schedules/%00', 404],
        ['/api/jobs/logs/extract-blueprints%00/latest', 404],
        ['/api/blueprints/%00', 400],
      ];
      for (const [path, status] of queries) expect((await call(t, path)).status, path).toBe(status);
      for (const path of ['/api/jobs/run/generate-drops%00', '/api/jobs/dead-letters/%00/retry']) expect([400, 404], path).toContain((await call(t, path, { method: 'POST' })).status);
    });
  });

  it('odd job names are 404s on every job route, and leave the tables and queues intact', async () => {
    const names = [
      "extract-blueprints'; DROP TABLE job_logs;--",
      'generate-drops" OR 1=1 --',
      'extract-blüeprints',
      'extract-blueprints\u200b',
      'ｅｘｔｒａｃｔ-blueprints',
      '🚀',
      'extract-blueprints/dead-letter',
      'EXTRACT-BLUEPRINTS',
      ' extract-blueprints',
      'x'.repeat(300),
      'extract-blueprints'.repeat(60),
    ];
    await unchanged(async () => {
      for (const name of names) {
        const n = encodeURIComponent(name);
        const responses = [
          await call(t, `/api/jobs/schedules/${n}`),
          await call(t, `/api/jobs/schedules/${n}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"is_active":false}' }),
          await call(t, `/api/jobs/run/${n}`, { method: 'POST' }),
          await call(t, `/api/jobs/run/${n}`, { method: 'POST', headers: { 'idempotency-key': 'k' } }),
          await call(t, `/api/jobs/logs/${n}/latest`),
          await call(t, `/api/jobs/logs?jobName=${n}`),
          await call(t, `/api/jobs/dead-letters?jobName=${n}`),
        ];
        for (const res of responses) {
          // A name with a slash is no single path segment: no route, rather than an unknown job.
          expectError(res, 404, /unknown job|no route/);
          expect(res.body.error.length).toBeLessThan(400);
        }
        // None became a queue (pg-boss refuses most as queue names outright). The dead-letter queue is
        // one, but not a job.
        if (!name.endsWith('/dead-letter')) expect(await t.service.boss.getQueue(name).catch(() => null), name.slice(0, 40)).toBeNull();
      }
      // Malformed percent-encoding in a path.
      for (const path of ['/api/jobs/schedules/%E0%A4%A', '/api/jobs/run/%ZZ', '/api/jobs/logs/%/latest']) {
        const res = await rawRequest(t.service.url, { method: path.includes('/run/') ? 'POST' : 'GET', path });
        expect([400, 404], path).toContain(res.status);
        expect(typeof res.body.error).toBe('string');
      }
    });
    const { rows } = await t.service.database.pool.query(`select to_regclass('public.job_logs') as logs, to_regclass('public.job_schedule') as schedule, to_regclass('public.run_requests') as requests`);
    expect(rows[0]).toEqual({ logs: 'job_logs', schedule: 'job_schedule', requests: 'run_requests' });
    expect((await call(t, '/api/jobs/schedules')).body).toHaveLength(2);
  });

  it('every kind of response carries the security headers', async () => {
    await t.service.boss.deleteAllJobs('generate-drops');
    const responses: Array<[string, Response]> = [
      ['200', await t.http('/api/jobs/dead-letters')],
      ['200 healthz', await t.http('/healthz')],
      ['201', await t.http('/api/harvest-items', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"title":"T","content":"c"}' })],
      ['202', await t.http('/api/jobs/run/generate-drops', { method: 'POST' })],
      ['409', await t.http('/api/jobs/run/generate-drops', { method: 'POST' })],
      ['400', await t.http('/api/jobs/dead-letters?limit=0')],
      ['404', await t.http(`/api/jobs/dead-letters/${randomUUID()}/retry`, { method: 'POST' })],
      ['404 no route', await t.http('/nope')],
    ];
    for (const [what, res] of responses) {
      expectSecureHeaders(res.headers, what);
      expect(res.headers.get('content-type'), what).toMatch(/application\/json/);
      await res.arrayBuffer();
    }
    expect(responses.map(([what, res]) => [what, res.status])).toEqual(responses.map(([what]) => [what, Number(what.slice(0, 3))]));
  });

  it('a 500 says only "internal error": no stack trace, SQL or internal message; the log has the detail', async () => {
    const pool = t.service.database.pool;
    await pool.query('alter table run_requests rename to run_requests_hidden');
    try {
      for (const res of [
        await runPost(t, 'extract-blueprints', { 'idempotency-key': 'during-outage' }),
        await call(t, '/api/jobs/logs?jobName=extract-blueprints').then(async (r) => {
          // Not broken by this rename: a control that the outage is specific.
          expect(r.status).toBe(200);
          await pool.query('alter table job_logs rename to job_logs_hidden');
          try {
            return await call(t, '/api/jobs/status');
          } finally {
            await pool.query('alter table job_logs_hidden rename to job_logs');
          }
        }),
      ]) {
        expect(res.status).toBe(500);
        expect(res.body).toEqual({ error: 'internal error' });
        expectSecureHeaders(res.headers, '500');
      }
    } finally {
      await pool.query('alter table run_requests_hidden rename to run_requests');
    }
    const failures = t.logs.filter((l) => l.msg === 'request failed');
    expect(failures.length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(failures)).toMatch(/run_requests/);
  });

  it('no route answers with a body that is not JSON', async () => {
    const res: Json = await call(t, '/api/jobs/run/generate-drops', { method: 'GET' });
    expectError(res, 404, /no route/);
  });
});
