import SwaggerParser from '@apidevtools/swagger-parser';
import type { Browser } from 'playwright-core';
import { hasChromium, launchChromium, noChromiumNote, watchedPage } from '../testkit/browser.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobLogs } from '../src/db/schema.ts';
import { asJson, call, createContractCheck, expectError, type Json, UNDOCUMENTED_ROUTES } from './support/http.ts';
import { startTestService, type TestService } from './support/service.ts';

/** The API contract: GET /openapi.json, the routes it describes, and the Swagger UI at /docs. */

const TOKEN = 'openapi-test-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };

type Operation = { security?: Array<Record<string, string[]>>; responses: Record<string, Json>; operationId?: string; summary?: string };
type Document = { openapi: string; paths: Record<string, Record<string, Operation>>; components: { securitySchemes: Record<string, Json> } };

describe('the OpenAPI document (API_TOKEN set)', () => {
  let t: TestService;
  let doc: Document;
  beforeAll(async () => {
    t = await startTestService({ API_TOKEN: TOKEN });
    doc = (await call(t, '/openapi.json')).body;
  });
  afterAll(() => t?.stop());

  const operations = () => Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ path, method: method.toUpperCase(), op })));

  it('is valid OpenAPI 3.1', async () => {
    expect(doc.openapi).toMatch(/^3\.1\./);
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeTruthy();
  });

  it("describes exactly the app's routes, but for the document and its page", () => {
    const served = new Set(t.service.app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path}`));
    for (const route of UNDOCUMENTED_ROUTES) expect(served, route).toContain(route);
    const documented = operations().map(({ method, path }) => `${method} ${path.replace(/\{([^}]+)\}/g, ':$1')}`);
    expect(new Set(documented).size).toBe(documented.length);
    expect([...documented].sort()).toEqual([...served].filter((route) => !UNDOCUMENTED_ROUTES.includes(route)).sort());
  });

  it('declares the bearer scheme, which every /api route and /metrics need and /healthz does not', () => {
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    for (const { method, path, op } of operations()) {
      const what = `${method} ${path}`;
      if (path === '/api' || path.startsWith('/api/') || path === '/metrics') {
        expect(op.security, what).toEqual([{ bearerAuth: [] }]);
        expect(Object.keys(op.responses), what).toContain('401');
      } else {
        expect(op.security, what).toBeUndefined();
      }
      // Read-only token and body limit: declared where they can happen, on the routes that change something.
      for (const status of ['403', '413']) expect(Object.keys(op.responses).includes(status), `${what} ${status}`).toBe(method !== 'GET');
      expect(op.operationId, what).toMatch(/^[a-z][A-Za-z]+$/);
      expect(op.summary, what).toBeTruthy();
    }
  });

  it('every error response is { error: string }, with extra fields only where a route documents them', async () => {
    const dereferenced = (await SwaggerParser.dereference(structuredClone(doc) as never)) as unknown as Document;
    for (const [path, ops] of Object.entries(dereferenced.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        for (const [status, response] of Object.entries(op.responses)) {
          if (Number(status) < 400) continue;
          const schema = response.content['application/json'].schema;
          const what = `${method} ${path} ${status}`;
          expect(schema.properties.error, what).toMatchObject({ type: 'string' });
          expect(schema.required, what).toContain('error');
          expect(schema.additionalProperties, what).toBe(false);
          if (Object.keys(schema.properties).length > 1) expect(status, what).toBe('409');
        }
      }
    }
  });

  it('the contract check refuses an undeclared status, a body off its schema and an unrouted 200', async () => {
    const check = createContractCheck(t.service.url).check;
    const json = (body: unknown, status: number) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
    const url = (path: string) => new URL(path, t.service.url);
    await expect(check('GET', url('/api/jobs/schedules'), json([], 200))).resolves.toBeUndefined();
    await expect(check('GET', url('/api/jobs/schedules'), json([{ id: 1 }], 200))).rejects.toThrow(/does not match its schema.*must have required property 'job_name'/);
    await expect(check('GET', url('/api/jobs/schedules'), json({ error: 'x', detail: 1 }, 500))).rejects.toThrow(/must NOT have additional properties/);
    await expect(check('GET', url('/api/jobs/schedules'), json({ error: 'x' }, 409))).rejects.toThrow(/status 409 is not declared for GET \/api\/jobs\/schedules \(declared: 200, 401, 500, 503\)/);
    await expect(check('GET', url('/api/blueprints/7'), json({ error: 'x' }, 404))).resolves.toBeUndefined();
    await expect(check('DELETE', url('/api/blueprints/7'), json({ error: 'no route' }, 404))).resolves.toBeUndefined();
    await expect(check('GET', url('/nope'), json({ ok: true }, 200))).rejects.toThrow(/no documented route/);
  });

  it('is served without a token, and so are /docs and its assets; / leads to /docs; /api/* is not open', async () => {
    const open = await t.http('/openapi.json');
    expect(open.status).toBe(200);
    expect(open.headers.get('content-type')).toMatch(/application\/json/);
    await open.arrayBuffer();

    const page = await t.http('/docs');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    const html = await page.text();
    expect(html).not.toMatch(/https?:\/\//);

    for (const [file, type] of [['swagger-ui.css', /text\/css/], ['swagger-ui-bundle.js', /javascript/], ['init.js', /javascript/], ['favicon-32x32.png', /image\/png/]] as const) {
      const asset = await t.http(`/docs/assets/${file}`);
      expect(asset.status, file).toBe(200);
      expect(asset.headers.get('content-type'), file).toMatch(type);
      expect((await asset.arrayBuffer()).byteLength, file).toBeGreaterThan(0);
    }
    // Compressed, and revalidated with an ETag: a reload of /docs does not send the 1.7 MB bundle again.
    const bundle = await t.http('/docs/assets/swagger-ui-bundle.js', { headers: { 'accept-encoding': 'gzip' } });
    expect(bundle.headers.get('content-encoding')).toBe('gzip');
    const etag = bundle.headers.get('etag');
    expect(etag).toMatch(/^(W\/)?"[\w-]{22}"$/);
    await bundle.arrayBuffer();
    const again = await t.http('/docs/assets/swagger-ui-bundle.js', { headers: { 'accept-encoding': 'gzip', 'if-none-match': etag! } });
    expect(again.status).toBe(304);
    // Only the files the page needs, by name: nothing else of the package or the disk.
    for (const file of ['index.html', 'package.json', '..%2F..%2Fpackage.json', '%2E%2E']) expectError(await call(t, `/docs/assets/${file}`), 404, /no route/);

    // The root is the operator console now (test/console.test.ts); it needs no token to load.
    const root = await t.http('/', { redirect: 'manual' });
    expect(root.status).toBe(200);
    expect(root.headers.get('content-type')).toMatch(/text\/html/);

    for (const path of ['/api', '/api/jobs/schedules', '/api/jobs/logs/1']) expectError(await call(t, path), 401, /bearer token/);
    expect((await call(t, '/healthz')).status).toBe(200);
  });

  it('GET /api links to the documentation and the resources', async () => {
    const res = await call(t, '/api', { headers: auth });
    expect(res.status).toBe(200);
    expect(res.body.links).toMatchObject({ docs: '/docs', openapi: '/openapi.json', metrics: '/metrics', healthz: '/healthz', schedules: '/api/jobs/schedules', alerts: '/api/alerts', drops: '/api/drops' });
    for (const [name, path] of Object.entries(res.body.links as Record<string, string>)) {
      const link = await t.http(path, { headers: auth });
      expect(link.status, `${name} ${path}`).toBe(200);
      await link.arrayBuffer();
    }
  });

  it('GET /api/jobs/logs/{id} returns one run, as the list shows it; 404 when absent, 400 when not an id', async () => {
    const [row] = await t.service.database.db
      .insert(jobLogs)
      .values({ job_name: 'generate-drops', status: 'FAILED', ended_at: new Date(), error_message: 'boom', metadata: { trigger: 'manual', job_id: 'x' } })
      .returning();
    const one = await call(t, `/api/jobs/logs/${row!.id}`, { headers: auth });
    expect(one.status).toBe(200);
    expect(one.body).toEqual(asJson(row));
    const listed = (await call(t, '/api/jobs/logs?jobName=generate-drops', { headers: auth })).body.find((r: Json) => r.id === row!.id);
    expect(one.body).toEqual(listed);

    const missing = await call(t, '/api/jobs/logs/2147483647', { headers: auth });
    expectError(missing, 404, /no run with id 2147483647/);
    expect(Object.keys(missing.body)).toEqual(['error']);
    for (const id of ['abc', '0', '-1', '1.5', '2147483648']) expectError(await call(t, `/api/jobs/logs/${id}`, { headers: auth }), 400, /^id: id/);
  });
});

describe.skipIf(!hasChromium)(`Swagger UI at /docs in headless Chromium${noChromiumNote}`, () => {
  let t: TestService;
  let browser: Browser;
  beforeAll(async () => {
    t = await startTestService({ API_TOKEN: TOKEN });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  /** Opens /docs in a fresh context; returns the page and every URL it requested. */
  async function openDocs() {
    const { page, context, requested, problems } = await watchedPage(browser, { viewport: { width: 1280, height: 1000 } });
    await page.goto(`${t.service.url}/docs`);
    await page.getByText('List every schedule').first().waitFor();
    return { page, context, requested, problems };
  }

  /** Opens GET /api/jobs/schedules, tries it out, and returns the status the page shows. */
  async function execute(page: Awaited<ReturnType<typeof openDocs>>['page']): Promise<string> {
    const block = page.locator('.opblock', { has: page.getByText('List every schedule') });
    await block.locator('.opblock-summary').click();
    await block.locator('button.try-out__btn').click();
    await block.locator('button.execute').click();
    const status = block.locator('.live-responses-table tbody .response-col_status').first();
    await status.waitFor();
    return (await status.innerText()).trim();
  }

  it('loads everything from the service itself and lists the operations', async () => {
    const { page, context, requested, problems } = await openDocs();
    try {
      for (const summary of ['Run a job now', 'Get one run by id', 'Send a dead letter back to its job', 'Health check: does the database answer?']) {
        await expect(page.getByText(summary).first().isVisible(), summary).resolves.toBe(true);
      }
      await page.screenshot({ path: '/tmp/docs.png', fullPage: false });
      const origin = new URL(t.service.url).origin;
      expect(requested.length).toBeGreaterThanOrEqual(4);
      expect(requested.filter((url) => !url.startsWith('data:') && new URL(url).origin !== origin)).toEqual([]);
      expect(requested.map((url) => new URL(url).pathname)).toEqual(expect.arrayContaining(['/docs', '/docs/assets/swagger-ui.css', '/docs/assets/swagger-ui-bundle.js', '/docs/assets/init.js', '/openapi.json']));
      // CSP violations and script errors show up here.
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('calls a route with the token entered under Authorize (200), and without it gets a 401', async () => {
    const withToken = await openDocs();
    try {
      await withToken.page.locator('.auth-wrapper button.authorize').click();
      const modal = withToken.page.locator('.modal-ux');
      await modal.locator('input').first().fill(TOKEN);
      await modal.locator('button.authorize').click();
      await modal.locator('button.btn-done').click();
      expect(await execute(withToken.page)).toBe('200');
      await withToken.page.screenshot({ path: '/tmp/docs-executed.png', fullPage: false });
    } finally {
      await withToken.context.close();
    }

    const without = await openDocs();
    try {
      expect(await execute(without.page)).toBe('401');
    } finally {
      await without.context.close();
    }
  });
});
