import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, expectError, ISO, JOBS, type Json } from './support/http.ts';
import { eventually, startTestService, type TestService } from './support/service.ts';

/** Every change to a schedule is in its history: through the API (and who made it), by a direct table edit, and the seed. */

const JOB = 'generate-drops';
/** Edited by hand to tell when a schedule sync pass has gone by. */
const MARKER = 'extract-blueprints';
const TOKEN = 'history-token-0123456789';
const READONLY = 'history-readonly-0123456789';

const put = (t: TestService, job: string, body: unknown, headers: Record<string, string> = {}) =>
  call(t, `/api/jobs/schedules/${job}`, { method: 'PUT', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

const history = async (t: TestService, job: string, headers: Record<string, string> = {}): Promise<Json[]> => {
  const res = await call(t, `/api/jobs/schedules/${job}/history?limit=500`, { headers });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
};

const sql = (t: TestService, text: string, params: unknown[] = []) => t.service.database.pool.query(text, params);

const state = (cron_expression: string, timezone = 'UTC', is_active = true, missed_policy = 'skip', daily_budget_usd: number | null = null) => ({
  cron_expression,
  timezone,
  is_active,
  missed_policy,
  daily_budget_usd,
});

let passes = 0;

/** Waits for a whole schedule sync pass after this call: a table edit of MARKER (a new cron each time), picked up by pg-boss. */
async function syncPass(t: TestService): Promise<void> {
  passes += 1;
  const cron = `${passes % 60} 4 1 1 *`;
  await sql(t, 'update job_schedule set cron_expression = $1 where job_name = $2', [cron, MARKER]);
  await eventually(async () => (await t.service.boss.getSchedule(MARKER))?.cron === cron);
}

async function snapshot(t: TestService): Promise<Json> {
  return {
    schedules: (await sql(t, 'select * from job_schedule order by id')).rows,
    changes: (await sql(t, 'select * from job_schedule_changes order by id')).rows,
    boss: (await t.service.boss.getSchedules()).map((s) => [s.name, s.cron, s.timezone]),
  };
}

describe('schedule history, auth off', () => {
  let t: TestService;
  let seeded: Record<string, string>;
  beforeAll(async () => {
    t = await startTestService();
    for (const job of JOBS) await t.service.boss.offWork(job);
    seeded = Object.fromEntries([...t.service.registry.values()].map((job) => [job.name, job.defaultCron]));
  });
  afterAll(() => t?.stop());

  it('a fresh service has one seed change per job, and the sync that hands it to pg-boss records nothing more', async () => {
    await syncPass(t);
    expect(await history(t, JOB)).toEqual([
      { id: expect.any(Number), job_name: JOB, before: null, after: state(seeded[JOB]!), source: 'seed', actor: null, changed_at: expect.stringMatching(ISO) },
    ]);
    const { rows } = await sql(t, `select job_name, count(*)::int as n from job_schedule_changes where source = 'seed' group by job_name order by job_name`);
    expect(rows).toEqual(JOBS.map((job) => ({ job_name: job, n: 1 })).sort((a, b) => a.job_name.localeCompare(b.job_name)));
  });

  it('a PUT records its change with actor `none`, newest first', async () => {
    expect((await put(t, JOB, { cron_expression: '30 2 * * *', timezone: 'America/Sao_Paulo' })).status).toBe(200);
    expect((await put(t, JOB, { missed_policy: 'once' })).status).toBe(200);
    const changes = await history(t, JOB);
    expect(changes.map((c) => [c.source, c.actor, c.before, c.after])).toEqual([
      ['api', 'none', state('30 2 * * *', 'America/Sao_Paulo'), state('30 2 * * *', 'America/Sao_Paulo', true, 'once')],
      ['api', 'none', state(seeded[JOB]!), state('30 2 * * *', 'America/Sao_Paulo')],
      ['seed', null, null, state(seeded[JOB]!)],
    ]);
    // The sync that follows finds pg-boss in agreement and records nothing.
    await syncPass(t);
    expect(await history(t, JOB)).toHaveLength(3);
  });

  it('a PUT that changes nothing answers 200 and records nothing', async () => {
    const before = await snapshot(t);
    const res = await put(t, JOB, { cron_expression: '30 2 * * *', missed_policy: 'once' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ cron_expression: '30 2 * * *', timezone: 'America/Sao_Paulo', missed_policy: 'once' });
    expect(await snapshot(t)).toEqual(before);
  });

  it('a PUT of the daily budget alone is recorded, and leaves pg-boss and next_run_at as they were', async () => {
    const schedule = async () => (await sql(t, 'select next_run_at, cron_expression from job_schedule where job_name = $1', [JOB])).rows[0];
    const [before, held] = [await schedule(), await t.service.boss.getSchedule(JOB)];
    expect((await put(t, JOB, { daily_budget_usd: 0.25 })).body.daily_budget_usd).toBe(0.25);
    expect((await put(t, JOB, { daily_budget_usd: null })).body.daily_budget_usd).toBeNull();
    const [cleared, set] = await history(t, JOB);
    expect([set.before, set.after]).toEqual([state('30 2 * * *', 'America/Sao_Paulo', true, 'once'), state('30 2 * * *', 'America/Sao_Paulo', true, 'once', 0.25)]);
    expect([cleared.before, cleared.after]).toEqual([set.after, set.before]);
    expect(await schedule()).toEqual(before);
    expect(await t.service.boss.getSchedule(JOB)).toEqual(held);
  });

  it('changes recorded before budgets existed read with daily_budget_usd null, and are not taken for a table edit', async () => {
    const recorded = await history(t, JOB);
    const strip = (column: string) => `case when ${column} -> 'daily_budget_usd' = 'null' then ${column} - 'daily_budget_usd' else ${column} end`;
    await sql(t, `update job_schedule_changes set before = ${strip('before')}, after = ${strip('after')} where job_name = $1`, [JOB]);
    expect((await sql(t, `select count(*)::int as n from job_schedule_changes where job_name = $1 and after ? 'daily_budget_usd'`, [JOB])).rows[0].n).toBe(1);
    expect(await history(t, JOB)).toEqual(recorded);
    // A PUT records a pending table edit first when the row differs from the latest record: here it does not.
    expect((await put(t, JOB, { daily_budget_usd: 0.1 })).status).toBe(200);
    expect((await put(t, JOB, { daily_budget_usd: null })).status).toBe(200);
    expect((await history(t, JOB)).map((c) => c.source)).toEqual(['api', 'api', ...recorded.map((c) => c.source)]);
  });

  it('a refused PUT records nothing and changes nothing', async () => {
    const before = await snapshot(t);
    expectError(await put(t, JOB, { cron_expression: '0 30 2 * * *' }), 400, /6 fields/);
    expectError(await put(t, JOB, { cron_expression: '@reboot' }), 400, /not a supported macro/);
    expectError(await put(t, JOB, { timezone: 'Mars/Olympus' }), 400, /IANA/);
    expect(await snapshot(t)).toEqual(before);
  });

  it('a direct edit of job_schedule is recorded once, when the sync hands it to pg-boss: before is what pg-boss held', async () => {
    await sql(t, `update job_schedule set cron_expression = '15 3 * * *', timezone = 'UTC' where job_name = $1`, [JOB]);
    const latest = await eventually(async () => {
      const [newest] = await history(t, JOB);
      return newest.source === 'table' && newest;
    });
    expect(latest).toMatchObject({ job_name: JOB, actor: null, before: state('30 2 * * *', 'America/Sao_Paulo', true, 'once'), after: state('15 3 * * *', 'UTC', true, 'once') });
    expect(await t.service.boss.getSchedule(JOB)).toMatchObject({ cron: '15 3 * * *', timezone: 'UTC' });
    await syncPass(t);
    expect((await history(t, JOB)).filter((c) => c.source === 'table')).toHaveLength(1);
  });

  it('a pause and a resume by table edit: the resume says what was paused', async () => {
    await sql(t, 'update job_schedule set is_active = false where job_name = $1', [JOB]);
    await eventually(async () => (await t.service.boss.getSchedule(JOB)) === null);
    await sql(t, 'update job_schedule set is_active = true where job_name = $1', [JOB]);
    await eventually(async () => (await t.service.boss.getSchedule(JOB)) !== null);
    const [resumed, paused] = await history(t, JOB);
    expect(paused).toMatchObject({ source: 'table', before: state('15 3 * * *', 'UTC', true, 'once'), after: state('15 3 * * *', 'UTC', false, 'once') });
    expect(resumed).toMatchObject({ source: 'table', before: state('15 3 * * *', 'UTC', false, 'once'), after: state('15 3 * * *', 'UTC', true, 'once') });
  });

  it('a row edited into something invalid records nothing; the PUT that fixes it records the invalid row as before', async () => {
    const changes = await history(t, JOB);
    await sql(t, `update job_schedule set cron_expression = '0 30 2 * * *' where job_name = $1`, [JOB]);
    await syncPass(t);
    expect(await history(t, JOB)).toEqual(changes);
    expect(await t.service.boss.getSchedule(JOB)).toMatchObject({ cron: '15 3 * * *' });
    expect((await put(t, JOB, { cron_expression: '@daily' })).status).toBe(200);
    const [fixed] = await history(t, JOB);
    expect(fixed).toMatchObject({ source: 'api', actor: 'none', before: state('0 30 2 * * *', 'UTC', true, 'once'), after: state('@daily', 'UTC', true, 'once') });
  });

  it('pages with limit and offset, newest first', async () => {
    const all = await history(t, JOB);
    expect(all.length).toBeGreaterThanOrEqual(6);
    const ids = all.map((c) => c.id);
    expect([...ids].sort((a, b) => b - a)).toEqual(ids);
    expect((await call(t, `/api/jobs/schedules/${JOB}/history`)).body).toEqual(all.slice(0, 50));
    expect((await call(t, `/api/jobs/schedules/${JOB}/history?limit=2&offset=1`)).body).toEqual(all.slice(1, 3));
    expect((await call(t, `/api/jobs/schedules/${JOB}/history?offset=1000`)).body).toEqual([]);
    // Another job's history is its own.
    expect((await history(t, MARKER)).every((c) => c.job_name === MARKER)).toBe(true);
  });

  it.each([
    ['limit=0', /limit: limit must be between 1 and 500/],
    ['limit=501', /limit: limit must be between 1 and 500/],
    ['limit=abc', /limit: limit must be a number/],
    ['offset=-1', /offset: offset must be 0 or more/],
  ])('?%s is a 400', async (query, error) => {
    expectError(await call(t, `/api/jobs/schedules/${JOB}/history?${query}`), 400, error);
  });

  it('an unknown job is a 404', async () => {
    expectError(await call(t, '/api/jobs/schedules/no-such-job/history'), 404, /unknown job "no-such-job"/);
  });
});

describe('schedule history, a table edit the sync has not picked up yet', () => {
  let t: TestService;
  beforeAll(async () => {
    // No sync pass during the test: the PUT comes first.
    t = await startTestService({ SCHEDULE_SYNC_SECONDS: '300' });
    for (const job of JOBS) await t.service.boss.offWork(job);
  });
  afterAll(() => t?.stop());

  it('a PUT records the pending table edit first, then its own change: no gap', async () => {
    const seededCron = (await history(t, JOB))[0].after.cron_expression;
    await sql(t, `update job_schedule set cron_expression = '45 4 * * *' where job_name = $1`, [JOB]);
    expect((await put(t, JOB, { is_active: false })).status).toBe(200);
    expect((await history(t, JOB)).map((c) => [c.source, c.before, c.after])).toEqual([
      ['api', state('45 4 * * *'), state('45 4 * * *', 'UTC', false)],
      ['table', state(seededCron), state('45 4 * * *')],
      ['seed', null, state(seededCron)],
    ]);
    expect(await t.service.boss.getSchedule(JOB)).toBeNull();
  });
});

describe('schedule history under API_TOKEN', () => {
  let t: TestService;
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  beforeAll(async () => {
    t = await startTestService({ API_TOKEN: TOKEN, API_TOKEN_READONLY: READONLY });
    for (const job of JOBS) await t.service.boss.offWork(job);
  });
  afterAll(() => t?.stop());

  it('records the token role of a PUT as its actor', async () => {
    expect((await put(t, JOB, { cron_expression: '@weekly' }, bearer(TOKEN))).status).toBe(200);
    const [newest] = await history(t, JOB, bearer(TOKEN));
    expect(newest).toMatchObject({ source: 'api', actor: 'api_token', after: state('@weekly') });
  });

  it('the read-only token reads the history but its PUT is a 403 that records nothing', async () => {
    const before = await snapshot(t);
    expectError(await put(t, JOB, { cron_expression: '@daily' }, bearer(READONLY)), 403, /read-only token/);
    expect(await snapshot(t)).toEqual(before);
    expect((await history(t, JOB, bearer(READONLY))).map((c) => c.source)).toEqual(['api', 'seed']);
  });

  it('without a token the history is a 401', async () => {
    expectError(await call(t, `/api/jobs/schedules/${JOB}/history`), 401, /bearer token/);
  });
});
