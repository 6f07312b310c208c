import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadLetterQueueOf } from '../src/jobs/job.ts';
import { BAD_BLUEPRINT_ANSWERS, BAD_BLUEPRINT_REASONS } from '../testkit/bad-answers.ts';
import { startFakeOpenAI, type FakeOpenAI, type FakeReply, type FakeRequest } from '../testkit/fake-openai.ts';
import type { Json } from './support/http.ts';
import { gaps, script, startDroppingProxy, subjectOf, type DroppingProxy } from './support/llm-faults.ts';
import { closedLog, createItem, itemKeyOf, keyedItem, trigger } from './support/pipeline.ts';
import { eventually, startTestService, type TestService } from './support/service.ts';

/**
 * LLM failures, injected through the fake OpenAI server: transient errors are retried per call
 * (bounded, with backoff, Retry-After capped), bad output is asked for once more, and a rejected
 * key or unknown model fails the whole run once, without retries.
 */

/** Item <key> gets topics <key>-1 and <key>-2. */
const blueprintFor = (key: string) => ({
  exam_name: `Concurso ${key}`,
  organization: null,
  topics: [1, 2].map((i) => ({ code: `${key}-${i}`, name: `${key}-${i}`, discipline: 'Geral' })),
});
const dropsFor = (topic: string) => ({ drops: [1, 2, 3].map((i) => ({ title: `Drop ${i} de ${topic}`, content: `Conteúdo ${i} de ${topic}.` })) });

/** A good answer for whatever the request is about. */
const goodReply = (req: FakeRequest): FakeReply =>
  req.responseFormatName === 'topic_drops' ? { content: dropsFor(subjectOf(req).slice('topic:'.length)) } : { content: blueprintFor(itemKeyOf(req) ?? '?') };

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

async function runJob(t: TestService, name: string): Promise<Json> {
  return closedLog(t, await trigger(t, name), { timeoutMs: 30_000 });
}

const query = (t: TestService, text: string, values?: unknown[]) => t.service.database.pool.query(text, values);
const itemRow = async (t: TestService, id: number) => (await query(t, 'select * from harvest_items where id = $1', [id])).rows[0];
const blueprintRows = async (t: TestService, itemId: number) => (await query(t, 'select * from exam_blueprints where harvest_item_id = $1', [itemId])).rows;

async function createItems(t: TestService, keys: string[]): Promise<Record<string, Json>> {
  const items: Record<string, Json> = {};
  for (const key of keys) items[key] = await createItem(t, keyedItem(key));
  return items;
}

describe('transient LLM errors: retried per call, bounded', () => {
  let fake: FakeOpenAI;
  let proxy: DroppingProxy;
  let t: TestService;

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    proxy = await startDroppingProxy(fake.url);
    t = await startTestService(
      {
        OPENAI_BASE_URL: proxy.url,
        OPENAI_MAX_RETRIES: '2',
        OPENAI_TIMEOUT_SECONDS: '1',
        OPENAI_RETRY_AFTER_MAX_SECONDS: '2',
        LLM_CONCURRENCY: '16',
        EXTRACT_BATCH_SIZE: '50',
        DROPS_BATCH_SIZE: '50',
      },
      { llm: fake },
    );
  });
  afterAll(async () => {
    await t?.stop();
    await proxy?.close();
    await fake?.close();
  });

  it('retries 429, 5xx, 408, timeouts and connection errors with backoff, honouring Retry-After up to the cap', async () => {
    const s429 = { status: 429 };
    const recovering: Record<string, FakeReply[]> = {
      'r429': [s429],
      'r5xx': [{ status: 500 }, { status: 503 }],
      'r408': [{ status: 408 }],
      'rtimeout': [{ hang: true }],
      // A server's wait above the backoff but under the cap is honoured…
      'rafter-ms': [{ status: 429, headers: { 'retry-after-ms': '1600' } }],
      // …and one above the cap is cut to OPENAI_RETRY_AFTER_MAX_SECONDS (2 s).
      'rafter-cap': [{ status: 503, headers: { 'retry-after': '60' } }],
    };
    const failing: Record<string, FakeReply[]> = {
      'f429': [{ status: 429, headers: { 'retry-after': '1' } }],
      'f502': [{ status: 502 }],
      'ftimeout': [{ hang: true }],
      'f400': [{ status: 400 }],
    };
    const replies: Record<string, FakeReply[]> = { ...failing };
    for (const [key, faults] of Object.entries(recovering)) replies[key] = [...faults, { content: blueprintFor(key) }];
    const plan = script(replies, goodReply);
    fake.respond((req) => plan.respond(req));
    // Connection errors: the proxy closes the socket instead of answering.
    proxy.dropWhen((subject, n) => (subject === 'rconn' && n === 0) || subject === 'fconn');

    const okKeys = ['good', ...Object.keys(recovering), 'rconn'];
    const failKeys = [...Object.keys(failing), 'fconn'];
    const items = await createItems(t, [...okKeys, ...failKeys]);
    const sentBefore = proxy.requests.length;
    const started = Date.now();

    const log = await runJob(t, 'extract-blueprints');
    const elapsed = Date.now() - started;

    expect(log.status).toBe('COMPLETED');
    expect(log.items_processed).toBe(okKeys.length);
    expect(log.items_failed).toBe(failKeys.length);

    // Requests the SDK sent, per item: each retry is one more; a 400 is not retried.
    const sent = proxy.requests.slice(sentBefore);
    const sentAbout = (key: string) => sent.filter((r) => r.subject === key).length;
    const expectedSent: Record<string, number> = {
      good: 1, r429: 2, r5xx: 3, r408: 2, rtimeout: 2, 'rafter-ms': 2, 'rafter-cap': 2, rconn: 2,
      f429: 3, f502: 3, ftimeout: 3, fconn: 3, f400: 1,
    };
    expect(Object.fromEntries(Object.keys(expectedSent).map((k) => [k, sentAbout(k)]))).toEqual(expectedSent);
    // Every attempt counts in the run's usage.
    expect(log.metadata.llm.calls).toBe(sent.length);
    expect(sent.length).toBe(Object.values(expectedSent).reduce((a, b) => a + b, 0));

    // Waits: exponential backoff with jitter (≈1 s, then ≈2 s), Retry-After honoured, capped at 2 s.
    const [first, second] = gaps(proxy.arrivals('r5xx'));
    expect(first).toBeGreaterThanOrEqual(700);
    expect(first).toBeLessThan(1_400);
    expect(second).toBeGreaterThanOrEqual(1_450);
    expect(second).toBeLessThan(2_500);
    const [afterMs] = gaps(proxy.arrivals('rafter-ms'));
    expect(afterMs).toBeGreaterThanOrEqual(1_580);
    expect(afterMs).toBeLessThan(1_950);
    const [capped] = gaps(proxy.arrivals('rafter-cap'));
    expect(capped).toBeGreaterThanOrEqual(1_950);
    expect(capped).toBeLessThan(2_600);
    const f429gaps = gaps(proxy.arrivals('f429'));
    for (const gap of f429gaps) expect(gap).toBeGreaterThanOrEqual(980);
    // The slowest item: 3 timeouts of 1 s and two waits of ≈1 s and ≈2 s.
    expect(elapsed).toBeLessThan(12_000);

    for (const key of okKeys) {
      expect((await itemRow(t, items[key].id)).status, key).toBe('BLUEPRINT_DONE');
      expect(await blueprintRows(t, items[key].id), key).toHaveLength(1);
    }
    const reasons: Record<string, RegExp> = {
      f429: /^LLM error 429 after 3 attempts: Rate limit reached/,
      f502: /^LLM error 502 after 3 attempts/,
      ftimeout: /^LLM request timed out \(1 s\) after 3 attempts/,
      fconn: /^LLM unreachable after 3 attempts: Connection error/,
      f400: /^LLM error 400: Bad request/,
    };
    for (const key of failKeys) {
      const row = await itemRow(t, items[key].id);
      expect(row.status, key).toBe('BLUEPRINT_ERROR');
      expect(row.claimed_by_log_id, key).toBeNull();
      expect(row.error_message, key).toMatch(reasons[key]!);
      expect(await blueprintRows(t, items[key].id), key).toHaveLength(0);
    }

    // Each retry is logged with the wait it takes.
    const retryLogs = t.logs.filter((l) => l.harvestId === items.f429.id && /retry \d\/2/.test(String(l.msg)));
    expect(retryLogs.map((l) => l.msg)).toEqual([
      'LLM call failed (LLM error 429); retry 1/2 in 1.0 s',
      'LLM call failed (LLM error 429); retry 2/2 in 1.0 s',
    ]);
  });

  it('a drops topic whose calls keep failing is counted failed and writes no drops and no cache', async () => {
    fake.respond(goodReply);
    proxy.dropWhen(() => false);
    const item = await createItem(t, keyedItem('dd'));
    expect((await runJob(t, 'extract-blueprints')).status).toBe('COMPLETED');
    const [bp] = await blueprintRows(t, item.id);

    // Other blueprints from the previous test get their drops too; topic dd-1 recovers, dd-2 does not.
    const plan = script({ 'topic:dd-1': [{ status: 500 }, { content: dropsFor('dd-1') }], 'topic:dd-2': [{ status: 503 }] }, goodReply);
    fake.respond((req) => plan.respond(req));
    const { rows: [pending] } = await query(t, 'select count(*)::int as n from exam_blueprints where drops_generated_at is null');
    const sentBefore = proxy.requests.length;

    const log = await runJob(t, 'generate-drops');

    expect(log.status).toBe('COMPLETED');
    expect(log.items_failed).toBe(1);
    expect(log.items_processed).toBe(pending.n * 2 - 1);
    expect(log.metadata.llm.calls).toBe(proxy.requests.length - sentBefore);
    expect(plan.count('topic:dd-1')).toBe(2);
    expect(plan.count('topic:dd-2')).toBe(3);

    const { rows: dropRows } = await query(t, 'select topic_code from drops where blueprint_id = $1', [bp.id]);
    expect(dropRows.filter((d) => d.topic_code === 'dd-1')).toHaveLength(3);
    expect(dropRows.filter((d) => d.topic_code === 'dd-2')).toHaveLength(0);
    const { rows: cache } = await query(t, 'select hash from drop_cache where blueprint_id = $1', [bp.id]);
    expect(cache.map((c) => c.hash)).toEqual([sha256(`${bp.id}:dd-1`)]);
    const { rows: [after] } = await query(t, 'select drops_generated_at, drops_claimed_by_log_id from exam_blueprints where id = $1', [bp.id]);
    expect(after).toEqual({ drops_generated_at: null, drops_claimed_by_log_id: null });

    const failure = t.logs.find((l) => l.topic === 'dd-2' && /drops for topic dd-2 failed/.test(String(l.msg)));
    expect(failure?.reason).toMatch(/^LLM error 503 after 3 attempts/);
  });
});

describe('bad LLM output: at most one re-ask', () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService({ OPENAI_MAX_RETRIES: '2', LLM_CONCURRENCY: '16', EXTRACT_BATCH_SIZE: '50', DROPS_BATCH_SIZE: '50' });
  });
  afterAll(() => t?.stop());

  const bad: Record<string, FakeReply> = { ...BAD_BLUEPRINT_ANSWERS, emptyname: { content: { ...blueprintFor('x'), exam_name: '  ' } } };
  const reason: Record<string, RegExp> = { ...BAD_BLUEPRINT_REASONS, emptyname: /^model output breaks the rules: exam_name is empty \(after 2 asks\)$/ };

  it('asks once more with the same prompt; a good second answer is saved, a second bad one fails the item', async () => {
    const replies: Record<string, FakeReply[]> = {};
    for (const [kind, reply] of Object.entries(bad)) {
      replies[`${kind}-twice`] = [reply, reply];
      replies[`${kind}-once`] = [reply, { content: blueprintFor(`${kind}-once`) }];
    }
    replies['mixed'] = [bad.notjson!, bad.refusal!];
    const plan = script(replies, goodReply);
    t.llm.respond((req) => plan.respond(req));
    const keys = Object.keys(replies);
    const items = await createItems(t, keys);
    const requestsBefore = t.llm.requests.length;

    const log = await runJob(t, 'extract-blueprints');

    expect(log.status).toBe('COMPLETED');
    const failed = keys.filter((k) => k.endsWith('-twice') || k === 'mixed');
    expect(log.items_failed).toBe(failed.length);
    expect(log.items_processed).toBe(keys.length - failed.length);
    // Exactly two calls per item (bad output is not retried as transient), each counted.
    for (const key of keys) expect(plan.count(key), key).toBe(2);
    expect(t.llm.requests.length - requestsBefore).toBe(keys.length * 2);
    expect(log.metadata.llm.calls).toBe(keys.length * 2);
    // The re-ask is the same prompt.
    for (const key of keys) {
      const [a, b] = plan.requests(key);
      expect(b!.messages, key).toEqual(a!.messages);
      expect(b!.responseFormatName).toBe(a!.responseFormatName);
    }

    for (const kind of Object.keys(bad)) {
      const twice = await itemRow(t, items[`${kind}-twice`].id);
      expect(twice.status, kind).toBe('BLUEPRINT_ERROR');
      expect(twice.claimed_by_log_id, kind).toBeNull();
      expect(twice.error_message, kind).toMatch(reason[kind]!);
      expect(await blueprintRows(t, items[`${kind}-twice`].id), kind).toHaveLength(0);

      const once = await itemRow(t, items[`${kind}-once`].id);
      expect(once.status, kind).toBe('BLUEPRINT_DONE');
      expect(once.error_message).toBeNull();
      const saved = await blueprintRows(t, items[`${kind}-once`].id);
      expect(saved).toHaveLength(1);
      expect(saved[0].exam_name).toBe(`Concurso ${kind}-once`);
      expect(saved[0].raw_output).toEqual(blueprintFor(`${kind}-once`));
    }
    const mixed = await itemRow(t, items.mixed.id);
    expect(mixed.status).toBe('BLUEPRINT_ERROR');
    expect(mixed.error_message).toMatch(/^model refused: I cannot help with that request\. \(after 2 asks; first answer: model output is not valid JSON/);
    expect(await blueprintRows(t, items.mixed.id)).toHaveLength(0);

    const reasks = t.logs.filter((l) => l.harvestId === items['notopics-once'].id && /asking once more/.test(String(l.msg)));
    expect(reasks).toHaveLength(1);
  });

  it('drops: an unusable answer is asked for once more; a topic that stays unusable writes nothing', async () => {
    await query(t, 'update exam_blueprints set drops_generated_at = now()');
    t.llm.respond(goodReply);
    const item = await createItem(t, keyedItem('dz'));
    expect((await runJob(t, 'extract-blueprints')).status).toBe('COMPLETED');
    const [bp] = await blueprintRows(t, item.id);

    const plan = script(
      {
        'topic:dz-1': [{ content: { drops: [] } }, { content: { drops: [{ title: 'Só título', content: ' ' }] } }],
        'topic:dz-2': [{ content: { drops: [{ title: '', content: 'x' }] } }, { content: dropsFor('dz-2') }],
      },
      goodReply,
    );
    t.llm.respond((req) => plan.respond(req));

    const log = await runJob(t, 'generate-drops');

    expect(log.status).toBe('COMPLETED');
    expect(log.items_processed).toBe(1);
    expect(log.items_failed).toBe(1);
    expect(log.metadata.llm.calls).toBe(4);
    expect(plan.count('topic:dz-1')).toBe(2);
    expect(plan.count('topic:dz-2')).toBe(2);

    const { rows: dropRows } = await query(t, 'select topic_code, title from drops where blueprint_id = $1 order by topic_code, position', [bp.id]);
    expect(dropRows.filter((d) => d.topic_code === 'dz-1')).toHaveLength(0);
    expect(dropRows.filter((d) => d.topic_code === 'dz-2').map((d) => d.title)).toEqual(dropsFor('dz-2').drops.map((d) => d.title));
    const { rows: cache } = await query(t, 'select hash from drop_cache where blueprint_id = $1', [bp.id]);
    expect(cache.map((c) => c.hash)).toEqual([sha256(`${bp.id}:dz-2`)]);
    const { rows: [after] } = await query(t, 'select drops_generated_at from exam_blueprints where id = $1', [bp.id]);
    expect(after.drops_generated_at).toBeNull();

    const failure = t.logs.find((l) => l.topic === 'dz-1' && /failed/.test(String(l.msg)));
    expect(failure?.reason).toBe('model output breaks the rules: drop 1 is empty (after 2 asks; first answer: model output breaks the rules: no drops)');
  });
});

describe('a rejected key or an unknown model fails the run once, whatever the retries: configuration is not retried', () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService({ OPENAI_MAX_RETRIES: '2', LLM_CONCURRENCY: '1' });
  });
  afterAll(() => t?.stop());

  it.each([
    [401, /rejected the API key \(401\): check OPENAI_API_KEY/, ['OPENAI_API_KEY', 'OPENAI_BASE_URL']],
    [403, /rejected the API key \(403\): check OPENAI_API_KEY/, ['OPENAI_API_KEY', 'OPENAI_BASE_URL']],
    [404, /model "gpt-4o-mini" or endpoint not found \(404\): check OPENAI_MODEL and OPENAI_BASE_URL/, ['OPENAI_MODEL', 'OPENAI_BASE_URL']],
  ])('%i: run FAILED after one request, not retried, dead-lettered, items back to PENDING', async (status, message, variables) => {
    const { rows } = await query(t, `select id from harvest_items where status = 'PENDING'`);
    const ids: number[] = rows.length ? rows.map((r) => r.id) : Object.values(await createItems(t, ['j1', 'j2', 'j3'])).map((i) => i.id);
    t.llm.respond(() => ({ status }));
    const requestsBefore = t.llm.requests.length;

    const jobId = await trigger(t, 'extract-blueprints');
    const log = await closedLog(t, jobId);

    expect(log.status).toBe('FAILED');
    expect(log.error_message).toMatch(message);
    expect(log.items_processed).toBe(0);
    expect(log.items_failed).toBe(0);
    expect(log.metadata.llm.calls).toBe(1);
    expect(t.llm.requests.length - requestsBefore).toBe(1);
    await eventually(async () => {
      const { rows: items } = await query(t, 'select status, claimed_by_log_id, error_message from harvest_items where id = any($1)', [ids]);
      return items.every((r) => r.status === 'PENDING' && r.claimed_by_log_id === null && r.error_message === null);
    }, { timeoutMs: 5_000 });
    expect((await query(t, 'select count(*)::int as n from exam_blueprints')).rows[0].n).toBe(0);

    // No retry can fix a setting: the log says so, and pg-boss fails the job for good at once.
    expect(log.metadata).toMatchObject({ will_retry: false, dead_lettered: true, configuration_error: { variables } });
    await eventually(async () => (await t.service.boss.findJobs('extract-blueprints', { id: jobId }))[0]?.state === 'failed');
    const letters = await t.service.boss.findJobs(deadLetterQueueOf('extract-blueprints'));
    expect(letters.filter((l) => l.sourceId === jobId)).toHaveLength(1);
  });
});
