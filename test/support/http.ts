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
