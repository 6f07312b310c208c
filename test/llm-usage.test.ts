import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, expectError, type Json } from './support/http.ts';
import { startTestService, type TestService } from './support/service.ts';

/**
 * GET /api/llm/usage over a ledger written as the runs write it (llm_calls rows): grouping by day
 * (UTC, or the schedule's time zone with job), job and model, the default range, and the 400s.
 */

type Call = { at: string; job: string; model: string; prompt: number; cached: number; completion: number; cost: number | null };

const CALLS: Call[] = [
  // 2026-03-10 02:00Z is still 2026-03-09 in São Paulo (UTC-3).
  { at: '2026-03-10T02:00:00Z', job: 'extract-blueprints', model: 'gpt-4o-mini', prompt: 1000, cached: 0, completion: 200, cost: 0.00027 },
  { at: '2026-03-10T12:00:00Z', job: 'extract-blueprints', model: 'gpt-4o-mini', prompt: 2000, cached: 1024, completion: 300, cost: 0.0004 },
  { at: '2026-03-10T13:00:00Z', job: 'generate-drops', model: 'gpt-4o-mini', prompt: 500, cached: 0, completion: 800, cost: 0.000555 },
  { at: '2026-03-11T09:00:00Z', job: 'generate-drops', model: 'gpt-local', prompt: 400, cached: 0, completion: 100, cost: null },
  // Outside the range used below.
  { at: '2026-03-12T00:00:00Z', job: 'generate-drops', model: 'gpt-4o-mini', prompt: 9999, cached: 0, completion: 9999, cost: 1 },
];
const RANGE = 'from=2026-03-09T00:00:00Z&to=2026-03-12T00:00:00Z';

describe('GET /api/llm/usage', () => {
  let t: TestService;
  let before: Json[];
  const ledger = async () => (await t.service.database.pool.query('select * from llm_calls order by id')).rows;

  beforeAll(async () => {
    t = await startTestService();
    for (const c of CALLS) {
      await t.service.database.pool.query(
        `insert into llm_calls (at, job_name, model, prompt_tokens, cached_prompt_tokens, completion_tokens, latency_ms, outcome, http_status, cost_usd)
         values ($1, $2, $3, $4, $5, $6, 100, 'ok', 200, $7)`,
        [c.at, c.job, c.model, c.prompt, c.cached, c.completion, c.cost],
      );
    }
    await t.service.database.pool.query(`update job_schedule set timezone = 'America/Sao_Paulo' where job_name = 'extract-blueprints'`);
    before = await ledger();
  });
  afterAll(() => t?.stop());

  it('groups by UTC day by default, with a total over [from, to)', async () => {
    const { status, body } = await call(t, `/api/llm/usage?${RANGE}`);
    expect(status).toBe(200);
    expect(body.group_by).toEqual(['day']);
    expect(body.from).toBe('2026-03-09T00:00:00.000Z');
    expect(body.rows.map((r: Json) => [r.day, r.calls])).toEqual([['2026-03-10', 3], ['2026-03-11', 1]]);
    expect(body.rows[0]).toMatchObject({ prompt_tokens: 3500, cached_prompt_tokens: 1024, completion_tokens: 1300, unpriced_calls: 0 });
    expect(body.rows[0].cost_usd).toBeCloseTo(0.001225, 8);
    expect(body.rows[0].cached_share).toBeCloseTo(1024 / 3500, 4);
    expect(body.rows[1]).toMatchObject({ cost_usd: null, unpriced_calls: 1 });
    expect(body.total).toMatchObject({ calls: 4, prompt_tokens: 3900, unpriced_calls: 1 });
    expect(body.total.cost_usd).toBeCloseTo(0.001225, 8);
  });

  it('groups by job and model; with job, days are in the schedule\'s time zone', async () => {
    const byJob = await call(t, `/api/llm/usage?${RANGE}&groupBy=job`);
    expect(byJob.body.rows.map((r: Json) => [r.job_name, r.calls])).toEqual([['extract-blueprints', 2], ['generate-drops', 2]]);
    expect(byJob.body.rows[0].day).toBeUndefined();

    const byModel = await call(t, `/api/llm/usage?${RANGE}&groupBy=model`);
    expect(byModel.body.rows.map((r: Json) => [r.model, r.calls, r.cost_usd])).toEqual([['gpt-4o-mini', 3, expect.closeTo(0.001225, 8)], ['gpt-local', 1, null]]);

    const dayJob = await call(t, `/api/llm/usage?${RANGE}&groupBy=job,day`);
    expect(dayJob.body.group_by).toEqual(['day', 'job']);
    expect(dayJob.body.rows.map((r: Json) => [r.day, r.job_name, r.calls])).toEqual([
      ['2026-03-09', 'extract-blueprints', 1], // 02:00Z in São Paulo
      ['2026-03-10', 'extract-blueprints', 1],
      ['2026-03-10', 'generate-drops', 1],
      ['2026-03-11', 'generate-drops', 1],
    ]);

    const all = await call(t, `/api/llm/usage?${RANGE}&groupBy=day,job,model`);
    expect(all.body.rows).toHaveLength(4);
    expect(all.body.rows[3]).toMatchObject({ day: '2026-03-11', job_name: 'generate-drops', model: 'gpt-local' });
  });

  it('defaults to the last 7 days', async () => {
    const { status, body } = await call(t, '/api/llm/usage');
    expect(status).toBe(200);
    expect(new Date(body.to).getTime() - new Date(body.from).getTime()).toBe(7 * 24 * 3_600_000);
    expect(Math.abs(new Date(body.to).getTime() - Date.now())).toBeLessThan(60_000);
    expect(body.rows).toEqual([]); // the calls above are from March 2026
    expect(body.total.calls).toBe(0);
  });

  it('refuses bad from, to and groupBy with a 400 naming the parameter, and changes nothing', async () => {
    expectError(await call(t, '/api/llm/usage?from=yesterday'), 400, /^from: from must be an ISO 8601 instant/);
    expectError(await call(t, '/api/llm/usage?to=2026-13-01T00:00:00Z'), 400, /^to: to must be an ISO 8601 instant/);
    expectError(await call(t, '/api/llm/usage?groupBy=week'), 400, /^groupBy: groupBy must be a comma-separated list of day, job, model \(got "week"\)/);
    expectError(await call(t, '/api/llm/usage?groupBy=day,day'), 400, /^groupBy: groupBy names a group twice/);
    expectError(await call(t, '/api/llm/usage?from=2026-03-10T00:00:00Z&to=2026-03-10T00:00:00Z'), 400, /^to: to must be later than from/);
    expectError(await call(t, '/api/llm/usage?from=2026-03-11T00:00:00Z&to=2026-03-10T00:00:00Z'), 400, /^to: to must be later than from/);
    expect(await ledger()).toEqual(before);
  });
});
