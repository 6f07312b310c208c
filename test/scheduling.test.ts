import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeRequest } from '../testkit/fake-openai.ts';
import { createTestDatabase } from './support/postgres.ts';
import { eventually, startTestService, type TestService } from './support/service.ts';

/** job_schedule is the source of truth for pg-boss's cron: edits through the API or the table, and startup. */

type Json = any;

const userMessage = (req: FakeRequest) => req.messages.find((m) => m.role === 'user')?.content ?? '';
const itemKeyOf = (req: FakeRequest) => /\[\[item:([\w-]+)\]\]/.exec(userMessage(req))?.[1];

async function put(t: TestService, jobName: string, patch: object): Promise<Json> {
  const res = await t.http(`/api/jobs/schedules/${jobName}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(patch) });
  const body = await res.json();
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body;
}

async function bossSchedules(t: TestService): Promise<Array<[string, string, string]>> {
  return (await t.service.boss.getSchedules()).map((s) => [s.name, s.key ?? '', s.cron] as [string, string, string]).sort();
}

async function scheduleRow(t: TestService, jobName: string): Promise<Json> {
  const { rows } = await t.service.database.pool.query('select * from job_schedule where job_name = $1', [jobName]);
  return rows[0];
}

describe('a cron-triggered run', () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService();
  });
  afterAll(() => t?.stop());

  it('starts within a few seconds of the minute and processes the pending items', { timeout: 100_000 }, async () => {
    t.llm.respond((req) => ({
      content: { exam_name: `Concurso ${itemKeyOf(req)}`, organization: null, topics: [{ code: 'T1', name: 'Tema', discipline: 'Geral' }] },
    }));
    // Keep clear of the last seconds of a minute, so "the next minute" is unambiguous.
    if (new Date().getUTCSeconds() >= 50) await sleep(61_000 - (Date.now() % 60_000));
    const updated = await put(t, 'extract-blueprints', { cron_expression: '* * * * *' });
    const boundary = new Date(updated.next_run_at).getTime();
    expect(boundary % 60_000).toBe(0);
    expect(boundary).toBeGreaterThan(Date.now());
    expect(boundary - Date.now()).toBeLessThanOrEqual(60_000);
    expect(await bossSchedules(t)).toContainEqual(['extract-blueprints', '', '* * * * *']);

    // The work for that run arrives shortly before the minute.
    await sleep(Math.max(0, boundary - Date.now() - 1_500));
    const res = await t.http('/api/harvest-items', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'Edital cron', content: 'Edital [[item:cron]]' }),
    });
    expect(res.status).toBe(201);
    const item: Json = await res.json();

    const log = await eventually(
      async () => {
        const { rows } = await t.service.database.pool.query(
          `select * from job_logs where job_name = 'extract-blueprints' and metadata->>'trigger' = 'cron' and started_at >= $1 order by started_at limit 1`,
          [new Date(boundary)],
        );
        return rows[0];
      },
      { timeoutMs: boundary - Date.now() + 15_000, intervalMs: 100 },
    );
    const lateMs = log.started_at.getTime() - boundary;
    console.log(`cron run started ${lateMs} ms after the minute boundary ${new Date(boundary).toISOString()}`);
    expect(lateMs).toBeGreaterThanOrEqual(0);
    expect(lateMs).toBeLessThan(5_000);

    const closed = await eventually(async () => (await t.service.database.pool.query(`select * from job_logs where id = $1 and status <> 'STARTED'`, [log.id])).rows[0]);
    expect(closed.status).toBe('COMPLETED');
    expect(closed.metadata).toMatchObject({ trigger: 'cron', attempt: 1 });
    expect(closed.items_processed).toBe(1);
    const { rows: [after] } = await t.service.database.pool.query('select status from harvest_items where id = $1', [item.id]);
    expect(after.status).toBe('BLUEPRINT_DONE');

    // The schedule row moves on to the following minute.
    const row = await eventually(async () => {
      const r = await scheduleRow(t, 'extract-blueprints');
      return r.last_run_at && r.last_run_at.getTime() >= boundary ? r : undefined;
    });
    expect(row.next_run_at.getTime()).toBeGreaterThan(boundary);
    expect(row.next_run_at.getTime() % 60_000).toBe(0);
    expect(row.next_run_at.getTime()).toBeGreaterThan(Date.now());
  });
});

describe('editing a schedule through the API', () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService();
  });
  afterAll(() => t?.stop());

  it('does not start a run for an occurrence that came before the edit', async () => {
    // An edit to a daily schedule at this very minute: the API says the next run is tomorrow, so
    // nothing may run now. (Not in the last seconds of a minute, so the edit lands in the same one.)
    if (new Date().getUTCSeconds() >= 55) await sleep(61_000 - (Date.now() % 60_000));
    const now = new Date();
    const cron = `${now.getUTCMinutes()} ${now.getUTCHours()} * * *`;
    const updated = await put(t, 'generate-drops', { cron_expression: cron });
    const thisMinute = Math.floor(now.getTime() / 60_000) * 60_000;
    expect(new Date(updated.next_run_at).getTime()).toBe(thisMinute + 24 * 3600_000);
    expect(await bossSchedules(t)).toContainEqual(['generate-drops', '', cron]);

    // Several cron passes (every second here) and worker polls go by.
    await sleep(5_000);
    const { rows } = await t.service.database.pool.query(`select started_at, metadata->>'trigger' as trigger from job_logs where job_name = 'generate-drops'`);
    expect(rows, `runs started after the edit at ${updated.updated_at}`).toEqual([]);
  });
});

describe('edits made directly in the job_schedule table', () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService({ SCHEDULE_SYNC_SECONDS: '1' });
  });
  afterAll(() => t?.stop());

  const q = (text: string, values?: unknown[]) => t.service.database.pool.query(text, values);

  it('a new cron expression reaches pg-boss within seconds and next_run_at is recomputed', async () => {
    const before = await scheduleRow(t, 'generate-drops');
    expect(before.cron_expression).toBe('0 0 * * *');
    await q(`update job_schedule set cron_expression = '*/5 * * * *' where job_name = 'generate-drops'`);
    const editedAt = Date.now();

    await eventually(async () => (await bossSchedules(t)).some(([name, , cron]) => name === 'generate-drops' && cron === '*/5 * * * *'), { timeoutMs: 5_000 });
    // The next multiple of five minutes (which is the old value only in the five minutes before midnight).
    const expectedNext = (Math.floor(editedAt / 300_000) + 1) * 300_000;
    const row = await eventually(async () => {
      const r = await scheduleRow(t, 'generate-drops');
      return r.next_run_at && Math.abs(r.next_run_at.getTime() - expectedNext) <= 300_000 && r.next_run_at.getTime() % 300_000 === 0 && r.next_run_at.getTime() > editedAt - 1_000 ? r : undefined;
    }, { timeoutMs: 5_000 });
    expect([expectedNext, expectedNext + 300_000]).toContain(row.next_run_at.getTime());
    const schedules: Json[] = await (await t.http('/api/jobs/schedules')).json() as Json[];
    expect(schedules.find((s) => s.job_name === 'generate-drops')).toMatchObject({ cron_expression: '*/5 * * * *', next_run_at: row.next_run_at.toISOString() });
    // The other job is untouched.
    expect(await bossSchedules(t)).toContainEqual(['extract-blueprints', '', '0 */6 * * *']);
  });

  it('an invalid expression typed into the table leaves pg-boss on the previous schedule', async () => {
    await q(`update job_schedule set cron_expression = 'every five minutes' where job_name = 'generate-drops'`);
    // Several sync periods go by.
    await sleep(3_000);
    expect(await bossSchedules(t)).toContainEqual(['generate-drops', '', '*/5 * * * *']);
    await q(`update job_schedule set cron_expression = '*/5 * * * *' where job_name = 'generate-drops'`);
  });

  it('is_active = false removes the pg-boss schedule, true brings it back', async () => {
    await q(`update job_schedule set is_active = false where job_name = 'generate-drops'`);
    await eventually(async () => !(await bossSchedules(t)).some(([name]) => name === 'generate-drops'), { timeoutMs: 5_000 });
    await eventually(async () => (await scheduleRow(t, 'generate-drops')).next_run_at === null, { timeoutMs: 5_000 });
    expect(await bossSchedules(t)).toEqual([['extract-blueprints', '', '0 */6 * * *']]);

    await q(`update job_schedule set is_active = true where job_name = 'generate-drops'`);
    await eventually(async () => (await bossSchedules(t)).some(([name, , cron]) => name === 'generate-drops' && cron === '*/5 * * * *'), { timeoutMs: 5_000 });
    await eventually(async () => (await scheduleRow(t, 'generate-drops')).next_run_at !== null, { timeoutMs: 5_000 });
  });
});

describe('reconciliation at startup', () => {
  it('a restarted service removes unknown and inactive schedules and keeps one per active job', async () => {
    // The periodic sync is slowed down so that only startup reconciles.
    const first = await startTestService({ SCHEDULE_SYNC_SECONDS: '300' });
    const others: TestService[] = [];
    try {
      const boss = first.service.boss;
      await boss.createQueue('ghost-job');
      await boss.schedule('ghost-job', '*/10 * * * *', { trigger: 'cron' }, { tz: 'UTC' });
      await first.service.database.pool.query(`update job_schedule set is_active = false where job_name = 'generate-drops'`);
      expect(await bossSchedules(first)).toEqual([
        ['extract-blueprints', '', '0 */6 * * *'],
        ['generate-drops', '', '0 0 * * *'],
        ['ghost-job', '', '*/10 * * * *'],
      ]);

      const second = await startTestService({ SCHEDULE_SYNC_SECONDS: '300' }, { database: first.database, llm: first.llm });
      others.push(second);
      // Right after startup, before any periodic sync could have run.
      expect(await bossSchedules(second)).toEqual([['extract-blueprints', '', '0 */6 * * *']]);
      const rows: Json[] = await (await second.http('/api/jobs/schedules')).json() as Json[];
      expect(rows.map((r) => [r.job_name, r.is_active, r.next_run_at === null])).toEqual([
        ['extract-blueprints', true, false],
        ['generate-drops', false, true],
      ]);

      // Two more instances starting at once on the same database change nothing.
      others.push(
        ...(await Promise.all([
          startTestService({ SCHEDULE_SYNC_SECONDS: '300' }, { database: first.database, llm: first.llm }),
          startTestService({ SCHEDULE_SYNC_SECONDS: '300' }, { database: first.database, llm: first.llm }),
        ])),
      );
      expect(await bossSchedules(first)).toEqual([['extract-blueprints', '', '0 */6 * * *']]);
      const { rows: schedRows } = await first.service.database.pool.query('select job_name from job_schedule order by job_name');
      expect(schedRows.map((r) => r.job_name)).toEqual(['extract-blueprints', 'generate-drops']);
    } finally {
      for (const t of others.reverse()) await t.stop();
      await first.stop();
    }
  });

  it('instances starting at once on a fresh database seed one row and one pg-boss schedule per job', async () => {
    const database = await createTestDatabase();
    const llm = await startFakeOpenAI();
    const instances: TestService[] = [];
    try {
      const started = await Promise.allSettled([1, 2, 3].map(() => startTestService({ SCHEDULE_SYNC_SECONDS: '300' }, { database, llm })));
      for (const r of started) if (r.status === 'fulfilled') instances.push(r.value);
      expect(started.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok'))).toEqual(['ok', 'ok', 'ok']);
      for (const t of instances) {
        expect(await bossSchedules(t)).toEqual([
          ['extract-blueprints', '', '0 */6 * * *'],
          ['generate-drops', '', '0 0 * * *'],
        ]);
      }
      const { rows } = await instances[0]!.service.database.pool.query('select job_name, count(*)::int as n from job_schedule group by 1 order by 1');
      expect(rows).toEqual([
        { job_name: 'extract-blueprints', n: 1 },
        { job_name: 'generate-drops', n: 1 },
      ]);
    } finally {
      for (const t of instances) await t.stop();
      await llm.close();
      await database.drop();
    }
  });

  it('a keyed pg-boss schedule (of a known or unknown job) is removed at startup too', async () => {
    // pg-boss keys schedules by (name, key); job_schedule has one row per job, so anything else in
    // pg-boss is a second cron for the same job, or a ghost, and must go.
    const first = await startTestService({ SCHEDULE_SYNC_SECONDS: '300' });
    let second: TestService | undefined;
    try {
      const boss = first.service.boss;
      await boss.schedule('extract-blueprints', '*/2 * * * *', { trigger: 'cron' }, { tz: 'UTC', key: 'legacy' });
      await boss.createQueue('ghost-keyed');
      await boss.schedule('ghost-keyed', '*/10 * * * *', { trigger: 'cron' }, { tz: 'UTC', key: 'nightly' });

      second = await startTestService({ SCHEDULE_SYNC_SECONDS: '300' }, { database: first.database, llm: first.llm });
      expect(await bossSchedules(second)).toEqual([
        ['extract-blueprints', '', '0 */6 * * *'],
        ['generate-drops', '', '0 0 * * *'],
      ]);
    } finally {
      await second?.stop();
      await first.stop();
    }
  });
});
