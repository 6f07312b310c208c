import { createHash } from 'node:crypto';
import { zodResponseFormat } from 'openai/helpers/zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlueprintOutputSchema, EXTRACT_SYSTEM_PROMPT, extractUserPrompt } from '../src/jobs/extract-blueprints.prompt.ts';
import { countPromptTokens, loadEncoding } from '../src/llm/estimate-tokens.ts';
import { startFakeOpenAI, type FakeOpenAI, type FakeReply, type FakeRequest } from '../testkit/fake-openai.ts';
import { call, expectError, type Json } from './support/http.ts';
import { closedLog, createItem, itemKeyOf, itemMarker, trigger, userMessage } from './support/pipeline.ts';
import { startTestService, type TestService } from './support/service.ts';

/**
 * GET /api/jobs/{jobName}/estimate against the runs that follow it, on a fake server whose `usage`
 * is counted by the same tokenizer and rule: the estimate must match what the run then reports
 * (±10 %), for both jobs, without calling the model itself.
 */

const WITHIN = 0.1;
const topicCount = (key: string) => 2 + (Number(key.slice(1)) % 3);
const topicsOf = (key: string) =>
  Array.from({ length: topicCount(key) }, (_, i) => ({ code: `${key}-${i + 1}`, name: `Tópico ${key}-${i + 1}: regência verbal e nominal`, discipline: 'Língua Portuguesa' }));

function responder(req: FakeRequest): FakeReply {
  if (req.responseFormatName === 'exam_blueprint') {
    const key = itemKeyOf(req) ?? '?';
    return { content: { exam_name: `Concurso ${key}`, organization: 'Tribunal Regional', topics: topicsOf(key) } };
  }
  const topic = /^Topic: (.*)$/m.exec(userMessage(req))?.[1] ?? '?';
  return { content: { drops: [1, 2, 3].map((i) => ({ title: `Drop ${i}: ${topic}`, content: `Conteúdo ${i} sobre ${topic}, com um exemplo de prova.` })) } };
}

/** Notices of varied length, each with its marker so the fake can answer per item. */
const notice = (key: string, paragraphs: number) => ({
  title: `Edital ${key} – Concurso Público`,
  source_url: `https://example.org/editais/${key}`,
  content:
    `EDITAL ${key}. ${itemMarker(key)} O Presidente do Tribunal torna pública a abertura de inscrições. ` +
    'Conteúdo programático: Língua Portuguesa: compreensão e interpretação de textos; ortografia oficial; crase. '.repeat(paragraphs),
});

const KEYS = ['K1', 'K2', 'K3', 'K4', 'K5'];
let llm: FakeOpenAI;
let t: TestService;

beforeAll(async () => {
  llm = await startFakeOpenAI({ usage: 'tokenizer' });
  llm.respond(responder);
  t = await startTestService({ EXTRACT_BATCH_SIZE: '3', DROPS_BATCH_SIZE: '2' }, { llm });
  for (const [i, key] of KEYS.entries()) await createItem(t, notice(key, 1 + i * 7));
});

afterAll(async () => {
  await t?.stop();
  await llm?.close();
});

const estimate = async (job: string, query = '') => {
  const res = await call(t, `/api/jobs/${job}/estimate${query}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as Json;
};

const runJob = async (job: string) => {
  const log = await closedLog(t, await trigger(t, job));
  expect(log.status, log.error_message).toBe('COMPLETED');
  return log;
};

const expectClose = (estimated: number, reported: number) => {
  expect(reported).toBeGreaterThan(0);
  expect(Math.abs(estimated - reported) / reported, `estimated ${estimated}, reported ${reported}`).toBeLessThanOrEqual(WITHIN);
};

const itemStates = async () => (await t.service.database.pool.query('select id, status, claimed_by_log_id from harvest_items order by id')).rows;

describe('estimate of extract-blueprints', () => {
  it('counts the next batch, or the whole backlog with all=true, without calling the model or claiming anything', async () => {
    const before = await itemStates();
    const batch = await estimate('extract-blueprints');
    expect(batch).toMatchObject({ job_name: 'extract-blueprints', model: 'gpt-4o-mini', items: 3, llm_calls: 3, cache_hits: 0 });
    expect(batch.basis.scope).toMatch(/next run \(batch of 3 harvest items/);
    expect(batch.basis.prompt_tokens).toMatch(/^o200k_base over the messages and response schema/);
    expect(batch.basis.completion_tokens).toMatch(/^default of 700 tokens per call/);
    expect(batch.completion_tokens).toBe(2100);
    expect(batch.cost_usd).toBeGreaterThan(0);

    const all = await estimate('extract-blueprints', '?all=true');
    expect(all).toMatchObject({ items: 5, llm_calls: 5 });
    expect(all.basis.scope).toMatch(/whole backlog/);
    expect(all.prompt_tokens).toBeGreaterThan(batch.prompt_tokens);
    expect(await estimate('extract-blueprints', '?all=false')).toEqual(batch);

    expect(llm.requests).toHaveLength(0);
    expect(await itemStates()).toEqual(before);
  });

  it('is within 10 % of the prompt tokens the following run reports, and learns completion tokens from it', async () => {
    const batch = await estimate('extract-blueprints');
    const log = await runJob('extract-blueprints');
    expect(log.items_processed).toBe(3);
    expect(log.metadata.llm.calls).toBe(batch.llm_calls);
    expectClose(batch.prompt_tokens, log.metadata.llm.prompt_tokens);

    const next = await estimate('extract-blueprints');
    expect(next).toMatchObject({ items: 2, llm_calls: 2 });
    const perCall = log.metadata.llm.completion_tokens / log.metadata.llm.calls;
    expect(next.basis.completion_tokens).toMatch(/^mean of 3 calls \(\d+ tokens each\) in the last run that called the model$/);
    expect(next.completion_tokens).toBe(Math.round(perCall * 2));
    const second = await runJob('extract-blueprints');
    expectClose(next.prompt_tokens, second.metadata.llm.prompt_tokens);

    expect(await estimate('extract-blueprints', '?all=true')).toMatchObject({ items: 0, llm_calls: 0, prompt_tokens: 0, completion_tokens: 0, cost_usd: 0 });
  });
});

describe('estimate of generate-drops', () => {
  it('counts cached topics as cache hits, and is within 10 % of the run that follows', async () => {
    const { rows: blueprints } = await t.service.database.pool.query('select id, topics from exam_blueprints order by id');
    expect(blueprints).toHaveLength(5);
    // The first blueprint's first topic is already in the drop cache (as a run that failed halfway leaves it).
    const [first] = blueprints;
    const code = first.topics[0].code;
    const hash = createHash('sha256').update(`${first.id}:${code}`).digest('hex');
    await t.service.database.pool.query('insert into drop_cache (blueprint_id, hash, payload) values ($1, $2, $3)', [
      first.id,
      hash,
      JSON.stringify({ drops: [{ title: 'Do cache', content: 'Conteúdo guardado.' }] }),
    ]);
    const topicsIn = (rows: Json[]) => rows.reduce((sum, row) => sum + row.topics.length, 0);

    const batch = await estimate('generate-drops');
    const batchTopics = topicsIn(blueprints.slice(0, 2));
    expect(batch).toMatchObject({ job_name: 'generate-drops', items: batchTopics, cache_hits: 1, llm_calls: batchTopics - 1 });
    expect(batch.basis.scope).toMatch(/batch of 2 blueprints/);
    expect(batch.basis.completion_tokens).toMatch(/^default of 1100 tokens per call/);

    const all = await estimate('generate-drops', '?all=true');
    expect(all).toMatchObject({ items: topicsIn(blueprints), cache_hits: 1, llm_calls: topicsIn(blueprints) - 1 });

    const requestsBefore = llm.requests.length;
    const log = await runJob('generate-drops');
    expect(log.metadata.cache_hits).toBe(1);
    expect(llm.requests.length - requestsBefore).toBe(batch.llm_calls);
    expect(log.metadata.llm.calls).toBe(batch.llm_calls);
    expectClose(batch.prompt_tokens, log.metadata.llm.prompt_tokens);
  });

  it('counts every topic of a bypassCache regenerate request as a call', async () => {
    const { rows } = await t.service.database.pool.query('select id, topics from exam_blueprints where drops_generated_at is not null order by id limit 1');
    const [done] = rows;
    const regenerate = async (bypassCache: boolean) => {
      const res = await call(t, `/api/blueprints/${done.id}/regenerate-drops`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ bypassCache }) });
      expect(res.status).toBe(202);
    };
    await regenerate(false);
    const fromCache = await estimate('generate-drops', '?all=true');
    expect(fromCache.cache_hits).toBe(done.topics.length);
    expect(fromCache.basis.completion_tokens).toMatch(/^mean of \d+ calls/);

    await regenerate(true);
    const bypassed = await estimate('generate-drops', '?all=true');
    expect(bypassed.cache_hits).toBe(0);
    expect(bypassed.llm_calls).toBe(fromCache.llm_calls + done.topics.length);
  });
});

describe('refused requests', () => {
  it('answers 404 for an unknown job and 400 for a bad all, changing nothing', async () => {
    const before = await itemStates();
    const requests = llm.requests.length;
    expectError(await call(t, '/api/jobs/no-such-job/estimate'), 404, /unknown job "no-such-job"; known jobs: extract-blueprints, generate-drops/);
    expectError(await call(t, '/api/jobs/extract-blueprints/estimate?all=yes'), 400, /all must be true or false/);
    expect(await itemStates()).toEqual(before);
    expect(llm.requests).toHaveLength(requests);
  });
});

describe('a model without a price or a known encoding', () => {
  it('gives tokens by o200k_base, says so, and a null cost', async () => {
    const other = await startTestService({ OPENAI_MODEL: 'llama-3-local' }, { database: t.database, llm });
    try {
      await createItem(other, notice('K9', 3));
      const res = await call(other, '/api/jobs/extract-blueprints/estimate');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ model: 'llama-3-local', items: 1, llm_calls: 1, cost_usd: null });
      expect(res.body.prompt_tokens).toBeGreaterThan(0);
      expect(res.body.basis.prompt_tokens).toMatch(/^o200k_base \(model "llama-3-local" not recognised: assumed\)/);
      expect(res.body.basis.cost).toMatch(/no price for model "llama-3-local"/);
    } finally {
      await other.stop();
    }
  });
});

describe('a backlog above 2 M characters', () => {
  it('is counted on an even sample, says so, and stays within 2 % of counting every item', async () => {
    const big = await startTestService({}, { llm });
    try {
      const items = Array.from({ length: 600 }, (_, i) => notice(`B${i}`, 25 + (i % 17)));
      for (let i = 0; i < items.length; i += 150) {
        const res = await call(big, '/api/harvest-items', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(items.slice(i, i + 150)) });
        expect(res.status).toBe(201);
      }
      const res = await call(big, '/api/jobs/extract-blueprints/estimate?all=true');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ items: 600, llm_calls: 600 });
      expect(res.body.basis.prompt_tokens).toMatch(/user messages of 300 of the 600 items \(one in 2\) tokenized, scaled to all by characters/);

      // Every item counted by the same rule, as the run would send it.
      const encoding = await loadEncoding('o200k_base');
      const format = zodResponseFormat(BlueprintOutputSchema, 'exam_blueprint');
      const exact = items.reduce((sum, item) => sum + countPromptTokens(encoding, [{ role: 'system', content: EXTRACT_SYSTEM_PROMPT }, { role: 'user', content: extractUserPrompt(item) }], format), 0);
      expect(Math.abs(res.body.prompt_tokens - exact) / exact, `sampled ${res.body.prompt_tokens}, exact ${exact}`).toBeLessThanOrEqual(0.02);
    } finally {
      await big.stop();
    }
  });
});
