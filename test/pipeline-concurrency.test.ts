import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobContext, JobOutcome } from '../src/jobs/job.ts';
import { createDb, type Database } from '../src/db/client.ts';
import { extractBlueprints } from '../src/jobs/extract-blueprints.ts';
import { generateDrops } from '../src/jobs/generate-drops.ts';
import { createLlm } from '../src/llm/openai.ts';
import { createLogger } from '../src/logger.ts';
import { startFakeOpenAI, type FakeOpenAI, type FakeReply, type FakeRequest } from '../testkit/fake-openai.ts';
import type { Json } from './support/http.ts';
import { itemKeyOf, userMessage } from './support/pipeline.ts';
import { createTestDatabase, type TestDatabase } from './support/postgres.ts';
import { eventually, startTestService, type TestService } from './support/service.ts';

/** Two runs at once never take the same item: the claims, exercised by our real handlers. */

const examOf = (req: FakeRequest) => /^Exam: (.*)$/m.exec(userMessage(req))?.[1];
const topicOf = (req: FakeRequest) => /^Topic: (.*)$/m.exec(userMessage(req))?.[1];

/** Answers every request after a short pause, so concurrent runs really overlap. */
function slowResponder(delayMs: number) {
  return async (req: FakeRequest): Promise<FakeReply> => {
    await sleep(delayMs);
    if (req.responseFormatName === 'exam_blueprint') {
      const key = itemKeyOf(req) ?? '?';
      return {
        content: {
          exam_name: `Concurso ${key}`,
          organization: null,
          topics: [
            { code: 'T1', name: `Tema 1 de ${key}`, discipline: 'Geral' },
            { code: 'T2', name: `Tema 2 de ${key}`, discipline: 'Geral' },
          ],
        },
      };
    }
    return { content: { drops: [{ title: `Drop de ${topicOf(req)}`, content: 'Uma ideia com um exemplo.' }] } };
  };
}

function countBy<T>(values: T[]): Map<T, number> {
  const counts = new Map<T, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return counts;
}

describe('concurrent runs of the real handlers on one database', () => {
  let database: TestDatabase;
  let a: Database;
  let b: Database;
  let fake: FakeOpenAI;
  const logger = createLogger('silent');

  beforeAll(async () => {
    database = await createTestDatabase();
    // Two pools, as two instances would have.
    a = createDb(database.url, { max: 6 });
    b = createDb(database.url, { max: 6 });
    fake = await startFakeOpenAI();
  });
  afterAll(async () => {
    await fake?.close();
    await a?.close();
    await b?.close();
    await database?.drop();
  });

  async function openLog(db: Database, jobName: string): Promise<number> {
    const { rows } = await db.pool.query(`insert into job_logs (job_name, status) values ($1, 'STARTED') returning id`, [jobName]);
    return rows[0].id;
  }

  function context(db: Database, logId: number): JobContext {
    const llm = createLlm({ apiKey: 'sk-test', baseURL: fake.url, model: 'gpt-test', timeoutMs: 30_000, maxRetries: 0 });
    return { db: db.db, llm, logger, signal: new AbortController().signal, logId, settings: { extractBatchSize: 10, llmConcurrency: 4, dropsBatchSize: 10 }, progress: () => {} };
  }

  it('six extract-blueprints runs at once over 30 items: every item is sent to the LLM once and gets one blueprint', async () => {
    fake.respond(slowResponder(20));
    for (let i = 1; i <= 30; i++) {
      await a.pool.query('insert into harvest_items (title, content) values ($1, $2)', [`Edital ${i}`, `Edital ${i} [[item:n${i}]]`]);
    }
    const pools = [a, b, a, b, a, b];
    const logIds = await Promise.all(pools.map((db) => openLog(db, 'extract-blueprints')));

    const outcomes: JobOutcome[] = await Promise.all(pools.map((db, i) => extractBlueprints(context(db, logIds[i]!))));

    expect(outcomes.reduce((sum, o) => sum + o.itemsProcessed, 0)).toBe(30);
    expect(outcomes.reduce((sum, o) => sum + o.itemsFailed, 0)).toBe(0);
    // Each run took at most its batch.
    for (const o of outcomes) expect(o.metadata?.items_claimed).toBeLessThanOrEqual(10);

    const requests = fake.requests.filter((r) => r.responseFormatName === 'exam_blueprint');
    const perItem = countBy(requests.map(itemKeyOf));
    expect(perItem.size).toBe(30);
    expect([...perItem.values()].every((n) => n === 1)).toBe(true);
    expect(requests).toHaveLength(30);

    const { rows: perBlueprint } = await a.pool.query('select harvest_item_id, count(*)::int as n from exam_blueprints group by harvest_item_id');
    expect(perBlueprint).toHaveLength(30);
    expect(perBlueprint.every((r) => r.n === 1)).toBe(true);
    const { rows: statuses } = await a.pool.query('select status, count(*)::int as n from harvest_items group by status');
    expect(statuses).toEqual([{ status: 'BLUEPRINT_DONE', n: 30 }]);
  });

  it('four generate-drops runs at once: every topic of every blueprint is sent to the LLM once', async () => {
    fake.respond(slowResponder(10));
    const requestsBefore = fake.requests.length;
    const pools = [a, b, a, b];
    const logIds = await Promise.all(pools.map((db) => openLog(db, 'generate-drops')));

    const outcomes = await Promise.all(pools.map((db, i) => generateDrops(context(db, logIds[i]!))));

    // 30 blueprints × 2 topics.
    expect(outcomes.reduce((sum, o) => sum + o.itemsProcessed, 0)).toBe(60);
    expect(outcomes.reduce((sum, o) => sum + Number(o.metadata?.blueprints ?? 0), 0)).toBe(30);
    const requests = fake.requests.slice(requestsBefore);
    const perTopic = countBy(requests.map((r) => `${examOf(r)}|${topicOf(r)}`));
    expect(perTopic.size).toBe(60);
    expect([...perTopic.values()].every((n) => n === 1)).toBe(true);

    const { rows: drops } = await a.pool.query('select blueprint_id, topic_code, count(*)::int as n from drops group by 1, 2');
    expect(drops).toHaveLength(60);
    expect(drops.every((r) => r.n === 1)).toBe(true);
    const { rows: cache } = await a.pool.query('select count(*)::int as n from drop_cache');
    expect(cache[0].n).toBe(60);
    const { rows: left } = await a.pool.query('select count(*)::int as n from exam_blueprints where drops_generated_at is null or drops_claimed_by_log_id is not null');
    expect(left[0].n).toBe(0);
  });
});

describe('two service instances on one database', () => {
  let t1: TestService;
  let t2: TestService;

  beforeAll(async () => {
    t1 = await startTestService({ EXTRACT_BATCH_SIZE: '10', LLM_CONCURRENCY: '4' });
    t2 = await startTestService({ EXTRACT_BATCH_SIZE: '10', LLM_CONCURRENCY: '4' }, { database: t1.database, llm: t1.llm });
  });
  afterAll(async () => {
    await t2?.stop();
    await t1?.stop();
  });

  it('runs triggered on both instances process each of 30 items exactly once, one run at a time', async () => {
    t1.llm.respond(slowResponder(20));
    for (let i = 1; i <= 30; i++) {
      const res = await t1.http('/api/harvest-items', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ title: `Edital ${i}`, content: `Edital ${i} [[item:s${i}]]` }),
      });
      expect(res.status).toBe(201);
    }
    const pool = t1.service.database.pool;
    const pending = async () => (await pool.query(`select count(*)::int as n from harvest_items where status <> 'BLUEPRINT_DONE'`)).rows[0].n as number;

    const jobIds: string[] = [];
    for (let round = 0; round < 8 && (await pending()) > 0; round++) {
      // Both instances asked at the same moment; the queue takes one waiting run (the other gets 409).
      const answers = await Promise.all([t1, t2].map((t) => t.http('/api/jobs/run/extract-blueprints', { method: 'POST' })));
      for (const res of answers) {
        const body: Json = await res.json();
        expect([202, 409]).toContain(res.status);
        if (res.status === 202) jobIds.push(body.jobId);
      }
      await eventually(async () => {
        const { rows } = await pool.query(`select count(*)::int as n from job_logs where metadata->>'job_id' = any($1) and status <> 'STARTED'`, [jobIds]);
        return rows[0].n === jobIds.length;
      });
    }
    expect(await pending()).toBe(0);

    const requests = t1.llm.requests.filter((r) => r.responseFormatName === 'exam_blueprint');
    const perItem = countBy(requests.map(itemKeyOf));
    expect(perItem.size).toBe(30);
    expect([...perItem.values()].every((n) => n === 1)).toBe(true);
    const { rows: perBlueprint } = await pool.query('select harvest_item_id, count(*)::int as n from exam_blueprints group by 1');
    expect(perBlueprint).toHaveLength(30);
    expect(perBlueprint.every((r) => r.n === 1)).toBe(true);

    // The runs never overlapped, whichever instance ran them.
    const { rows: logs } = await pool.query(`select started_at, ended_at, status, items_processed from job_logs where job_name = 'extract-blueprints' order by started_at`);
    expect(logs.every((l) => l.status === 'COMPLETED')).toBe(true);
    expect(logs.reduce((sum, l) => sum + l.items_processed, 0)).toBe(30);
    for (let i = 1; i < logs.length; i++) expect(logs[i].started_at.getTime()).toBeGreaterThanOrEqual(logs[i - 1].ended_at.getTime());
  });
});
