import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeReply, FakeRequest } from '../testkit/fake-openai.ts';
import { readJson, type Json } from './support/http.ts';
import { closedLog, createItem, itemKeyOf, keyedItem, trigger, userMessage } from './support/pipeline.ts';
import { startTestService, type TestService } from './support/service.ts';

/**
 * generate-drops end to end, on blueprints made by a real extract-blueprints run: drops per
 * topic, the drop cache, never generating twice, and retrying only the topic that failed.
 */

/** generate-drops prompts carry `Topic: <name>`; our topic names end with their code. */
const topicCodeOf = (req: FakeRequest) => /^Topic: Tópico ([\w-]+)$/m.exec(userMessage(req))?.[1];
const dropRequests = (t: TestService) => t.llm.requests.filter((r) => r.responseFormatName === 'topic_drops');

/** Item X gets topics X-1..X-n. */
const TOPIC_COUNTS: Record<string, number> = { X: 2, Y: 3, Z: 3, W: 1 };
const topicsOf = (key: string) =>
  Array.from({ length: TOPIC_COUNTS[key] ?? 1 }, (_, i) => ({ code: `${key}-${i + 1}`, name: `Tópico ${key}-${i + 1}`, discipline: `Disciplina ${key}` }));

/** Topic X-k gets k + 2 drops (3, 4, 5…), so counts differ per topic. */
const dropCountOf = (code: string) => Number(code.split('-')[1]) + 2;
const dropsFor = (code: string) => ({
  drops: Array.from({ length: dropCountOf(code) }, (_, i) => ({
    title: `  Drop ${i + 1} de ${code}  `,
    content: `  Conteúdo ${i + 1} do tópico ${code}: uma ideia, um exemplo.  `,
  })),
});

function standardResponder(overrides: Record<string, FakeReply> = {}) {
  return (req: FakeRequest): FakeReply => {
    if (req.responseFormatName === 'exam_blueprint') {
      const key = itemKeyOf(req) ?? '?';
      return { content: { exam_name: `Concurso ${key}`, organization: null, topics: topicsOf(key) } };
    }
    const code = topicCodeOf(req) ?? '?';
    return overrides[code] ?? { content: dropsFor(code) };
  };
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Triggers a manual run over HTTP and waits for its job_logs row to close. */
async function runJob(t: TestService, name: string): Promise<Json> {
  return closedLog(t, await trigger(t, name));
}

async function createItemAndBlueprint(t: TestService, key: string): Promise<Json> {
  const item = await createItem(t, keyedItem(key));
  const log = await runJob(t, 'extract-blueprints');
  expect(log.status).toBe('COMPLETED');
  const { rows } = await t.service.database.pool.query('select * from exam_blueprints where harvest_item_id = $1', [item.id]);
  expect(rows).toHaveLength(1);
  return rows[0];
}

async function blueprint(t: TestService, id: number): Promise<Json> {
  const res = await t.http(`/api/blueprints/${id}`);
  expect(res.status).toBe(200);
  return readJson(res);
}

async function dropsOf(t: TestService, blueprintId: number): Promise<Json[]> {
  const res = await t.http(`/api/drops?blueprintId=${blueprintId}&limit=100`);
  expect(res.status).toBe(200);
  return readJson(res);
}

async function dropCount(t: TestService): Promise<number> {
  const { rows } = await t.service.database.pool.query('select count(*)::int as n from drops');
  return rows[0].n;
}

describe('generate-drops, end to end', () => {
  let t: TestService;
  let bpX: Json;
  let bpY: Json;

  beforeAll(async () => {
    t = await startTestService({ LLM_CONCURRENCY: '2', DROPS_BATCH_SIZE: '5' });
    t.llm.respond(standardResponder());
    bpX = await createItemAndBlueprint(t, 'X');
    bpY = await createItemAndBlueprint(t, 'Y');
  });
  afterAll(() => t?.stop());

  it('writes the drops of every topic, caches them and marks the blueprints done', async () => {
    t.llm.respond(standardResponder());
    const requestsBefore = t.llm.requests.length;
    const log = await runJob(t, 'generate-drops');

    expect(log.status).toBe('COMPLETED');
    expect(log.items_processed).toBe(5);
    expect(log.items_failed).toBe(0);
    expect(log.metadata).toMatchObject({ trigger: 'manual', attempt: 1, cache_hits: 0, blueprints: 2, blueprints_completed: 2 });
    expect(log.metadata.llm.calls).toBe(5);
    expect(log.metadata.llm.total_tokens).toBeGreaterThan(0);

    // One LLM request per topic, each about its exam and topic.
    const requests = t.llm.requests.slice(requestsBefore);
    expect(requests.every((r) => r.responseFormatName === 'topic_drops')).toBe(true);
    expect(requests.map(topicCodeOf).sort()).toEqual(['X-1', 'X-2', 'Y-1', 'Y-2', 'Y-3']);
    const y2 = requests.find((r) => topicCodeOf(r) === 'Y-2')!;
    expect(userMessage(y2)).toContain('Exam: Concurso Y');
    expect(userMessage(y2)).toContain('Discipline: Disciplina Y');

    for (const bp of [bpX, bpY]) {
      const drops = await dropsOf(t, bp.id);
      for (const topic of bp.topics as Json[]) {
        const ofTopic = drops.filter((d) => d.topic_code === topic.code);
        const n = dropCountOf(topic.code);
        expect(ofTopic.map((d) => d.position)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
        // Saved trimmed, in the model's order.
        expect(ofTopic.map((d) => d.title)).toEqual(Array.from({ length: n }, (_, i) => `Drop ${i + 1} de ${topic.code}`));
        expect(ofTopic[0].content).toBe(`Conteúdo 1 do tópico ${topic.code}: uma ideia, um exemplo.`);
      }
      expect(drops).toHaveLength((bp.topics as Json[]).reduce((sum, topic) => sum + dropCountOf(topic.code), 0));

      const { rows: cache } = await t.service.database.pool.query('select hash, payload from drop_cache where blueprint_id = $1', [bp.id]);
      expect(cache.map((c) => c.hash).sort()).toEqual((bp.topics as Json[]).map((topic) => sha256(`${bp.id}:${topic.code}`)).sort());
      for (const topic of bp.topics as Json[]) {
        const row = cache.find((c) => c.hash === sha256(`${bp.id}:${topic.code}`));
        expect(row.payload.drops).toHaveLength(dropCountOf(topic.code));
      }

      const saved = await blueprint(t, bp.id);
      expect(saved.drops_generated_at).not.toBeNull();
      expect(saved.drops_claimed_by_log_id).toBeNull();
    }
    // Filtering by topic over HTTP.
    const onlyY3 = await readJson(await t.http(`/api/drops?blueprintId=${bpY.id}&topicCode=Y-3`));
    expect(onlyY3.map((d: Json) => d.position)).toEqual([1, 2, 3, 4, 5]);
  });

  it('a second run calls no LLM and adds no drops', async () => {
    t.llm.respond(standardResponder());
    const before = await dropCount(t);
    const requestsBefore = t.llm.requests.length;
    const log = await runJob(t, 'generate-drops');
    expect(log.status).toBe('COMPLETED');
    expect(log.items_processed).toBe(0);
    expect(log.items_failed).toBe(0);
    expect(log.metadata.llm.calls).toBe(0);
    expect(t.llm.requests.length).toBe(requestsBefore);
    expect(await dropCount(t)).toBe(before);
  });

  it('regenerating a blueprint reads the cache and never duplicates drops', async () => {
    t.llm.respond(standardResponder());
    await t.service.database.pool.query('update exam_blueprints set drops_generated_at = null where id = $1', [bpY.id]);
    const before = await dropCount(t);
    const dropsYBefore = await dropsOf(t, bpY.id);
    const requestsBefore = t.llm.requests.length;

    const log = await runJob(t, 'generate-drops');

    expect(log.status).toBe('COMPLETED');
    expect(log.items_processed).toBe(3);
    expect(log.items_failed).toBe(0);
    expect(log.metadata.cache_hits).toBe(3);
    expect(log.metadata.llm.calls).toBe(0);
    expect(t.llm.requests.length).toBe(requestsBefore);
    expect(await dropCount(t)).toBe(before);
    expect((await dropsOf(t, bpY.id)).map((d) => d.id)).toEqual(dropsYBefore.map((d) => d.id));
    expect((await blueprint(t, bpY.id)).drops_generated_at).not.toBeNull();
  });

  it('a topic with an unusable answer fails alone, and the next run retries only that topic', async () => {
    t.llm.respond(standardResponder());
    const bpZ = await createItemAndBlueprint(t, 'Z');

    t.llm.respond(standardResponder({ 'Z-2': { content: { drops: [] } } }));
    let requestsBefore = t.llm.requests.length;
    const first = await runJob(t, 'generate-drops');

    expect(first.status).toBe('COMPLETED');
    expect(first.items_processed).toBe(2);
    expect(first.items_failed).toBe(1);
    expect(first.metadata).toMatchObject({ cache_hits: 0, blueprints: 1, blueprints_completed: 0 });
    // Z-2's unusable answer is asked for once more before the topic fails.
    expect(first.metadata.llm.calls).toBe(4);
    expect(t.llm.requests.slice(requestsBefore).map(topicCodeOf).sort()).toEqual(['Z-1', 'Z-2', 'Z-2', 'Z-3']);
    let saved = await blueprint(t, bpZ.id);
    expect(saved.drops_generated_at).toBeNull();
    expect(saved.drops_claimed_by_log_id).toBeNull();
    let drops = await dropsOf(t, bpZ.id);
    expect(drops.filter((d) => d.topic_code === 'Z-2')).toHaveLength(0);
    expect(drops.filter((d) => d.topic_code === 'Z-1')).toHaveLength(dropCountOf('Z-1'));
    expect(drops.filter((d) => d.topic_code === 'Z-3')).toHaveLength(dropCountOf('Z-3'));
    const { rows: cacheZ2 } = await t.service.database.pool.query('select 1 from drop_cache where blueprint_id = $1 and hash = $2', [bpZ.id, sha256(`${bpZ.id}:Z-2`)]);
    expect(cacheZ2).toHaveLength(0);

    // The model answers properly now: only Z-2 goes to it, the others come from the cache.
    t.llm.respond(standardResponder());
    requestsBefore = t.llm.requests.length;
    const second = await runJob(t, 'generate-drops');

    expect(second.status).toBe('COMPLETED');
    expect(second.items_processed).toBe(3);
    expect(second.items_failed).toBe(0);
    expect(second.metadata).toMatchObject({ cache_hits: 2, blueprints: 1, blueprints_completed: 1 });
    expect(second.metadata.llm.calls).toBe(1);
    expect(t.llm.requests.slice(requestsBefore).map(topicCodeOf)).toEqual(['Z-2']);
    saved = await blueprint(t, bpZ.id);
    expect(saved.drops_generated_at).not.toBeNull();
    drops = await dropsOf(t, bpZ.id);
    for (const code of ['Z-1', 'Z-2', 'Z-3']) {
      expect(drops.filter((d) => d.topic_code === code).map((d) => d.position)).toEqual(Array.from({ length: dropCountOf(code) }, (_, i) => i + 1));
    }
  });

  it('a blueprint whose only topic fails stays without drops and is picked up by the next run', async () => {
    // W's one topic fails (HTTP 500): W keeps drops_generated_at null, is released, and is retried.
    t.llm.respond(standardResponder());
    const bpW = await createItemAndBlueprint(t, 'W');
    t.llm.respond(standardResponder({ 'W-1': { status: 500 } }));
    const first = await runJob(t, 'generate-drops');
    expect(first.status).toBe('COMPLETED');
    expect(first.items_failed).toBe(1);
    expect(first.items_processed).toBe(0);
    expect((await blueprint(t, bpW.id)).drops_generated_at).toBeNull();

    t.llm.respond(standardResponder());
    const requestsBefore = t.llm.requests.length;
    const second = await runJob(t, 'generate-drops');
    expect(second.items_processed).toBe(1);
    expect(t.llm.requests.slice(requestsBefore).map(topicCodeOf)).toEqual(['W-1']);
    expect((await blueprint(t, bpW.id)).drops_generated_at).not.toBeNull();
    expect(dropRequests(t).filter((r) => topicCodeOf(r) === 'W-1')).toHaveLength(2);
  });
});
