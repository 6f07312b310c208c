import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAI, type FakeRequest } from '../testkit/fake-openai.ts';
import { call, expectError, type Json } from './support/http.ts';
import { closedLog, createItem, itemKeyOf, keyedItem, trigger } from './support/pipeline.ts';
import { createTestDatabase, type TestDatabase } from './support/postgres.ts';
import { eventually, startTestService, type TestService } from './support/service.ts';

/**
 * Daily LLM budgets (issue 13) on the fake OpenAI server: every answer reports 10,000 prompt and
 * 5,000 completion tokens, so with gpt-4o-mini's prices ($0.15 and $0.60 per 1 M) each call costs
 * exactly $0.0045. LLM_CONCURRENCY 1 makes the number of calls before a stop exact.
 */

const CALL_USD = 0.0045;
const USAGE = { prompt_tokens: 10_000, completion_tokens: 5_000 };
const ENV = { OPENAI_MODEL: 'gpt-4o-mini', LLM_CONCURRENCY: '1' };

function answerWithKnownCost(llm: FakeOpenAI) {
  llm.respond((req: FakeRequest) => {
    if (req.responseFormatName === 'exam_blueprint') {
      const key = itemKeyOf(req) ?? '?';
      return { content: { exam_name: `Concurso ${key}`, organization: null, topics: [{ code: `${key}-1`, name: `Tópico ${key}-1`, discipline: 'D' }] }, usage: USAGE };
    }
    return { content: { drops: [{ title: 'Drop', content: 'Conteúdo.' }] }, usage: USAGE };
  });
}

/** A webhook receiver on loopback that records every alert it is sent. */
async function startReceiver() {
  const bodies: Json[] = [];
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk) => (text += chunk));
    req.on('end', () => {
      bodies.push(JSON.parse(text));
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    bodies,
    close: () => new Promise<void>((resolve) => (server.close(() => resolve()), server.closeAllConnections())),
  };
}

const query = async (t: TestService, text: string, values: unknown[] = []): Promise<Json[]> => (await t.service.database.pool.query(text, values)).rows;
const putSchedule = (t: TestService, job: string, body: unknown) =>
  call(t, `/api/jobs/schedules/${job}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
const pendingCount = async (t: TestService) => (await query(t, "select count(*)::int as n from harvest_items where status = 'PENDING'"))[0].n;
const alertKinds = async (t: TestService, job: string) => (await query(t, 'select kind from alerts where job_name = $1 order by id', [job])).map((row) => row.kind);
const budgetLines = (instances: TestService[]) => instances.flatMap((t) => t.logs).filter((line) => String(line.msg).startsWith('budget_exhausted:'));

describe('a job daily budget, with three instances on one database', () => {
  let database: TestDatabase;
  let llm: FakeOpenAI;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const instances: TestService[] = [];
  let a: TestService;

  beforeAll(async () => {
    database = await createTestDatabase();
    llm = await startFakeOpenAI();
    receiver = await startReceiver();
    answerWithKnownCost(llm);
    for (let i = 0; i < 3; i++) instances.push(await startTestService({ ...ENV, ALERT_WEBHOOK_URL: receiver.url, ALERT_RETRY_DELAY_SECONDS: '1' }, { database, llm }));
    a = instances[0]!;
    for (let i = 0; i < 10; i++) await createItem(a, keyedItem(`item${i}`));
  });
  afterAll(async () => {
    for (const t of instances) await t.stop();
    await llm?.close();
    await receiver?.close();
    await database?.drop();
  });

  it('refuses a negative, non-numeric or too large budget with 400, leaving the row and its history as they were', async () => {
    const before = await query(a, "select * from job_schedule where job_name = 'extract-blueprints'");
    const history = await query(a, 'select count(*)::int as n from job_schedule_changes');
    expectError(await putSchedule(a, 'extract-blueprints', { daily_budget_usd: -0.01 }), 400, /daily_budget_usd must be 0 or more/);
    expectError(await putSchedule(a, 'extract-blueprints', { daily_budget_usd: 'cheap' }), 400, /daily_budget_usd must be a number/);
    expectError(await putSchedule(a, 'extract-blueprints', { daily_budget_usd: 1e7 }), 400, /at most 999999/);
    expect(await query(a, "select * from job_schedule where job_name = 'extract-blueprints'")).toEqual(before);
    expect(await query(a, 'select count(*)::int as n from job_schedule_changes')).toEqual(history);
  });

  it('sets the budget through PUT and shows it in every schedule response', async () => {
    // 3.5 calls' worth: the 4th item would go past it.
    const res = await putSchedule(a, 'extract-blueprints', { daily_budget_usd: 3.5 * CALL_USD });
    expect(res.status).toBe(200);
    expect(res.body.daily_budget_usd).toBe(0.01575);
    const list = await call(instances[1]!, '/api/jobs/schedules');
    expect(list.body.find((row: Json) => row.job_name === 'extract-blueprints').daily_budget_usd).toBe(0.01575);
    expect(list.body.find((row: Json) => row.job_name === 'generate-drops').daily_budget_usd).toBeNull();
  });

  it('stops the run after 3 calls, gives back the 7 unstarted items and ends COMPLETED with budget_exhausted', async () => {
    const log = await closedLog(a, await trigger(a, 'extract-blueprints'));
    expect(log.status).toBe('COMPLETED');
    expect(llm.requests).toHaveLength(3);
    expect(log.items_processed).toBe(3);
    expect(log.metadata.budget_exhausted).toBe(true);
    expect(log.metadata.budget).toMatchObject({ scope: 'job', daily_budget_usd: 0.01575, spent_today_usd: 0.0135, expected_item_usd: CALL_USD });
    expect(await pendingCount(a)).toBe(7);
    expect(budgetLines(instances).some((line) => /7 harvest items given back/.test(String(line.msg)))).toBe(true);
  });

  it('holds on the other instances: their runs claim nothing and make no call', async () => {
    for (const t of instances.slice(1)) {
      const log = await closedLog(t, await trigger(t, 'extract-blueprints'));
      expect(log.status).toBe('COMPLETED');
      expect(log.items_processed).toBe(0);
      expect(log.metadata.budget_exhausted).toBe(true);
    }
    expect(llm.requests).toHaveLength(3);
    expect(await pendingCount(a)).toBe(7);
  });

  it('raises exactly one budget_exhausted alert for the three stopped runs, and no recovery', async () => {
    const [alert] = await eventually(async () => receiver.bodies.length > 0 && receiver.bodies);
    expect(alert).toMatchObject({ kind: 'budget_exhausted', job: 'extract-blueprints', details: { scope: 'job', daily_budget_usd: 0.01575, spent_today_usd: 0.0135 } });
    expect(alert.text).toMatch(/LLM budget exhausted/);
    expect(await alertKinds(a, 'extract-blueprints')).toEqual(['budget_exhausted']);
  });

  it("shows today's spend and what is left in GET /api/jobs/status", async () => {
    const { status, body } = await call(instances[2]!, '/api/jobs/status');
    expect(status).toBe(200);
    expect(body.budgets.jobs['extract-blueprints']).toMatchObject({ daily_budget_usd: 0.01575, spent_today_usd: 0.0135, remaining_usd: 0.00225, timezone: 'UTC' });
    expect(body.budgets.jobs['extract-blueprints'].day).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(body.budgets.jobs['generate-drops']).toMatchObject({ daily_budget_usd: null, spent_today_usd: 0, remaining_usd: null });
    expect(body.budgets.global).toMatchObject({ daily_budget_usd: null, spent_today_usd: 0.0135, remaining_usd: null });
  });

  it('without the budget the next run does the rest, and its success closes the alert with one recovery', async () => {
    expect((await putSchedule(a, 'extract-blueprints', { daily_budget_usd: null })).body.daily_budget_usd).toBeNull();
    const log = await closedLog(a, await trigger(a, 'extract-blueprints'));
    expect(log.items_processed).toBe(7);
    expect(log.metadata.budget_exhausted).toBeUndefined();
    expect(await pendingCount(a)).toBe(0);
    await eventually(async () => receiver.bodies.length === 2);
    expect(receiver.bodies.map((body) => body.kind)).toEqual(['budget_exhausted', 'recovered']);
  });
});

describe('the global budget, LLM_DAILY_BUDGET_USD', () => {
  let t: TestService;

  beforeAll(async () => {
    // 2 calls fit; a 3rd would pass it.
    t = await startTestService({ ...ENV, LLM_DAILY_BUDGET_USD: '0.00945' });
    answerWithKnownCost(t.llm);
    for (let i = 0; i < 4; i++) await createItem(t, keyedItem(`g${i}`));
  });
  afterAll(() => t?.stop());

  it('stops a job after 2 calls, then stops the other job before it claims anything', async () => {
    const extract = await closedLog(t, await trigger(t, 'extract-blueprints'));
    expect(extract.items_processed).toBe(2);
    expect(extract.metadata.budget).toMatchObject({ scope: 'global', daily_budget_usd: 0.00945, spent_today_usd: 0.009 });
    expect(await pendingCount(t)).toBe(2);

    // generate-drops has no call today: its next topic is priced at today's mean over all jobs.
    const drops = await closedLog(t, await trigger(t, 'generate-drops'));
    expect(drops.status).toBe('COMPLETED');
    expect(drops.metadata.budget_exhausted).toBe(true);
    expect(drops.metadata.blueprints).toBe(0);
    expect(t.llm.requests).toHaveLength(2);
    expect(await query(t, 'select count(*)::int as n from exam_blueprints where drops_claimed_by_log_id is not null')).toEqual([{ n: 0 }]);
  });

  it('shows the global spend and what is left in the status', async () => {
    const { body } = await call(t, '/api/jobs/status');
    expect(body.budgets.global).toMatchObject({ daily_budget_usd: 0.00945, spent_today_usd: 0.009, remaining_usd: 0.00045, timezone: 'UTC' });
  });
});
