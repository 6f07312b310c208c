import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeReply, FakeRequest } from '../testkit/fake-openai.ts';
import { call, expectError, postJson, type Json } from './support/http.ts';
import { closedLog, createItem, itemKeyOf, keyedItem, trigger, userMessage } from './support/pipeline.ts';
import { startTestService, type TestService } from './support/service.ts';

/**
 * POST /api/blueprints/{id}/regenerate-drops, carried out by real generate-drops runs against the
 * fake OpenAI server: only the chosen topics, from the model (bypassCache, replacing the old drops)
 * or from the cache (no LLM call), and the request cleared once done.
 */

const topicCodeOf = (req: FakeRequest) => /^Topic: Tópico ([\w-]+)$/m.exec(userMessage(req))?.[1];
const topicsOf = (key: string) => [1, 2, 3].map((i) => ({ code: `${key}-${i}`, name: `Tópico ${key}-${i}`, discipline: 'Disciplina' }));

/** Drops carry the responder's version, so a test can tell new content from old. */
let version = 1;
const failing = new Set<string>();
function responder(req: FakeRequest): FakeReply {
  if (req.responseFormatName === 'exam_blueprint') return { content: { exam_name: `Concurso ${itemKeyOf(req)}`, organization: null, topics: topicsOf(itemKeyOf(req)!) } };
  const code = topicCodeOf(req)!;
  if (failing.has(code)) return { status: 500 };
  return { content: { drops: [1, 2].map((i) => ({ title: `Drop ${i} de ${code}`, content: `v${version}: conteúdo ${i} de ${code}` })) } };
}

async function runJob(t: TestService, name: string): Promise<Json> {
  return closedLog(t, await trigger(t, name));
}

describe('regenerate-drops, through real generate-drops runs', () => {
  let t: TestService;
  let bp: Json;
  const query = async (text: string, values: unknown[] = []) => (await t.service.database.pool.query(text, values)).rows;
  const drops = () => query('select id, topic_code, position, title, content from drops where blueprint_id = $1 order by topic_code, position', [bp.id]);
  const ofTopic = (rows: Json[], code: string) => rows.filter((d) => d.topic_code === code);
  const cachedContent = async (code: string) =>
    (await query(`select payload from drop_cache where blueprint_id = $1 and hash = encode(sha256(convert_to($2, 'UTF8')), 'hex')`, [bp.id, `${bp.id}:${code}`]))[0]?.payload.drops[0].content;
  const requestsSince = (n: number) => t.llm.requests.slice(n).filter((r) => r.responseFormatName === 'topic_drops').map(topicCodeOf).sort();

  beforeAll(async () => {
    t = await startTestService({ LLM_CONCURRENCY: '2' });
    t.llm.respond(responder);
    const item = await createItem(t, keyedItem('R'));
    expect((await runJob(t, 'extract-blueprints')).status).toBe('COMPLETED');
    [bp] = await query('select * from exam_blueprints where harvest_item_id = $1', [item.id]);
    expect((await runJob(t, 'generate-drops')).items_processed).toBe(3);
  });
  afterAll(() => t?.stop());

  it('bypassCache: only the chosen topics go to the model, their drops and cache are replaced, the others are untouched', async () => {
    const before = await drops();
    version = 2;
    const res = await postJson(t, `/api/blueprints/${bp.id}/regenerate-drops`, { topicCodes: ['R-2'], bypassCache: true });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ id: bp.id, drops_generated_at: null, drops_regenerate: { topic_codes: ['R-2'], bypass_cache: true } });
    expect(Date.parse(res.body.drops_regenerate.requested_at)).not.toBeNaN();

    const requests = t.llm.requests.length;
    const log = await runJob(t, 'generate-drops');
    expect(log.status).toBe('COMPLETED');
    expect(log.items_processed).toBe(1);
    expect(log.metadata).toMatchObject({ blueprints: 1, blueprints_completed: 1, cache_bypassed: 1, cache_hits: 0 });
    expect(requestsSince(requests)).toEqual(['R-2']);

    const after = await drops();
    expect(ofTopic(after, 'R-2').map((d) => d.content)).toEqual(['v2: conteúdo 1 de R-2', 'v2: conteúdo 2 de R-2']);
    expect(ofTopic(after, 'R-2').map((d) => d.position)).toEqual([1, 2]);
    expect(await cachedContent('R-2')).toBe('v2: conteúdo 1 de R-2');
    for (const code of ['R-1', 'R-3']) {
      expect(ofTopic(after, code)).toEqual(ofTopic(before, code));
      expect(await cachedContent(code)).toBe(`v1: conteúdo 1 de ${code}`);
    }
    const saved = (await call(t, `/api/blueprints/${bp.id}`)).body;
    expect(saved.drops_regenerate).toBeNull();
    expect(saved.drops_generated_at).not.toBeNull();
  });

  it('bypassCache: a topic the model fails keeps its old drops, and the next run asks only for it', async () => {
    version = 3;
    failing.add('R-3');
    expect((await postJson(t, `/api/blueprints/${bp.id}/regenerate-drops`, { topicCodes: ['R-1', 'R-3'], bypassCache: true })).status).toBe(202);
    let requests = t.llm.requests.length;
    const first = await runJob(t, 'generate-drops');
    expect(first.items_processed).toBe(1);
    expect(first.items_failed).toBe(1);
    expect(requestsSince(requests)).toEqual(['R-1', 'R-3']);
    let rows = await drops();
    expect(ofTopic(rows, 'R-1').map((d) => d.content)).toEqual(['v3: conteúdo 1 de R-1', 'v3: conteúdo 2 de R-1']);
    expect(ofTopic(rows, 'R-3').map((d) => d.content)).toEqual(['v1: conteúdo 1 de R-3', 'v1: conteúdo 2 de R-3']);
    const pending = (await call(t, `/api/blueprints/${bp.id}`)).body;
    expect(pending.drops_generated_at).toBeNull();
    expect(pending.drops_regenerate).toMatchObject({ topic_codes: ['R-3'], bypass_cache: true });

    failing.clear();
    requests = t.llm.requests.length;
    const second = await runJob(t, 'generate-drops');
    expect(second).toMatchObject({ status: 'COMPLETED', items_processed: 1, items_failed: 0 });
    expect(requestsSince(requests)).toEqual(['R-3']);
    rows = await drops();
    expect(ofTopic(rows, 'R-3').map((d) => d.content)).toEqual(['v3: conteúdo 1 de R-3', 'v3: conteúdo 2 de R-3']);
    expect(ofTopic(rows, 'R-1').map((d) => d.content)).toEqual(['v3: conteúdo 1 de R-1', 'v3: conteúdo 2 de R-1']);
    expect((await call(t, `/api/blueprints/${bp.id}`)).body.drops_regenerate).toBeNull();
  });

  it('without bypassCache every topic is saved again from the cache: no LLM call, missing drops filled, the rest kept', async () => {
    await query(`delete from drops where blueprint_id = $1 and topic_code = 'R-2' and position = 2`, [bp.id]);
    const before = await drops();
    version = 4;
    const res = await call(t, `/api/blueprints/${bp.id}/regenerate-drops`, { method: 'POST' });
    expect(res.status).toBe(202);
    expect(res.body.drops_regenerate).toMatchObject({ topic_codes: null, bypass_cache: false });

    const requests = t.llm.requests.length;
    const log = await runJob(t, 'generate-drops');
    expect(log).toMatchObject({ status: 'COMPLETED', items_processed: 3, items_failed: 0 });
    expect(log.metadata).toMatchObject({ cache_hits: 3, cache_bypassed: 0 });
    expect(log.metadata.llm.calls).toBe(0);
    expect(t.llm.requests.length).toBe(requests);
    const after = await drops();
    expect(after).toHaveLength(6);
    expect(after.filter((d) => before.some((b) => b.id === d.id))).toEqual(before);
    expect(ofTopic(after, 'R-2').map((d) => d.content)).toEqual(['v2: conteúdo 1 de R-2', 'v2: conteúdo 2 de R-2']);
    expect((await call(t, `/api/blueprints/${bp.id}`)).body.drops_regenerate).toBeNull();
  });
});

describe('regenerate-drops refusals', () => {
  let t: TestService;
  let bpId: number;
  const query = async (text: string, values: unknown[] = []) => (await t.service.database.pool.query(text, values)).rows;
  const blueprintRow = async () => (await query('select * from exam_blueprints where id = $1', [bpId]))[0];

  beforeAll(async () => {
    // ROLE=api: no run and no reaper touch the claim set below.
    t = await startTestService({ ROLE: 'api' });
    const item = await createItem(t, keyedItem('Q'));
    [{ id: bpId }] = await query(
      `insert into exam_blueprints (harvest_item_id, exam_name, topics, raw_output, model, drops_generated_at)
       values ($1, 'Exam', $2, '{}', 'gpt-test', now()) returning id`,
      [item.id, JSON.stringify(topicsOf('Q'))],
    );
  });
  afterAll(() => t?.stop());

  it('400 for unknown topics (named), an empty list, a bad field or id; 404 unknown; 409 while a run writes its drops; nothing changed', async () => {
    const before = await blueprintRow();
    const path = `/api/blueprints/${bpId}/regenerate-drops`;
    expectError(await postJson(t, path, { topicCodes: ['Q-1', 'NOPE', 'Q-9'] }), 400, new RegExp(`^topicCodes: blueprint ${bpId} has no topic NOPE, Q-9 \\(its topics: Q-1, Q-2, Q-3\\)$`));
    expectError(await postJson(t, path, { topicCodes: [] }), 400, /topicCodes must name at least one topic/);
    expectError(await postJson(t, path, { bypassCache: 'yes' }), 400, /bypassCache must be true or false/);
    expectError(await postJson(t, path, { topics: ['Q-1'] }), 400, /unknown field: topics/);
    expectError(await postJson(t, '/api/blueprints/abc/regenerate-drops', {}), 400, /id must be a number/);
    expectError(await postJson(t, '/api/blueprints/99999999/regenerate-drops', {}), 404, /^no blueprint with id 99999999$/);

    await query('update exam_blueprints set drops_claimed_by_log_id = 777 where id = $1', [bpId]);
    const claimed = await blueprintRow();
    expectError(await postJson(t, path, { bypassCache: true }), 409, new RegExp(`^blueprint ${bpId}: a generate-drops run \\(log 777\\) is writing its drops`));
    expect(await blueprintRow()).toEqual(claimed);
    await query('update exam_blueprints set drops_claimed_by_log_id = null where id = $1', [bpId]);
    expect(await blueprintRow()).toEqual(before);

    // Once the run is over the request is taken; a second one replaces it.
    expect((await postJson(t, path, { topicCodes: ['Q-1', 'Q-1'] })).body.drops_regenerate).toMatchObject({ topic_codes: ['Q-1'], bypass_cache: false });
    const replaced = await postJson(t, path, { topicCodes: ['Q-2'], bypassCache: true });
    expect(replaced.body.drops_regenerate).toMatchObject({ topic_codes: ['Q-2'], bypass_cache: true });
    expect((await blueprintRow()).drops_regenerate).toEqual(replaced.body.drops_regenerate);
  });
});
