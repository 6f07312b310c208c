import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobLogs, jobSchedule } from '../src/db/schema.ts';
import { asJson, call, expectError, ISO, JOBS, postJson, type Json } from './support/http.ts';
import { eventually, startTestService, type TestService } from './support/service.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const EVIL = "extract-blueprints'; DROP TABLE job_logs;--";

const putSchedule = (t: TestService, job: string, body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
  call(t, `/api/jobs/schedules/${encodeURIComponent(job)}`, {
    method: 'PUT',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

/** A row as the API serves it: the table's columns, and the cron in words. */
const described = (row: object | null | undefined) => ({ ...asJson(row), description: expect.any(String) });

async function scheduleRow(t: TestService, job: string) {
  const [row] = await t.service.database.db.select().from(jobSchedule).where(eq(jobSchedule.job_name, job));
  return row;
}

async function bossSchedule(t: TestService, job: string) {
  return (await t.service.boss.getSchedules(job)).map((s) => ({ name: s.name, cron: s.cron, timezone: s.timezone }));
}

async function tableCounts(t: TestService): Promise<Record<string, number>> {
  const { rows } = await t.service.database.pool.query<{ job_logs: string; job_schedule: string; harvest_items: string }>(
    `select (select count(*) from job_logs) as job_logs, (select count(*) from job_schedule) as job_schedule, (select count(*) from harvest_items) as harvest_items`,
  );
  return Object.fromEntries(Object.entries(rows[0]!).map(([k, v]) => [k, Number(v)]));
}

describe('schedules API', () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService();
    // Nothing in this block needs a run; a cron firing mid-test must not run anything.
    for (const job of JOBS) await t.service.boss.offWork(job);
  });
  afterAll(() => t?.stop());

  it('GET /api/jobs/schedules lists both seeded schedules, active, with a future next_run_at', async () => {
    const before = Date.now();
    const res = await call(t, '/api/jobs/schedules');
    expect(res.status).toBe(200);
    expect(res.body).toHaveLength(2);
    expect(res.body.map((r: Json) => [r.job_name, r.cron_expression, r.is_active, r.timezone])).toEqual([
      ['extract-blueprints', '0 */6 * * *', true, 'UTC'],
      ['generate-drops', '0 0 * * *', true, 'UTC'],
    ]);
    for (const row of res.body) {
      expect(Object.keys(row).sort()).toEqual(
        ['created_at', 'cron_expression', 'daily_budget_usd', 'description', 'id', 'is_active', 'job_name', 'last_run_at', 'missed_policy', 'next_run_at', 'timezone', 'updated_at'].sort(),
      );
      expect(row.next_run_at).toMatch(ISO);
      expect(row.created_at).toMatch(ISO);
      expect(row.updated_at).toMatch(ISO);
      expect(row.last_run_at).toBeNull();
      expect(new Date(row.next_run_at).getTime()).toBeGreaterThan(before);
    }
    const [extract, drops] = res.body;
    // 0 */6 * * *: the next multiple of 6 hours; 0 0 * * *: the next UTC midnight.
    const ex = new Date(extract.next_run_at);
    expect(ex.getUTCHours() % 6).toBe(0);
    expect([ex.getUTCMinutes(), ex.getUTCSeconds(), ex.getUTCMilliseconds()]).toEqual([0, 0, 0]);
    expect(ex.getTime() - before).toBeLessThanOrEqual(6 * 3600_000);
    const dr = new Date(drops.next_run_at);
    expect([dr.getUTCHours(), dr.getUTCMinutes(), dr.getUTCSeconds()]).toEqual([0, 0, 0]);
    expect(dr.getTime() - before).toBeLessThanOrEqual(24 * 3600_000);
    // The rows are the table's.
    expect(res.body).toEqual((await t.service.database.db.select().from(jobSchedule).orderBy(jobSchedule.id)).map(described));
  });

  it('GET /api/jobs/schedules/:jobName returns that row; an unknown job is a 404', async () => {
    for (const job of JOBS) {
      const res = await call(t, `/api/jobs/schedules/${job}`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual(described(await scheduleRow(t, job)));
    }
    const missing = await call(t, '/api/jobs/schedules/no-such-job');
    expectError(missing, 404, /no-such-job/);
    expect(Object.keys(missing.body)).toEqual(['error']);
  });

  it('PUT a new cron: visible in the response, the table and pg-boss, next_run_at recomputed', async () => {
    const before = await scheduleRow(t, 'extract-blueprints');
    const started = Date.now();
    const res = await putSchedule(t, 'extract-blueprints', { cron_expression: '*/15 * * * *' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ job_name: 'extract-blueprints', cron_expression: '*/15 * * * *', is_active: true, timezone: 'UTC', description: 'Every 15 minutes' });
    expect(res.body.next_run_at).toMatch(ISO);
    const next = new Date(res.body.next_run_at);
    expect(next.getTime()).toBeGreaterThan(started);
    expect(next.getTime() - started).toBeLessThanOrEqual(15 * 60_000);
    expect(next.getUTCMinutes() % 15).toBe(0);
    expect([next.getUTCSeconds(), next.getUTCMilliseconds()]).toEqual([0, 0]);
    expect(new Date(res.body.updated_at).getTime()).toBeGreaterThan(before!.updated_at.getTime());

    expect(res.body).toEqual(described(await scheduleRow(t, 'extract-blueprints')));
    expect(await bossSchedule(t, 'extract-blueprints')).toEqual([{ name: 'extract-blueprints', cron: '*/15 * * * *', timezone: 'UTC' }]);
    // The other job is untouched.
    expect(await bossSchedule(t, 'generate-drops')).toEqual([{ name: 'generate-drops', cron: '0 0 * * *', timezone: 'UTC' }]);
    expect((await call(t, '/api/jobs/schedules/extract-blueprints')).body).toEqual(res.body);
  });

  it('PUT a time zone: 0 9 * * * in America/Sao_Paulo runs at 12:00 UTC', async () => {
    const started = Date.now();
    const res = await putSchedule(t, 'generate-drops', { cron_expression: '0 9 * * *', timezone: 'America/Sao_Paulo' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ cron_expression: '0 9 * * *', timezone: 'America/Sao_Paulo', is_active: true });
    const next = new Date(res.body.next_run_at);
    expect([next.getUTCHours(), next.getUTCMinutes(), next.getUTCSeconds()]).toEqual([12, 0, 0]);
    expect(next.getTime()).toBeGreaterThan(started);
    expect(next.getTime() - started).toBeLessThanOrEqual(24 * 3600_000);
    expect(res.body).toEqual(described(await scheduleRow(t, 'generate-drops')));
    expect(await bossSchedule(t, 'generate-drops')).toEqual([{ name: 'generate-drops', cron: '0 9 * * *', timezone: 'America/Sao_Paulo' }]);

    // Changing only the zone keeps the cron and moves the occurrence.
    const utc = await putSchedule(t, 'generate-drops', { timezone: 'UTC' });
    expect(utc.status).toBe(200);
    expect(utc.body).toMatchObject({ cron_expression: '0 9 * * *', timezone: 'UTC' });
    expect(new Date(utc.body.next_run_at).getUTCHours()).toBe(9);
    expect(await bossSchedule(t, 'generate-drops')).toEqual([{ name: 'generate-drops', cron: '0 9 * * *', timezone: 'UTC' }]);
  });

  it('PUT trims the cron expression it stores', async () => {
    const res = await putSchedule(t, 'generate-drops', { cron_expression: '  30 1 * * *  ' });
    expect(res.status).toBe(200);
    expect(res.body.cron_expression).toBe('30 1 * * *');
    expect((await scheduleRow(t, 'generate-drops'))!.cron_expression).toBe('30 1 * * *');
    expect(await bossSchedule(t, 'generate-drops')).toEqual([{ name: 'generate-drops', cron: '30 1 * * *', timezone: 'UTC' }]);
    const next = new Date(res.body.next_run_at);
    expect([next.getUTCHours(), next.getUTCMinutes()]).toEqual([1, 30]);
  });

  it('PUT is_active:false clears next_run_at and removes the pg-boss schedule; re-activating restores both', async () => {
    const off = await putSchedule(t, 'generate-drops', { is_active: false });
    expect(off.status).toBe(200);
    expect(off.body).toMatchObject({ job_name: 'generate-drops', is_active: false, next_run_at: null, cron_expression: '30 1 * * *' });
    expect(off.body).toEqual(described(await scheduleRow(t, 'generate-drops')));
    expect(await bossSchedule(t, 'generate-drops')).toEqual([]);
    expect(await bossSchedule(t, 'extract-blueprints')).toHaveLength(1);

    // The periodic sync (every second here) must not bring it back.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await bossSchedule(t, 'generate-drops')).toEqual([]);
    expect((await call(t, '/api/jobs/schedules/generate-drops')).body).toMatchObject({ is_active: false, next_run_at: null });

    const started = Date.now();
    const on = await putSchedule(t, 'generate-drops', { is_active: true });
    expect(on.status).toBe(200);
    expect(on.body).toMatchObject({ is_active: true, cron_expression: '30 1 * * *', timezone: 'UTC' });
    expect(on.body.next_run_at).toMatch(ISO);
    const next = new Date(on.body.next_run_at);
    expect(next.getTime()).toBeGreaterThan(started);
    expect([next.getUTCHours(), next.getUTCMinutes()]).toEqual([1, 30]);
    expect(on.body).toEqual(described(await scheduleRow(t, 'generate-drops')));
    expect(await bossSchedule(t, 'generate-drops')).toEqual([{ name: 'generate-drops', cron: '30 1 * * *', timezone: 'UTC' }]);
  });

  it('editing an inactive schedule keeps it inactive and out of pg-boss', async () => {
    expect((await putSchedule(t, 'generate-drops', { is_active: false })).status).toBe(200);
    const res = await putSchedule(t, 'generate-drops', { cron_expression: '0 3 * * *', timezone: 'Europe/Lisbon' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ cron_expression: '0 3 * * *', timezone: 'Europe/Lisbon', is_active: false, next_run_at: null });
    expect(await bossSchedule(t, 'generate-drops')).toEqual([]);
    const on = await putSchedule(t, 'generate-drops', { is_active: true });
    expect(on.body).toMatchObject({ cron_expression: '0 3 * * *', timezone: 'Europe/Lisbon', is_active: true });
    expect(on.body.next_run_at).toMatch(ISO);
    expect(await bossSchedule(t, 'generate-drops')).toEqual([{ name: 'generate-drops', cron: '0 3 * * *', timezone: 'Europe/Lisbon' }]);
  });

  it('PUT missed_policy: shown in the row and handed to pg-boss as its `missed` option', async () => {
    const missedInBoss = async () => (await t.service.boss.getSchedules('extract-blueprints')).map((s) => s.options?.missed ?? 'skip');
    expect((await scheduleRow(t, 'extract-blueprints'))?.missed_policy).toBe('skip');
    const once = await putSchedule(t, 'extract-blueprints', { missed_policy: 'once' });
    expect(once.status).toBe(200);
    expect(once.body.missed_policy).toBe('once');
    expect(await missedInBoss()).toEqual(['once']);
    // A cron edit keeps the policy.
    expect((await putSchedule(t, 'extract-blueprints', { cron_expression: '0 5 * * *' })).body.missed_policy).toBe('once');
    expect(await missedInBoss()).toEqual(['once']);
    expect((await putSchedule(t, 'extract-blueprints', { missed_policy: 'skip' })).body.missed_policy).toBe('skip');
    expect(await missedInBoss()).toEqual(['skip']);
  });

  describe('refused edits leave the row and pg-boss unchanged', () => {
    beforeAll(async () => {
      // A rare schedule, so no occurrence passes (and moves next_run_at) while a case compares rows.
      expect((await putSchedule(t, 'extract-blueprints', { cron_expression: '0 0 1 1 *' })).status).toBe(200);
    });

    const cases: Array<{ name: string; body: unknown; headers?: Record<string, string>; error: RegExp }> = [
      { name: 'words instead of a cron', body: { cron_expression: 'not a cron' }, error: /"not a cron".*(field|cron)/ },
      { name: 'a single field', body: { cron_expression: '5' }, error: /"5" has 1 field/ },
      { name: 'three fields', body: { cron_expression: '* * *' }, error: /"\* \* \*" has 3 fields/ },
      { name: 'minute out of range', body: { cron_expression: '61 * * * *' }, error: /"61 \* \* \* \*" is not a valid cron expression/ },
      { name: 'a seconds field', body: { cron_expression: '*/5 * * * * *' }, error: /seconds/ },
      { name: 'an empty cron', body: { cron_expression: '' }, error: /cron/ },
      { name: 'an unknown time zone', body: { timezone: 'Mars/Olympus' }, error: /"Mars\/Olympus" is not a valid IANA time zone/ },
      { name: 'a bad time zone with a valid cron', body: { cron_expression: '*/10 * * * *', timezone: 'Mars/Olympus' }, error: /Mars\/Olympus/ },
      { name: 'an unknown field', body: { cron: '*/5 * * * *' }, error: /unknown field.*\bcron\b/ },
      { name: 'an unknown field beside a valid one', body: { cron_expression: '*/5 * * * *', enabled: true }, error: /unknown field.*enabled/ },
      { name: 'is_active as a string', body: { is_active: 'yes' }, error: /is_active must be true or false/ },
      { name: 'cron_expression as a number', body: { cron_expression: 5 }, error: /cron_expression/ },
      { name: 'cron_expression null', body: { cron_expression: null }, error: /cron_expression/ },
      { name: 'an empty object', body: {}, error: /cron_expression.*is_active.*timezone.*missed_policy/ },
      { name: 'an unknown missed_policy', body: { missed_policy: 'all' }, error: /missed_policy must be one of: skip, once/ },
      { name: 'an array', body: [], error: /body/ },
      { name: 'a NUL in the cron', body: { cron_expression: '0 0 * * *\u0000' }, error: /NUL/ },
      { name: 'a NUL in the time zone', body: { timezone: 'UTC\u0000' }, error: /NUL/ },
      { name: 'malformed JSON', body: '{"cron_expression": "*/5 * * * *"', error: /JSON/i },
      { name: 'a text/plain body', body: 'cron_expression=*/5 * * * *', headers: { 'content-type': 'text/plain' }, error: /Content-Type must be application\/json/ },
      { name: 'JSON sent as text/plain', body: JSON.stringify({ cron_expression: '*/5 * * * *' }), headers: { 'content-type': 'text/plain' }, error: /Content-Type/ },
    ];

    for (const c of cases) {
      it(`400 for ${c.name}`, async () => {
        const rowBefore = await scheduleRow(t, 'extract-blueprints');
        const bossBefore = await bossSchedule(t, 'extract-blueprints');
        expect(bossBefore).toHaveLength(1);
        const res = await putSchedule(t, 'extract-blueprints', c.body, c.headers);
        expectError(res, 400, c.error);
        expect(Object.keys(res.body)).toEqual(['error']);
        expect(await scheduleRow(t, 'extract-blueprints')).toEqual(rowBefore);
        expect(await bossSchedule(t, 'extract-blueprints')).toEqual(bossBefore);
      });
    }

    it('404 for an unknown job, and nothing is scheduled under that name', async () => {
      const counts = await tableCounts(t);
      const res = await putSchedule(t, 'no-such-job', { cron_expression: '*/5 * * * *' });
      expectError(res, 404, /no-such-job/);
      expect(await t.service.boss.getSchedules('no-such-job')).toEqual([]);
      expect(await tableCounts(t)).toEqual(counts);
    });
  });

  it('SQL-looking job names are 404s on every route and leave the tables intact', async () => {
    const counts = await tableCounts(t);
    expect(counts.job_schedule).toBe(2);
    const name = encodeURIComponent(EVIL);
    const responses = [
      await call(t, `/api/jobs/schedules/${name}`),
      await putSchedule(t, EVIL, { is_active: false }),
      await call(t, `/api/jobs/run/${name}`, { method: 'POST' }),
      await call(t, `/api/jobs/logs/${name}/latest`),
      await call(t, `/api/jobs/logs?jobName=${name}`),
    ];
    for (const res of responses) expectError(res, 404, /unknown job/);
    expect(await tableCounts(t)).toEqual(counts);
    const { rows } = await t.service.database.pool.query(`select to_regclass('public.job_logs') as logs, to_regclass('public.job_schedule') as schedule`);
    expect(rows[0]).toEqual({ logs: 'job_logs', schedule: 'job_schedule' });
    expect((await call(t, '/api/jobs/schedules')).body).toHaveLength(2);
  });
});

describe('manual runs', () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService();
  });
  afterAll(() => t?.stop());

  it('POST /api/jobs/run/:jobName enqueues a manual run that shows up in the logs', async () => {
    const res = await call(t, '/api/jobs/run/generate-drops', { method: 'POST' });
    expect(res.status).toBe(202);
    expect(Object.keys(res.body).sort()).toEqual(['jobId', 'jobName', 'message']);
    expect(res.body.jobName).toBe('generate-drops');
    expect(res.body.jobId).toMatch(UUID);
    expect(res.body.message).toMatch(/generate-drops/);
    const jobId: string = res.body.jobId;

    const found = await t.service.boss.findJobs('generate-drops', { id: jobId });
    expect(found).toHaveLength(1);
    expect(found[0]!.data).toEqual({ trigger: 'manual' });

    const log = await eventually(async () => {
      const logs = (await call(t, '/api/jobs/logs?jobName=generate-drops')).body as Json[];
      return logs.find((l) => l.metadata?.job_id === jobId && l.status === 'COMPLETED');
    });
    expect(log).toMatchObject({ job_name: 'generate-drops', status: 'COMPLETED', items_processed: 0, items_failed: 0, error_message: null });
    expect(log.metadata).toMatchObject({ trigger: 'manual', job_id: jobId, attempt: 1 });
    expect(log.started_at).toMatch(ISO);
    expect(log.ended_at).toMatch(ISO);

    const latest = await call(t, '/api/jobs/logs/generate-drops/latest');
    expect(latest.status).toBe(200);
    expect(latest.body).toEqual(log);
    // The run is recorded on the schedule too.
    const schedule = await eventually(async () => {
      const row = (await call(t, '/api/jobs/schedules/generate-drops')).body;
      return row.last_run_at ? row : undefined;
    });
    expect(schedule.last_run_at).toMatch(ISO);
    expect(new Date(schedule.last_run_at).getTime()).toBeGreaterThanOrEqual(new Date(log.started_at).getTime());
    expect(await eventually(async () => (await t.service.boss.findJobs('generate-drops', { id: jobId }))[0]?.state === 'completed')).toBe(true);
  });

  it('a manual extract-blueprints run turns a harvest item into a blueprint readable through the API', async () => {
    t.llm.respond(() => ({
      content: { exam_name: 'Concurso TRF 2025', organization: 'TRF', topics: [{ code: 'DC-1', name: 'Direitos fundamentais', discipline: 'Direito Constitucional' }] },
    }));
    const item = await postJson(t, '/api/harvest-items', { title: 'Edital TRF', content: 'Conteúdo programático: Direito Constitucional.' });
    expect(item.status).toBe(201);
    const run = await call(t, '/api/jobs/run/extract-blueprints', { method: 'POST' });
    expect(run.status).toBe(202);

    const log = await eventually(async () => {
      const latest = await call(t, '/api/jobs/logs/extract-blueprints/latest');
      return latest.status === 200 && latest.body.status === 'COMPLETED' && latest.body.metadata.job_id === run.body.jobId ? latest.body : undefined;
    });
    expect(log).toMatchObject({ items_processed: 1, items_failed: 0, metadata: { trigger: 'manual', job_id: run.body.jobId } });

    const done = await call(t, '/api/harvest-items?status=BLUEPRINT_DONE');
    expect(done.body.map((r: Json) => r.id)).toEqual([item.body.id]);
    const blueprints = await call(t, '/api/blueprints');
    expect(blueprints.status).toBe(200);
    expect(blueprints.body).toHaveLength(1);
    expect(blueprints.body[0]).toMatchObject({ harvest_item_id: item.body.id, exam_name: 'Concurso TRF 2025', organization: 'TRF' });
    const one = await call(t, `/api/blueprints/${blueprints.body[0].id}`);
    expect(one.status).toBe(200);
    expect(one.body).toEqual(blueprints.body[0]);
    expect(one.body.topics).toEqual([{ code: 'DC-1', name: 'Direitos fundamentais', discipline: 'Direito Constitucional' }]);
  });

  it('POST /api/jobs/run/<unknown> is a 404 and creates no queue', async () => {
    const res = await call(t, '/api/jobs/run/no-such-job', { method: 'POST' });
    expectError(res, 404, /unknown job "no-such-job"/);
    expect(res.body.error).toMatch(/extract-blueprints/);
    expect(await t.service.boss.getQueue('no-such-job')).toBeNull();
  });

  it('GET on the run route is not a way to start a job', async () => {
    const before = await t.service.boss.findJobs('generate-drops');
    const res = await call(t, '/api/jobs/run/generate-drops');
    expectError(res, 404, /no route/);
    expect(await t.service.boss.findJobs('generate-drops')).toHaveLength(before.length);
  });
});

describe('manual runs: one active and one waiting per job (stately)', () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService({ SHUTDOWN_TIMEOUT_SECONDS: '5' });
    t.llm.respond(() => ({ hang: true }));
  });
  afterAll(async () => {
    // Destroying the hung socket ends the active run, so the graceful stop does not wait for it.
    await t?.llm.close();
    await t?.stop();
  });

  it('a third run while one is active and one is queued is a 409 naming the queued job', async () => {
    const item = await postJson(t, '/api/harvest-items', { title: 'Edital', content: 'Programa: Português.' });
    expect(item.status).toBe(201);

    const first = await call(t, '/api/jobs/run/extract-blueprints', { method: 'POST' });
    expect(first.status).toBe(202);
    // Active, and hung on the model.
    await eventually(async () => (await t.service.boss.findJobs('extract-blueprints', { id: first.body.jobId }))[0]?.state === 'active');
    await eventually(async () => t.llm.requests.length >= 1);
    const started = await call(t, '/api/jobs/logs/extract-blueprints/latest');
    expect(started.body).toMatchObject({ status: 'STARTED', metadata: { job_id: first.body.jobId, trigger: 'manual' } });

    const second = await call(t, '/api/jobs/run/extract-blueprints', { method: 'POST' });
    expect(second.status).toBe(202);
    expect(second.body.jobId).toMatch(UUID);
    expect(second.body.jobId).not.toBe(first.body.jobId);
    expect((await t.service.boss.findJobs('extract-blueprints', { id: second.body.jobId }))[0]?.state).toBe('created');

    const third = await call(t, '/api/jobs/run/extract-blueprints', { method: 'POST' });
    expectError(third, 409, /extract-blueprints/);
    expect(third.body).toMatchObject({ jobName: 'extract-blueprints', jobId: second.body.jobId });

    // No third job was created, and the other job's queue is unaffected.
    const jobs = await t.service.boss.findJobs('extract-blueprints');
    expect(jobs.map((j) => j.id).sort()).toEqual([first.body.jobId, second.body.jobId].sort());
    const other = await call(t, '/api/jobs/run/generate-drops', { method: 'POST' });
    expect(other.status).toBe(202);
  });
});

describe('logs and status', () => {
  let t: TestService;
  const base = Date.parse('2030-01-01T00:00:00.000Z');
  const at = (minutes: number) => new Date(base + minutes * 60_000);

  beforeAll(async () => {
    t = await startTestService();
    // Rows are inserted by hand here; no run may add its own.
    for (const job of JOBS) await t.service.boss.offWork(job);
  });
  afterAll(() => t?.stop());

  it('before any run: latest is a 404 and status shows null logs and a zero total', async () => {
    for (const job of JOBS) expectError(await call(t, `/api/jobs/logs/${job}/latest`), 404, new RegExp(`${job}.*not run`));
    const status = await call(t, '/api/jobs/status');
    expect(status.status).toBe(200);
    // No budgets set and nothing spent yet.
    const noSpend = (timezone: string) => ({ daily_budget_usd: null, spent_today_usd: 0, remaining_usd: null, day: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/), timezone });
    expect(status.body).toEqual({
      budgets: { jobs: { 'extract-blueprints': noSpend('UTC'), 'generate-drops': noSpend('UTC') }, global: noSpend('UTC') },
      schedules: (await call(t, '/api/jobs/schedules')).body,
      latestLogs: { 'extract-blueprints': null, 'generate-drops': null },
      totalLogs: 0,
      totalLogsEstimated: false,
    });
    expect((await call(t, '/api/jobs/logs')).body).toEqual([]);
  });

  it('GET /api/jobs/logs/<unknown>/latest is a 404', async () => {
    expectError(await call(t, '/api/jobs/logs/no-such-job/latest'), 404, /unknown job "no-such-job"/);
  });

  describe('with 25 logged runs', () => {
    /** Ids in the order the API must return them: newest started_at first, then highest id. */
    let expected: Array<typeof jobLogs.$inferSelect>;

    beforeAll(async () => {
      // Inserted out of time order (minute i*7 mod 25); rows 10 and 11 share a start time.
      const minute = (i: number) => ((i === 11 ? 10 : i) * 7) % 25;
      const rows = Array.from({ length: 25 }, (_, i) => ({
        job_name: i % 3 === 0 ? 'generate-drops' : 'extract-blueprints',
        status: (i % 4 === 0 ? 'FAILED' : 'COMPLETED') as 'FAILED' | 'COMPLETED',
        started_at: at(minute(i)),
        ended_at: at(minute(i) + 0.5),
        items_processed: i,
        items_failed: i % 2,
        error_message: i % 4 === 0 ? `boom ${i}` : null,
        metadata: { trigger: 'cron', n: i },
      }));
      const inserted = await t.service.database.db.insert(jobLogs).values(rows).returning();
      expected = [...inserted].sort((a, b) => b.started_at.getTime() - a.started_at.getTime() || b.id - a.id);
    });

    it('lists newest first, 20 by default, with ISO timestamps', async () => {
      const res = await call(t, '/api/jobs/logs');
      expect(res.status).toBe(200);
      expect(res.body).toHaveLength(20);
      expect(res.body.map((r: Json) => r.id)).toEqual(expected.slice(0, 20).map((r) => r.id));
      expect(res.body).toEqual(asJson(expected.slice(0, 20)));
      for (const row of res.body) {
        expect(row.started_at).toMatch(ISO);
        expect(row.ended_at).toMatch(ISO);
      }
      // Same start time: the later id first.
      const tied = expected.filter((r) => r.started_at.getTime() === at((10 * 7) % 25).getTime()).map((r) => r.id);
      expect(tied).toHaveLength(2);
      const order = res.body.map((r: Json) => r.id);
      expect(order.indexOf(Math.max(...tied))).toBeLessThan(order.indexOf(Math.min(...tied)));
    });

    it('pages with limit and offset without gaps or repeats', async () => {
      const pages: number[] = [];
      for (const offset of [0, 10, 20, 30]) {
        const res = await call(t, `/api/jobs/logs?limit=10&offset=${offset}`);
        expect(res.status).toBe(200);
        pages.push(...res.body.map((r: Json) => r.id));
      }
      expect(pages).toEqual(expected.map((r) => r.id));
      expect((await call(t, '/api/jobs/logs?limit=5&offset=5')).body.map((r: Json) => r.id)).toEqual(expected.slice(5, 10).map((r) => r.id));
      expect((await call(t, '/api/jobs/logs?limit=100')).body).toHaveLength(25);
      expect((await call(t, '/api/jobs/logs?limit=1')).body.map((r: Json) => r.id)).toEqual([expected[0]!.id]);
    });

    it('filters by jobName', async () => {
      for (const job of JOBS) {
        const res = await call(t, `/api/jobs/logs?jobName=${job}&limit=100`);
        expect(res.status).toBe(200);
        const want = expected.filter((r) => r.job_name === job).map((r) => r.id);
        expect(want.length).toBeGreaterThan(0);
        expect(res.body.map((r: Json) => r.id)).toEqual(want);
      }
      const paged = await call(t, '/api/jobs/logs?jobName=extract-blueprints&limit=3&offset=2');
      expect(paged.body.map((r: Json) => r.id)).toEqual(expected.filter((r) => r.job_name === 'extract-blueprints').slice(2, 5).map((r) => r.id));
      expectError(await call(t, '/api/jobs/logs?jobName=no-such-job'), 404, /unknown job "no-such-job"/);
    });

    it('refuses bad limit and offset values', async () => {
      for (const limit of ['0', '101', '-1', 'abc', '1.5', '']) {
        expectError(await call(t, `/api/jobs/logs?limit=${limit}`), 400, /limit/);
      }
      for (const offset of ['-1', 'abc', '2.5', '1000001']) {
        expectError(await call(t, `/api/jobs/logs?offset=${offset}`), 400, /offset/);
      }
    });

    it('latest is the newest run of that job', async () => {
      for (const job of JOBS) {
        const res = await call(t, `/api/jobs/logs/${job}/latest`);
        expect(res.status).toBe(200);
        expect(res.body).toEqual(asJson(expected.find((r) => r.job_name === job)));
      }
    });

    it('status: schedules, the latest log of each job and the total', async () => {
      const res = await call(t, '/api/jobs/status');
      expect(res.status).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual(['budgets', 'latestLogs', 'schedules', 'totalLogs', 'totalLogsEstimated']);
      expect(res.body.schedules).toEqual((await call(t, '/api/jobs/schedules')).body);
      expect(res.body.totalLogs).toBe(25);
      expect(res.body.totalLogsEstimated).toBe(false);
      expect(Object.keys(res.body.latestLogs).sort()).toEqual([...JOBS]);
      for (const job of JOBS) {
        // The same row, serialized the same way, as /logs/:jobName/latest.
        expect(res.body.latestLogs[job]).toEqual((await call(t, `/api/jobs/logs/${job}/latest`)).body);
        expect(res.body.latestLogs[job].started_at).toMatch(ISO);
      }
    });
  });

  describe('with a long history', () => {
    /** Older than the 25 rows above, so the latest runs stay the same. */
    const insertOldRuns = (n: number, fromMinute: number) =>
      t.service.database.pool.query(
        `insert into job_logs (job_name, status, started_at, ended_at)
         select case when i % 2 = 0 then 'extract-blueprints' else 'old-job' end, 'COMPLETED',
                timestamptz '2029-01-01' + i * interval '1 minute', timestamptz '2029-01-01' + i * interval '1 minute' + interval '5 seconds'
         from generate_series($1::int, $1::int + $2::int - 1) as i`,
        [fromMinute, n],
      );

    it('status counts exactly while the table has no statistics, then estimates from them; the latest runs stay the newest', async () => {
      await insertOldRuns(40_000, 1);
      const exact = await call(t, '/api/jobs/status');
      expect(exact.status).toBe(200);
      expect(exact.body).toMatchObject({ totalLogs: 40_025, totalLogsEstimated: false });

      // What autovacuum does as a table grows; then the history keeps growing.
      await t.service.database.pool.query('analyze job_logs');
      await insertOldRuns(10_000, 50_000);
      const res = await call(t, '/api/jobs/status');
      expect(res.body.totalLogsEstimated).toBe(true);
      expect(res.body.totalLogs).toBeGreaterThan(50_025 * 0.9);
      expect(res.body.totalLogs).toBeLessThan(50_025 * 1.1);
      for (const job of JOBS) expect(res.body.latestLogs[job]).toEqual((await call(t, `/api/jobs/logs/${job}/latest`)).body);
      expect(res.body.latestLogs['extract-blueprints'].started_at.startsWith('2030-')).toBe(true);
    });
  });
});
