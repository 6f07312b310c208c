import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import formats from 'ajv-formats';
import { expect } from 'vitest';
import type { TestService } from './service.ts';

/** Parsed JSON from the API, loosely typed so tests can reach into it. */
export type Json = any;

export const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;
export const JOBS = ['extract-blueprints', 'generate-drops'] as const;

/** A request to the service; the body is parsed JSON, or the text when it is not JSON. */
export async function call(t: TestService, path: string, init?: RequestInit): Promise<{ status: number; body: Json; headers: Headers }> {
  const res = await t.http(path, init);
  const text = await res.text();
  let body: Json;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body, headers: res.headers };
}

/** A POST of `body` as JSON (a string is sent as it is). */
export const postJson = (t: TestService, path: string, body: unknown, headers: Record<string, string> = {}) =>
  call(t, path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

/** An error body is exactly `{ error: <non-empty string> }` (plus fields a route documents). */
export function expectError(res: { status: number; body: Json }, status: number, pattern: RegExp): void {
  expect(res.status).toBe(status);
  expect(typeof res.body?.error).toBe('string');
  expect(res.body.error).toMatch(pattern);
}

/** The value as the API serializes it. */
export const asJson = <T>(value: T): Json => JSON.parse(JSON.stringify(value));

/** The response's body as JSON; a body that is not JSON is an error naming the status and the text. */
export async function readJson(res: Response): Promise<Json> {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`not JSON (${res.status}): ${text}`);
  }
}

/**
 * Routes the service answers that the OpenAPI document leaves out on purpose: the document itself
 * the documentation page, and the console's page and files. (Hono's spelling of paths.)
 */
export const UNDOCUMENTED_ROUTES = ['GET /', 'GET /docs', 'GET /docs/assets/:file', 'GET /openapi.json', 'GET /console/app/*', 'GET /console/vendor/:file'];

type Operation = { responses: Record<string, { content?: Record<string, { schema: object }> }> };
type Document = { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, object> } };

const undocumented = UNDOCUMENTED_ROUTES.map((route) => new RegExp(`^${route.replace(/:[^/]+/g, '[^/]+').replace(/\*$/, '.+')}$`));

/** What the /api/* middleware answers before any route is matched (token, body size, Content-Type), besides the JSON 404. */
const UNROUTED_API_STATUSES = [400, 401, 403, 404, 413];

/**
 * Checks every response the tests receive through `t.http` against the service's own OpenAPI
 * document (GET /openapi.json): the status must be declared for the route and method, and the body
 * must match the schema declared for that status (ajv, JSON Schema 2020-12 as OpenAPI 3.1 uses).
 * A request that matches no documented route must get the JSON 404 (or, under /api, what the
 * middleware answers first). CORS preflights (OPTIONS) and UNDOCUMENTED_ROUTES are not checked.
 * A violation throws from the request, and is kept in `violations` so that one a test swallowed
 * (e.g. inside `eventually`) still fails it when the service stops.
 */
export function createContractCheck(baseUrl: string) {
  const violations: string[] = [];
  let loaded: Promise<{ doc: Document; ajv: Ajv2020; routes: Array<{ template: string; pattern: RegExp }> }> | undefined;
  const validators = new Map<string, ValidateFunction>();
  const DOC_ID = 'https://contract.test/openapi.json';

  const load = () =>
    (loaded ??= (async () => {
      const res = await fetch(new URL('/openapi.json', baseUrl));
      if (res.status !== 200) throw new Error(`GET /openapi.json answered ${res.status}: the contract check has no document`);
      // Refs point into the document; as $defs of one schema with an $id, ajv resolves them.
      const doc: Document = JSON.parse((await res.text()).replaceAll('"#/components/schemas/', `"${DOC_ID}#/$defs/`));
      const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
      formats.default(ajv);
      ajv.addKeyword('example');
      ajv.addSchema({ $id: DOC_ID, $defs: doc.components.schemas });
      // Templates with fewer parameters first: a literal segment beats a parameter.
      const routes = Object.keys(doc.paths)
        .map((template) => ({ template, pattern: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`) }))
        .sort((a, b) => a.template.split('{').length - b.template.split('{').length);
      return { doc, ajv, routes };
    })());

  function validatorFor(ajv: Ajv2020, key: string, schema: object): ValidateFunction {
    let validate = validators.get(key);
    if (!validate) validators.set(key, (validate = ajv.compile(schema)));
    return validate;
  }

  async function check(method: string, url: URL, res: Response): Promise<void> {
    method = method.toUpperCase();
    const path = url.pathname;
    if (method === 'OPTIONS' || undocumented.some((route) => route.test(`${method === 'HEAD' ? 'GET' : method} ${path}`))) return;
    const { doc, ajv, routes } = await load();
    const text = method === 'HEAD' ? '' : await res.clone().text();
    const fail = (problem: string): never => {
      const message = `contract: ${method} ${path} answered ${res.status} ${text.slice(0, 300)}\n  ${problem}`;
      violations.push(message);
      throw new Error(message);
    };
    const verb = method === 'HEAD' ? 'get' : method.toLowerCase();
    const route = routes.find((r) => r.pattern.test(path) && doc.paths[r.template]![verb]);
    const operation = route && doc.paths[route.template]![verb];
    let schema: object | undefined;
    let key: string;
    if (!route || !operation) {
      const allowed = path === '/api' || path.startsWith('/api/') ? UNROUTED_API_STATUSES : [404];
      if (!allowed.includes(res.status)) fail(`no documented route for ${method} ${path}, so it must be ${allowed.join(' or ')} with { error }`);
      schema = { $ref: `${DOC_ID}#/$defs/Error` };
      key = 'unrouted';
    } else {
      const response = operation.responses[String(res.status)];
      if (!response) fail(`status ${res.status} is not declared for ${method} ${route.template} (declared: ${Object.keys(operation.responses).join(', ')})`);
      schema = response!.content?.['application/json']?.schema;
      key = `${method} ${route.template} ${res.status}`;
      if (response!.content?.['text/plain']) {
        // A text body (the Prometheus exposition): its media type is the contract.
        if (!/^text\/plain\b/.test(res.headers.get('content-type') ?? '')) fail(`${key} declares text/plain, got Content-Type ${res.headers.get('content-type')}`);
        return;
      }
      if (!schema && text !== '') fail(`${key} declares no body, but one came`);
    }
    if (!schema || method === 'HEAD') return;
    if (!/^application\/json\b/.test(res.headers.get('content-type') ?? '')) fail(`${key} declares application/json, got Content-Type ${res.headers.get('content-type')}`);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      fail(`${key}: the body is not JSON`);
    }
    const validate = validatorFor(ajv, key, schema);
    if (!validate(body)) fail(`${key}: the body does not match its schema: ${ajv.errorsText(validate.errors, { dataVar: 'body' })}`);
  }

  return { check, violations };
}
