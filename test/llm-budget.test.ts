import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createRegistry } from '../src/jobs/registry.ts';
import { parseEnv } from '../src/env.ts';
import { extractBlueprintsJob } from '../src/jobs/extract-blueprints.ts';
import { generateDropsJob } from '../src/jobs/generate-drops.ts';
import { checkLlmBudget, worstLlmCallSeconds } from '../src/llm/budget.ts';
import { createLlm } from '../src/llm/openai.ts';
import { createLogger } from '../src/logger.ts';
import { startService } from '../src/service.ts';
import { startFakeOpenAI, type FakeOpenAI, type FakeReply } from '../testkit/fake-openai.ts';
import type { Json } from './support/http.ts';
import { script } from './support/llm-faults.ts';
import { closedLog, createItem, itemKeyOf, keyedItem, trigger } from './support/pipeline.ts';
import { eventually, startTestService, type TestService } from './support/service.ts';

/**
 * Time budgets nest: one LLM call (retries and waits included) fits in half of every job's expiry,
 * checked at startup, and the run's signal (expiry, cancel, shutdown) cuts an LLM call or a wait
 * before a retry short.
 */

const withExpiry = (seconds: number) => createRegistry([{ ...extractBlueprintsJob, queue: { ...extractBlueprintsJob.queue, expireInSeconds: seconds } }, generateDropsJob]);
const blueprintReply = (key: string): FakeReply => ({
  content: { exam_name: `Concurso ${key}`, organization: null, topics: [{ code: `${key}-1`, name: 'Tema', discipline: 'Geral' }] },
});

describe('startup check: one LLM call fits in half of every job expiry', () => {
  const env = (overrides: Record<string, string> = {}) => parseEnv({ DATABASE_URL: 'postgres://127.0.0.1:1/none', ...overrides });

  it('the defaults fit the registered jobs', () => {
    expect(worstLlmCallSeconds(env())).toBe(3 * 60 + 2 * 30);
    expect(() => checkLlmBudget(env(), createRegistry().values())).not.toThrow();
  });

  it('exactly half fits; one second more names the variables and the job', () => {
    // (2 + 1) × 100 + 2 × 75 = 450 = 900 / 2
    const fits = env({ OPENAI_TIMEOUT_SECONDS: '100', OPENAI_MAX_RETRIES: '2', OPENAI_RETRY_AFTER_MAX_SECONDS: '75' });
    expect(() => checkLlmBudget(fits, createRegistry().values())).not.toThrow();
    const over = env({ OPENAI_TIMEOUT_SECONDS: '100', OPENAI_MAX_RETRIES: '2', OPENAI_RETRY_AFTER_MAX_SECONDS: '76' });
    expect(() => checkLlmBudget(over, createRegistry().values())).toThrow(
      'one LLM call may take up to 452 s ((OPENAI_MAX_RETRIES 2 + 1) × OPENAI_TIMEOUT_SECONDS 100 + OPENAI_MAX_RETRIES 2 × OPENAI_RETRY_AFTER_MAX_SECONDS 76), ' +
        'more than half of the expiry of job extract-blueprints (expireInSeconds 900 s, so at most 450 s): ' +
        'lower OPENAI_TIMEOUT_SECONDS, OPENAI_MAX_RETRIES or OPENAI_RETRY_AFTER_MAX_SECONDS',
    );
  });

  it('startService refuses to start, before touching the database', async () => {
    const started = Date.now();
    const logger = createLogger('silent');
    // 3 × 60 + 2 × 30 = 240 s against a 60 s expiry.
    await expect(startService(env({ DB_STARTUP_TIMEOUT_SECONDS: '5' }), logger, withExpiry(60))).rejects.toThrow(
      /OPENAI_MAX_RETRIES.*OPENAI_TIMEOUT_SECONDS.*OPENAI_RETRY_AFTER_MAX_SECONDS.*job extract-blueprints \(expireInSeconds 60 s/,
    );
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe('the signal cuts an LLM call short', () => {
  let fake: FakeOpenAI;
  beforeAll(async () => {
    fake = await startFakeOpenAI();
  });
  afterAll(() => fake?.close());

  const request = (signal: AbortSignal) => ({
    schema: z.object({ ok: z.boolean() }),
    name: 'probe',
    system: 'Answer.',
    user: 'Anything.',
    signal,
  });

  it('during a wait before a retry', async () => {
    fake.respond(() => ({ status: 429, headers: { 'retry-after': '10' } }));
    const llm = createLlm({ apiKey: 'sk-test', baseURL: fake.url, model: 'gpt-test', timeoutMs: 10_000, maxRetries: 2, retryAfterMaxMs: 10_000 });
    const session = llm.session();
    const controller = new AbortController();
    const before = fake.requests.length;
    const started = Date.now();
    setTimeout(() => controller.abort(new Error('stopped by the test')), 300);

    await expect(session.structured(request(controller.signal))).rejects.toThrow('stopped by the test');
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(fake.requests.length - before).toBe(1);
    expect(session.usage.calls).toBe(1);
  });

  it('while the request is in flight', async () => {
    fake.respond(() => ({ hang: true }));
    const llm = createLlm({ apiKey: 'sk-test', baseURL: fake.url, model: 'gpt-test', timeoutMs: 10_000, maxRetries: 2, retryAfterMaxMs: 10_000 });
    const session = llm.session();
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(new Error('stopped by the test')), 300);

    await expect(session.structured(request(controller.signal))).rejects.toThrow('stopped by the test');
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(session.usage.calls).toBe(1);
  });
});

/** The items, once none is PROCESSING any more (the run's claims are released just after its log closes). */
function settledItems(t: TestService, items: Json[]): Promise<Json[]> {
  return eventually(async () => {
    const { rows } = await t.service.database.pool.query('select id, status, error_message, claimed_by_log_id, updated_at from harvest_items where id = any($1) order by id', [items.map((i) => i.id)]);
    return rows.every((r) => r.status !== 'PROCESSING') ? rows : undefined;
  }, { timeoutMs: 3_000, intervalMs: 20 });
}

/** Seconds between two timestamps of the database. */
const secondsBetween = (from: Date, to: Date) => (to.getTime() - from.getTime()) / 1000;

describe('a run that expires during a hung LLM call', () => {
  const EXPIRE = 4;
  let t: TestService;
  beforeAll(async () => {
    // One call: 2 s at most (no retries), half of the 4 s expiry; one item at a time.
    t = await startTestService({ OPENAI_TIMEOUT_SECONDS: '2', OPENAI_MAX_RETRIES: '0', LLM_CONCURRENCY: '1' }, { registry: withExpiry(EXPIRE) });
  });
  afterAll(() => t?.stop());

  it('ends FAILED "timed out after N s" within about N s, and the call in flight is aborted, not failed', async () => {
    t.llm.respond(() => ({ hang: true }));
    const items: Json[] = [];
    for (const key of ['h1', 'h2', 'h3']) items.push(await createItem(t, keyedItem(key)));

    const log = await closedLog(t, await trigger(t, 'extract-blueprints'));

    expect(log.status).toBe('FAILED');
    expect(log.error_message).toBe(`timed out after ${EXPIRE} s`);
    const runSeconds = secondsBetween(log.started_at, log.ended_at);
    expect(runSeconds).toBeGreaterThanOrEqual(EXPIRE - 1);
    expect(runSeconds).toBeLessThan(EXPIRE + 0.5);

    // h1's call timed out (2 s) before the expiry; h2's was in flight at 3.5 s and is given back
    // at once (its own timeout would have come at 4 s), h3 never started.
    const [h1, h2, h3] = await settledItems(t, items);
    expect(h1).toMatchObject({ status: 'BLUEPRINT_ERROR', error_message: 'LLM request timed out (2 s) after 1 attempt', claimed_by_log_id: null });
    expect(h2).toMatchObject({ status: 'PENDING', error_message: null, claimed_by_log_id: null });
    expect(h3).toMatchObject({ status: 'PENDING', error_message: null, claimed_by_log_id: null });
    expect(secondsBetween(log.started_at, h2.updated_at)).toBeLessThan(EXPIRE);
    expect(t.llm.requests.map(itemKeyOf)).toEqual(['h1', 'h2']);
    expect(log.metadata.llm.calls).toBe(2);
  });
});

describe('a run that expires while a call waits to retry', () => {
  const EXPIRE = 8;
  let t: TestService;
  beforeAll(async () => {
    // One call: 2 × 1 s + 1 × 2 s = 4 s at most, half of the 8 s expiry; one item at a time.
    t = await startTestService(
      { OPENAI_TIMEOUT_SECONDS: '1', OPENAI_MAX_RETRIES: '1', OPENAI_RETRY_AFTER_MAX_SECONDS: '2', LLM_CONCURRENCY: '1' },
      { registry: withExpiry(EXPIRE) },
    );
  });
  afterAll(() => t?.stop());

  it('the wait is cut short: the item is given back at the expiry, not when the wait would end', async () => {
    // w1–w3 wait 2 s then succeed, w4 0.5 s; w5 is told to wait 2 s from ≈6.5 s, past the 7.5 s deadline.
    const waitThenAnswer = (key: string, ms: number): FakeReply[] => [{ status: 429, headers: { 'retry-after-ms': String(ms) } }, blueprintReply(key)];
    const plan = script(
      { w1: waitThenAnswer('w1', 2000), w2: waitThenAnswer('w2', 2000), w3: waitThenAnswer('w3', 2000), w4: waitThenAnswer('w4', 500), w5: waitThenAnswer('w5', 2000) },
      (req) => blueprintReply(itemKeyOf(req) ?? '?'),
    );
    t.llm.respond((req) => plan.respond(req));
    const items: Json[] = [];
    for (const key of ['w1', 'w2', 'w3', 'w4', 'w5']) items.push(await createItem(t, keyedItem(key)));

    const log = await closedLog(t, await trigger(t, 'extract-blueprints'));

    expect(log.status).toBe('FAILED');
    expect(log.error_message).toBe(`timed out after ${EXPIRE} s`);
    expect(secondsBetween(log.started_at, log.ended_at)).toBeLessThan(EXPIRE);
    const rows = await settledItems(t, items);
    expect(rows.slice(0, 4).map((r) => r.status)).toEqual(['BLUEPRINT_DONE', 'BLUEPRINT_DONE', 'BLUEPRINT_DONE', 'BLUEPRINT_DONE']);
    const w5 = rows[4];
    expect(w5).toMatchObject({ status: 'PENDING', error_message: null, claimed_by_log_id: null });
    // Given back right after the 7.5 s deadline; its wait would have run to ≈8.5 s.
    expect(secondsBetween(log.started_at, w5.updated_at)).toBeLessThan(EXPIRE);
    expect(plan.count('w5')).toBe(1);
    expect(log.metadata.llm.calls).toBe(9);
  });
});
