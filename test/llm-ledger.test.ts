import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAI, type FakeReply, type FakeRequest } from '../testkit/fake-openai.ts';
import { runScript } from '../testkit/processes.ts';
import { EXTRACT_PROMPT } from '../src/jobs/extract-blueprints.prompt.ts';
import { DROPS_PROMPT } from '../src/jobs/generate-drops.prompt.ts';
import { loadEncoding } from '../src/llm/estimate-tokens.ts';
import { createPrices, type Prices } from '../src/llm/prices.ts';
import { call, type Json } from './support/http.ts';
import { closedLog, createItem, itemKeyOf, keyedItem, trigger, userMessage } from './support/pipeline.ts';
import { startTestService, type TestService } from './support/service.ts';

/**
 * The LLM ledger through real runs on the fake OpenAI server: every HTTP attempt is a row with its
 * item, outcome and cost; the run's log, the blueprints and the drops carry what they cost; the
 * prompts route counts what was made with an older prompt; prices come from LLM_PRICES_FILE.
 */

const MODEL = 'gpt-4o-mini';
const topicCodeOf = (req: FakeRequest) => /^Topic: Tópico ([\w-]+)$/m.exec(userMessage(req))?.[1];
const blueprintOf = (key: string) => ({
  exam_name: `Concurso ${key}`,
  organization: null,
  topics: [1, 2].map((i) => ({ code: `${key}-${i}`, name: `Tópico ${key}-${i}`, discipline: 'Disciplina' })),
});
const dropsOf = (code: string) => ({ drops: [1, 2, 3].map((i) => ({ title: `Drop ${i} de ${code}`, content: `Conteúdo ${i} de ${code}.` })) });

/** Per item key (or topic code), the replies in order; then a good answer. */
function scripted(script: Record<string, FakeReply[]>) {
  const seen = new Map<string, number>();
  return (req: FakeRequest): FakeReply => {
    const key = req.responseFormatName === 'exam_blueprint' ? (itemKeyOf(req) ?? '?') : (topicCodeOf(req) ?? '?');
    const n = seen.get(key) ?? 0;
    seen.set(key, n + 1);
    const scriptedReply = script[key]?.[n];
    if (scriptedReply) return scriptedReply;
    return req.responseFormatName === 'exam_blueprint' ? { content: blueprintOf(key) } : { content: dropsOf(key) };
  };
}

const query = async (t: TestService, text: string, values: unknown[] = []): Promise<Json[]> => (await t.service.database.pool.query(text, values)).rows;
const ledgerOf = (t: TestService, logId: number) => query(t, 'select * from llm_calls where log_id = $1 order by id', [logId]);
const costOf = (prices: Prices, row: Json) =>
  prices.cost(row.model, { prompt_tokens: row.prompt_tokens, cached_prompt_tokens: row.cached_prompt_tokens, completion_tokens: row.completion_tokens });
const sum = (values: number[]) => Math.round(values.reduce((a, b) => a + b, 0) * 1e8) / 1e8;

async function runJob(t: TestService, name: string): Promise<Json> {
  return closedLog(t, await trigger(t, name));
}

describe('the LLM ledger, through real runs', () => {
  let t: TestService;
  const prices = createPrices();
  const items: Record<string, Json> = {};
  let extractLog: Json;

  beforeAll(async () => {
    t = await startTestService({ OPENAI_MODEL: MODEL, OPENAI_MAX_RETRIES: '1', LLM_CONCURRENCY: '2' });
    t.llm.respond(
      scripted({
        retried: [{ status: 429, headers: { 'retry-after-ms': '10' } }],
        reasked: [{ content: 'not json at all' }],
        refused: [{ status: 400 }, { status: 400 }],
      }),
    );
    for (const key of ['plain', 'retried', 'reasked', 'refused']) items[key] = await createItem(t, keyedItem(key));
    extractLog = await runJob(t, 'extract-blueprints');
  });
  afterAll(() => t?.stop());

  it('records every HTTP attempt with its item, outcome, status and prompt version, once the run\'s log is closed', async () => {
    expect(extractLog.status).toBe('COMPLETED');
    expect(extractLog.items_processed).toBe(3);
    expect(extractLog.items_failed).toBe(1);
    const rows = await ledgerOf(t, extractLog.id);
    const byItem = (key: string) => rows.filter((r) => r.item.harvest_item_id === items[key].id).map((r) => [r.outcome, r.http_status]);
    expect(byItem('plain')).toEqual([['ok', 200]]);
    expect(byItem('retried')).toEqual([['retry', 429], ['ok', 200]]);
    expect(byItem('reasked')).toEqual([['bad_output', 200], ['ok', 200]]);
    expect(byItem('refused')).toEqual([['error', 400]]);
    expect(rows).toHaveLength(6);
    expect(rows.length).toBe(extractLog.metadata.llm.calls);
    for (const row of rows) {
      expect(row).toMatchObject({ job_name: 'extract-blueprints', model: MODEL, prompt_version: EXTRACT_PROMPT.version });
      expect(row.latency_ms).toBeGreaterThanOrEqual(0);
      expect(new Date(row.at).getTime()).toBeLessThanOrEqual(new Date(extractLog.ended_at).getTime());
    }
  });

  it('prices each attempt, and the run\'s log sums them with its cached prompt tokens', async () => {
    const rows = await ledgerOf(t, extractLog.id);
    for (const row of rows) {
      // An error answer (the 429, the 400) reports no usage: recorded, at no cost.
      if (row.http_status === 200) expect(row.prompt_tokens).toBeGreaterThan(0);
      else expect([row.prompt_tokens, Number(row.cost_usd)]).toEqual([0, 0]);
      expect(Number(row.cost_usd)).toBeCloseTo(costOf(prices, row)!, 8);
    }
    const llm = extractLog.metadata.llm;
    expect(llm.cost_usd).toBeGreaterThan(0);
    expect(llm.cost_usd).toBeCloseTo(sum(rows.map((r) => Number(r.cost_usd))), 8);
    expect(llm.cached_prompt_tokens).toBe(0); // the fake reports no cached tokens
    expect(llm.prompt_tokens).toBe(sum(rows.map((r) => r.prompt_tokens)));
  });

  it('a blueprint carries its prompt version and the cost of all its item\'s attempts, re-asks included', async () => {
    const rows = await ledgerOf(t, extractLog.id);
    for (const key of ['plain', 'retried', 'reasked']) {
      const [bp] = await query(t, 'select id from exam_blueprints where harvest_item_id = $1', [items[key].id]);
      const { status, body } = await call(t, `/api/blueprints/${bp.id}`);
      expect(status).toBe(200);
      expect(body.prompt_version).toBe(EXTRACT_PROMPT.version);
      const itemCost = sum(rows.filter((r) => r.item.harvest_item_id === items[key].id).map((r) => Number(r.cost_usd)));
      expect(body.cost_usd).toBeCloseTo(itemCost, 8);
    }
  });

  it('drops carry model, prompt version and an even share of their topic\'s calls; cache hits cost 0', async () => {
    const [bp] = await query(t, 'select id from exam_blueprints where harvest_item_id = $1', [items.plain.id]);
    // The drops run covers every blueprint; topic plain-2 is re-asked once.
    t.llm.respond(scripted({ 'plain-2': [{ content: { drops: [] } }] }));
    const log = await runJob(t, 'generate-drops');
    expect(log.status).toBe('COMPLETED');
    const rows = await ledgerOf(t, log.id);
    expect(rows.filter((r) => r.item.blueprint_id === bp.id && r.item.topic_code === 'plain-2').map((r) => r.outcome)).toEqual(['bad_output', 'ok']);
    expect(log.metadata.llm.cost_usd).toBeCloseTo(sum(rows.map((r) => Number(r.cost_usd))), 8);

    const { body: drops } = await call(t, `/api/drops?blueprintId=${bp.id}&limit=100`);
    expect(drops).toHaveLength(6);
    for (const code of ['plain-1', 'plain-2']) {
      const topicDrops = drops.filter((d: Json) => d.topic_code === code);
      const topicCost = sum(rows.filter((r) => r.item.blueprint_id === bp.id && r.item.topic_code === code).map((r) => Number(r.cost_usd)));
      expect(topicCost).toBeGreaterThan(0);
      expect(sum(topicDrops.map((d: Json) => d.cost_usd))).toBeCloseTo(topicCost, 8);
      for (const drop of topicDrops) expect(drop).toMatchObject({ model: MODEL, prompt_version: DROPS_PROMPT.version });
      expect(topicDrops[0].cost_usd).toBeCloseTo(topicCost / 3, 7);
    }
    const cache = await query(t, 'select hash, model, prompt_version, cost_usd from drop_cache where blueprint_id = $1', [bp.id]);
    expect(cache).toHaveLength(2);
    for (const entry of cache) expect(entry).toMatchObject({ model: MODEL, prompt_version: DROPS_PROMPT.version });

    // The drops are lost and made again: from the cache, at no cost, with what the cache entry was made with.
    await query(t, `update drop_cache set model = 'gpt-older', prompt_version = 'aaaaaaaaaaaa' where blueprint_id = $1`, [bp.id]);
    await query(t, 'delete from drops where blueprint_id = $1', [bp.id]);
    await query(t, 'update exam_blueprints set drops_generated_at = null where id = $1', [bp.id]);
    const requests = t.llm.requests.length;
    const again = await runJob(t, 'generate-drops');
    expect(again.metadata.cache_hits).toBe(2);
    expect(t.llm.requests.length).toBe(requests);
    expect(again.metadata.llm.cost_usd).toBe(0);
    expect(await ledgerOf(t, again.id)).toEqual([]);
    const { body: fromCache } = await call(t, `/api/drops?blueprintId=${bp.id}&limit=100`);
    expect(fromCache).toHaveLength(6);
    for (const drop of fromCache) expect(drop).toMatchObject({ cost_usd: 0, model: 'gpt-older', prompt_version: 'aaaaaaaaaaaa' });
  });

  it('GET /api/llm/prompts gives each prompt\'s version and counts rows made with older ones (null versions included)', async () => {
    const before = await call(t, '/api/llm/prompts');
    expect(before.status).toBe(200);
    const byName = (body: Json[], name: string) => body.find((p) => p.name === name);
    const extract = byName(before.body, 'exam_blueprint');
    const drops = byName(before.body, 'topic_drops');
    expect(extract).toMatchObject({ job: 'extract-blueprints', version: EXTRACT_PROMPT.version, made_with_older: { blueprints: 0, drops: null, cache_entries: null } });
    expect(extract.version).toMatch(/^[0-9a-f]{12}$/);
    expect(extract.system_chars).toBe(EXTRACT_PROMPT.system.length);
    // The previous test left one blueprint's 6 drops and 2 cache entries made with an older version.
    expect(drops).toMatchObject({ job: 'generate-drops', version: DROPS_PROMPT.version, made_with_older: { blueprints: null, drops: 6, cache_entries: 2 } });

    await query(t, `update exam_blueprints set prompt_version = null where harvest_item_id = $1`, [items.retried.id]);
    await query(t, `update exam_blueprints set prompt_version = 'bbbbbbbbbbbb' where harvest_item_id = $1`, [items.reasked.id]);
    await query(t, `update drops set prompt_version = null where id = (select min(id) from drops where prompt_version = $1)`, [DROPS_PROMPT.version]);
    const after = await call(t, '/api/llm/prompts');
    expect(byName(after.body, 'exam_blueprint').made_with_older.blueprints).toBe(2);
    expect(byName(after.body, 'topic_drops').made_with_older).toEqual({ blueprints: null, drops: 7, cache_entries: 2 });
  });
});

describe('cached prompt tokens, through real runs on a fake that caches prefixes as OpenAI does', () => {
  const CACHE = { minTokens: 256, step: 32 };
  const prices = createPrices();
  let t: TestService;
  let llm: FakeOpenAI;
  beforeAll(async () => {
    llm = await startFakeOpenAI({ promptCache: CACHE });
    t = await startTestService({ OPENAI_MODEL: MODEL, LLM_CONCURRENCY: '1' }, { llm });
    t.llm.respond(scripted({}));
    for (const key of ['first', 'second', 'third']) await createItem(t, keyedItem(key));
  });
  afterAll(async () => {
    await t?.stop();
    await llm?.close();
  });

  it.each(['extract-blueprints', 'generate-drops'])('%s: every call after the first finds its fixed part (schema, system text) cached; the log, ledger, cost and usage route carry it', async (job) => {
    const sent = llm.requests.length;
    const log = await runJob(t, job);
    expect(log.status).toBe('COMPLETED');
    const rows = await ledgerOf(t, log.id);
    expect(rows.length).toBeGreaterThanOrEqual(3);

    // The fixed part of this job's requests, as the fake tokenizes it for its cache.
    const encoding = await loadEncoding('o200k_base');
    const request = llm.requests[sent]!;
    const fixed = encoding.count(JSON.stringify(request.body.response_format)) + encoding.count(`system\n${request.messages[0]!.content}`);
    expect(request.messages[0]!.role).toBe('system');
    const wholeSteps = Math.floor(fixed / CACHE.step) * CACHE.step;
    for (const [i, row] of rows.entries()) {
      // A job's first call has no request with its schema before it; every later one shares the fixed part, never the item.
      if (i === 0) expect(row.cached_prompt_tokens).toBe(0);
      else expect(row.cached_prompt_tokens).toBeGreaterThanOrEqual(wholeSteps);
      expect(row.cached_prompt_tokens).toBeLessThan(row.prompt_tokens);
      // Cached input is billed at its own (lower) price.
      expect(Number(row.cost_usd)).toBeCloseTo(costOf(prices, row)!, 8);
    }
    const cached = sum(rows.map((r) => r.cached_prompt_tokens));
    expect(log.metadata.llm.cached_prompt_tokens).toBe(cached);
    const uncachedCost = sum(rows.map((r) => prices.cost(MODEL, { prompt_tokens: r.prompt_tokens, cached_prompt_tokens: 0, completion_tokens: r.completion_tokens })!));
    expect(log.metadata.llm.cost_usd).toBeLessThan(uncachedCost);

    const { status, body } = await call(t, `/api/llm/usage?groupBy=job&from=${new Date(log.started_at).toISOString()}`);
    expect(status, JSON.stringify(body)).toBe(200);
    const usage = body.rows.find((row: Json) => row.job_name === job);
    expect(usage.cached_prompt_tokens).toBe(cached);
    expect(usage.cached_share).toBeCloseTo(cached / usage.prompt_tokens, 4);
    expect(usage.cached_share).toBeGreaterThan(0.2);
  });
});

describe('prices', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'llm-prices-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('a model with no price records tokens with cost_usd null and is warned about once at startup', async () => {
    const t = await startTestService({ OPENAI_MODEL: 'gpt-unpriced-test' });
    try {
      const warnings = t.logs.filter((line) => String(line.msg).includes('has no price'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.msg).toMatch(/gpt-unpriced-test .*cost_usd null; set LLM_PRICES_FILE/);
      t.llm.respond(scripted({}));
      const item = await createItem(t, keyedItem('unpriced'));
      const log = await runJob(t, 'extract-blueprints');
      expect(log.metadata.llm.cost_usd).toBeNull();
      const rows = await ledgerOf(t, log.id);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ cost_usd: null, model: 'gpt-unpriced-test' });
      expect(rows[0].prompt_tokens).toBeGreaterThan(0);
      const [bp] = await query(t, 'select id from exam_blueprints where harvest_item_id = $1', [item.id]);
      expect((await call(t, `/api/blueprints/${bp.id}`)).body.cost_usd).toBeNull();
    } finally {
      await t.stop();
    }
  });

  it('LLM_PRICES_FILE overrides a price, and the recorded cost follows it', async () => {
    const file = join(dir, 'prices.json');
    const price = { input: 1000, cached_input: 500, output: 4000 };
    await writeFile(file, JSON.stringify({ [MODEL]: price }));
    const t = await startTestService({ OPENAI_MODEL: MODEL, LLM_PRICES_FILE: file });
    try {
      expect(t.logs.filter((line) => String(line.msg).includes('has no price'))).toHaveLength(0);
      t.llm.respond(scripted({}));
      await createItem(t, keyedItem('dear'));
      const log = await runJob(t, 'extract-blueprints');
      const [row] = await ledgerOf(t, log.id);
      const expected = (row.prompt_tokens * price.input + row.completion_tokens * price.output) / 1e6;
      expect(Number(row.cost_usd)).toBeCloseTo(expected, 8);
      expect(Number(row.cost_usd)).toBeGreaterThan(costOf(createPrices(), row)! * 100);
      expect(log.metadata.llm.cost_usd).toBeCloseTo(expected, 8);
    } finally {
      await t.stop();
    }
  });

  it('a malformed LLM_PRICES_FILE stops the service and the CLI with exit 2, naming the file and the problem', async () => {
    const file = join(dir, 'bad.json');
    await writeFile(file, JSON.stringify({ [MODEL]: { input: 'cheap', output: 1 } }));
    for (const script of [['src/main.ts'], ['src/cli/run-job.ts', 'extract-blueprints']]) {
      const result = await runScript(script[0]!, script.slice(1), { LLM_PRICES_FILE: file, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
      const output = result.stdout + result.stderr;
      expect(result.code, output).toBe(2);
      expect(output).toContain(`LLM_PRICES_FILE ${file}`);
      expect(output).toMatch(/gpt-4o-mini\.input/);
      expect(output).not.toMatch(/^\s+at /m);
    }
  });
});
