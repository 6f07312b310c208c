import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, expectError, JOBS, type Json } from './support/http.ts';
import { startTestService, type TestService } from './support/service.ts';

/** Schedules in words (Accept-Language), macros through the API, and previews of saved and unsaved schedules. */

const JOB = 'generate-drops';
const NY = 'America/New_York';

const put = (t: TestService, job: string, body: unknown, headers: Record<string, string> = {}) =>
  call(t, `/api/jobs/schedules/${job}`, { method: 'PUT', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

async function snapshot(t: TestService): Promise<Json> {
  const { rows: schedules } = await t.service.database.pool.query('select * from job_schedule order by id');
  const { rows: changes } = await t.service.database.pool.query('select * from job_schedule_changes order by id');
  const boss = (await t.service.boss.getSchedules()).map((s) => [s.name, s.cron, s.timezone]);
  return { schedules, changes, boss };
}

describe('schedules in words, macros and previews', () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService();
    // Nothing here needs a run; a cron firing mid-test must not run anything.
    for (const job of JOBS) await t.service.boss.offWork(job);
  });
  afterAll(() => t?.stop());

  describe('macros', () => {
    it.each(['@hourly', '@daily', '@weekly', '@monthly', '@yearly', '@annually'])('%s is saved as typed and pg-boss holds it as typed', async (macro) => {
      const res = await put(t, JOB, { cron_expression: macro, timezone: NY, is_active: true });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body).toMatchObject({ cron_expression: macro, timezone: NY });
      expect(typeof res.body.next_run_at).toBe('string');
      expect(await t.service.boss.getSchedule(JOB)).toMatchObject({ cron: macro, timezone: NY });
      expect((await call(t, `/api/jobs/schedules/${JOB}`)).body.cron_expression).toBe(macro);
    });

    it('@midnight is saved as typed; pg-boss (whose parser lacks it) holds @daily, the same schedule', async () => {
      const res = await put(t, JOB, { cron_expression: '@midnight', timezone: 'UTC' });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body).toMatchObject({ cron_expression: '@midnight', description: 'At 00:00' });
      const midnight = new Date();
      midnight.setUTCHours(24, 0, 0, 0);
      expect(res.body.next_run_at).toBe(midnight.toISOString());
      expect(await t.service.boss.getSchedule(JOB)).toMatchObject({ cron: '@daily', timezone: 'UTC' });
      const { rows } = await t.service.database.pool.query('select cron_expression from job_schedule where job_name = $1', [JOB]);
      expect(rows[0].cron_expression).toBe('@midnight');
    });

    it.each(['@reboot', '@every 5m'])('%j is a 400 naming the accepted macros, and changes nothing', async (word) => {
      const before = await snapshot(t);
      expectError(await put(t, JOB, { cron_expression: word }), 400, /is not a supported macro; use one of @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually/);
      expect(await snapshot(t)).toEqual(before);
    });

    it('6 fields keep their refusal', async () => {
      const before = await snapshot(t);
      expectError(await put(t, JOB, { cron_expression: '0 30 2 * * *' }), 400, /"0 30 2 \* \* \*" has 6 fields; seconds are not supported/);
      expect(await snapshot(t)).toEqual(before);
    });
  });

  describe('description and Accept-Language', () => {
    beforeAll(async () => {
      expect((await put(t, JOB, { cron_expression: '0 0 * * *', timezone: 'UTC', is_active: true })).status).toBe(200);
    });

    const cases: Array<[string | undefined, string, string]> = [
      [undefined, 'en', 'At 00:00'],
      ['pt-BR', 'pt-BR', 'Às 00:00'],
      ['pt-PT', 'pt-BR', 'Às 00:00'],
      ['pt', 'pt-BR', 'Às 00:00'],
      ['pt-BR;q=0.9, en;q=0.8', 'pt-BR', 'Às 00:00'],
      ['en, pt;q=0.5', 'en', 'At 00:00'],
      ['fr-FR', 'en', 'At 00:00'],
    ];

    it.each(cases)('Accept-Language %j: every response carrying a schedule is in %s', async (header, contentLanguage, words) => {
      const headers: Record<string, string> = header ? { 'accept-language': header } : {};
      const list = await call(t, '/api/jobs/schedules', { headers });
      const one = await call(t, `/api/jobs/schedules/${JOB}`, { headers });
      const status = await call(t, '/api/jobs/status', { headers });
      const edited = await put(t, JOB, { timezone: 'UTC' }, headers);
      const preview = await call(t, `/api/jobs/schedules/${JOB}/preview?count=1`, { headers });
      const unsaved = await call(t, '/api/cron/preview?cron_expression=0%200%20*%20*%20*', { headers });
      for (const res of [list, one, status, edited, preview, unsaved]) {
        expect(res.status).toBe(200);
        expect(res.headers.get('content-language')).toBe(contentLanguage);
        expect(res.headers.get('vary')).toMatch(/Accept-Language/);
      }
      expect(list.body.find((s: Json) => s.job_name === JOB).description).toBe(words);
      expect(one.body.description).toBe(words);
      expect(status.body.schedules.find((s: Json) => s.job_name === JOB).description).toBe(words);
      expect(edited.body.description).toBe(words);
      expect(preview.body.description).toBe(words);
      expect(unsaved.body.description).toBe(words);
    });

    it('every schedule in a list has its own description', async () => {
      expect((await put(t, 'extract-blueprints', { cron_expression: '*/15 * * * *' })).status).toBe(200);
      const list = await call(t, '/api/jobs/schedules', { headers: { 'accept-language': 'pt-BR' } });
      expect(Object.fromEntries(list.body.map((s: Json) => [s.job_name, s.description]))).toEqual({ 'extract-blueprints': 'A cada 15 minutos', [JOB]: 'Às 00:00' });
    });
  });

  describe('GET /api/jobs/schedules/{jobName}/preview', () => {
    it('spring forward: a daily job at 02:30 in New York runs once on 2027-03-14, at 03:30 EDT', async () => {
      expect((await put(t, JOB, { cron_expression: '30 2 * * *', timezone: NY, is_active: true })).status).toBe(200);
      const res = await call(t, `/api/jobs/schedules/${JOB}/preview?count=5&from=2027-03-12T00:00:00Z`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        job_name: JOB,
        cron_expression: '30 2 * * *',
        timezone: NY,
        is_active: true,
        description: 'At 02:30',
        runs: [
          { at: '2027-03-12T07:30:00.000Z', local: '2027-03-12T02:30:00-05:00' },
          { at: '2027-03-13T07:30:00.000Z', local: '2027-03-13T02:30:00-05:00' },
          { at: '2027-03-14T07:30:00.000Z', local: '2027-03-14T03:30:00-04:00' },
          { at: '2027-03-15T06:30:00.000Z', local: '2027-03-15T02:30:00-04:00' },
          { at: '2027-03-16T06:30:00.000Z', local: '2027-03-16T02:30:00-04:00' },
        ],
      });
      expect(res.body.runs.filter((run: Json) => run.local.startsWith('2027-03-14'))).toHaveLength(1);
    });

    it('fall back: a daily job at 01:30 in New York runs once on 2027-11-07, the first 01:30 (EDT)', async () => {
      expect((await put(t, JOB, { cron_expression: '30 1 * * *' })).status).toBe(200);
      const res = await call(t, `/api/jobs/schedules/${JOB}/preview?count=4&from=2027-11-05T00:00:00-04:00`);
      expect(res.status).toBe(200);
      const onTheDay = res.body.runs.filter((run: Json) => run.local.startsWith('2027-11-07'));
      expect(onTheDay).toEqual([{ at: '2027-11-07T05:30:00.000Z', local: '2027-11-07T01:30:00-04:00' }]);
      expect(res.body.runs.map((run: Json) => run.local)).toEqual(['2027-11-05T01:30:00-04:00', '2027-11-06T01:30:00-04:00', '2027-11-07T01:30:00-04:00', '2027-11-08T01:30:00-05:00']);
    });

    it('lists 10 runs after now by default', async () => {
      expect((await put(t, JOB, { cron_expression: '*/5 * * * *', timezone: 'UTC' })).status).toBe(200);
      const started = Date.now();
      const res = await call(t, `/api/jobs/schedules/${JOB}/preview`);
      expect(res.status).toBe(200);
      expect(res.body.runs).toHaveLength(10);
      const first = new Date(res.body.runs[0].at).getTime();
      expect(first).toBeGreaterThan(started - 1_000);
      expect(first - started).toBeLessThanOrEqual(5 * 60_000);
      expect(res.body.runs.every((run: Json) => new Date(run.at).getTime() % (5 * 60_000) === 0)).toBe(true);
    });

    it('a paused schedule says so, and still lists what it would do', async () => {
      expect((await put(t, JOB, { cron_expression: '0 9 * * 1-5', timezone: 'America/Sao_Paulo', is_active: false })).status).toBe(200);
      const res = await call(t, `/api/jobs/schedules/${JOB}/preview?count=2&from=2027-03-12T00:00:00Z`);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ is_active: false, paused_note: expect.stringMatching(/paused/) });
      expect(res.body.runs).toEqual([
        { at: '2027-03-12T12:00:00.000Z', local: '2027-03-12T09:00:00-03:00' },
        { at: '2027-03-15T12:00:00.000Z', local: '2027-03-15T09:00:00-03:00' },
      ]);
      const pt = await call(t, `/api/jobs/schedules/${JOB}/preview?count=1`, { headers: { 'accept-language': 'pt-BR' } });
      expect(pt.body.paused_note).toMatch(/pausado/);
      expect(pt.body.description).toBe('Às 09:00, de segunda-feira a sexta-feira');
      // An active one carries no note.
      expect((await put(t, JOB, { is_active: true })).status).toBe(200);
      expect((await call(t, `/api/jobs/schedules/${JOB}/preview?count=1`)).body).not.toHaveProperty('paused_note');
    });

    it.each([
      ['count=0', /count: count must be between 1 and 100/],
      ['count=101', /count: count must be between 1 and 100/],
      ['count=abc', /count: count must be a number/],
      ['count=2.5', /count: count must be an integer/],
      ['from=yesterday', /from: from must be an ISO-8601 instant/],
      ['from=2027-03-12T00:00:00', /from: from must be an ISO-8601 instant with seconds and a zone designator/],
      ['from=2027-03-12', /from: from must be an ISO-8601 instant/],
      ['from=1969-12-31T23:59:59Z', /from: from must be 1970-01-01T00:00:00Z or later/],
    ])('?%s is a 400 naming the parameter', async (query, error) => {
      expectError(await call(t, `/api/jobs/schedules/${JOB}/preview?${query}`), 400, error);
    });

    it('an unknown job is a 404', async () => {
      expectError(await call(t, '/api/jobs/schedules/no-such-job/preview'), 404, /unknown job "no-such-job"/);
    });

    it('a row edited by hand into an invalid cron is a 409 saying what is wrong', async () => {
      await t.service.database.pool.query(`update job_schedule set cron_expression = '0 30 2 * * *' where job_name = $1`, [JOB]);
      try {
        expectError(await call(t, `/api/jobs/schedules/${JOB}/preview`), 409, /the saved schedule of generate-drops cannot run.*6 fields/);
        // Still readable, with a description that says it cannot run.
        expect((await call(t, `/api/jobs/schedules/${JOB}`)).body.description).toMatch(/^not a schedule pg-boss can run/);
      } finally {
        await t.service.database.pool.query(`update job_schedule set cron_expression = '30 2 * * *' where job_name = $1`, [JOB]);
      }
    });
  });

  describe('GET /api/cron/preview', () => {
    it('previews an unsaved expression in a zone, across the spring-forward day', async () => {
      const res = await call(t, `/api/cron/preview?cron_expression=${encodeURIComponent('30 2 * * *')}&timezone=${NY}&count=3&from=2027-03-13T00:00:00Z`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        cron_expression: '30 2 * * *',
        timezone: NY,
        description: 'At 02:30',
        runs: [
          { at: '2027-03-13T07:30:00.000Z', local: '2027-03-13T02:30:00-05:00' },
          { at: '2027-03-14T07:30:00.000Z', local: '2027-03-14T03:30:00-04:00' },
          { at: '2027-03-15T06:30:00.000Z', local: '2027-03-15T02:30:00-04:00' },
        ],
      });
    });

    it("uses the service's SCHEDULER_TIMEZONE when no zone is given, and takes macros", async () => {
      const res = await call(t, `/api/cron/preview?cron_expression=%40midnight&count=2&from=2027-01-01T12:00:00Z`, { headers: { 'accept-language': 'pt' } });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        cron_expression: '@midnight',
        timezone: t.env.SCHEDULER_TIMEZONE,
        description: 'Às 00:00',
        runs: [
          { at: '2027-01-02T00:00:00.000Z', local: '2027-01-02T00:00:00+00:00' },
          { at: '2027-01-03T00:00:00.000Z', local: '2027-01-03T00:00:00+00:00' },
        ],
      });
    });

    it('a sparse schedule answers however long its walk: fewer runs, with a note, rather than a blocked service', async () => {
      const res = await call(t, `/api/cron/preview?cron_expression=${encodeURIComponent('0 0 29 2 *')}&timezone=UTC&count=100&from=2027-01-01T00:00:00Z`);
      expect(res.status).toBe(200);
      expect(res.body.runs[0]).toEqual({ at: '2028-02-29T00:00:00.000Z', local: '2028-02-29T00:00:00+00:00' });
      if (res.body.runs.length < 100) expect(res.body.truncated_note).toMatch(/ask again with from = the last run/);
      else expect(res.body).not.toHaveProperty('truncated_note');
    });

    it('lists nothing past the year 9999, and says so', async () => {
      const res = await call(t, `/api/cron/preview?cron_expression=${encodeURIComponent('0 0 * * *')}&timezone=UTC&count=5&from=9999-12-29T12:00:00Z`);
      expect(res.status).toBe(200);
      expect(res.body.runs.map((run: Json) => run.at)).toEqual(['9999-12-30T00:00:00.000Z', '9999-12-31T00:00:00.000Z']);
      expect(res.body.truncated_note).toBe('no runs listed after the year 9999');
    });

    it('saves nothing', async () => {
      const before = await snapshot(t);
      expect((await call(t, '/api/cron/preview?cron_expression=*%20*%20*%20*%20*')).status).toBe(200);
      expect(await snapshot(t)).toEqual(before);
    });

    it.each([
      ['cron_expression=0%2030%202%20*%20*%20*', /"0 30 2 \* \* \*" has 6 fields; seconds are not supported/],
      ['cron_expression=61%20*%20*%20*%20*', /"61 \* \* \* \*" is not a valid cron expression/],
      ['cron_expression=%40reboot', /"@reboot" is not a supported macro/],
      ['cron_expression=*%20*%20*', /"\* \* \*" has 3 fields/],
      ['cron_expression=0%200%20*%20*%20*&timezone=Mars%2FOlympus', /"Mars\/Olympus" is not a valid IANA time zone/],
      ['', /cron_expression: cron_expression is required: 5 fields or a macro/],
      ['cron_expression=0%200%20*%20*%20*%00', /NUL/],
      ['cron_expression=0%200%20*%20*%20*&count=0', /count: count must be between 1 and 100/],
      ['cron_expression=0%200%20*%20*%20*&count=101', /count: count must be between 1 and 100/],
      ['cron_expression=0%200%20*%20*%20*&count=abc', /count: count must be a number/],
      ['cron_expression=0%200%20*%20*%20*&from=soon', /from: from must be an ISO-8601 instant/],
    ])('?%s is a 400 with the message a PUT gets', async (query, error) => {
      expectError(await call(t, `/api/cron/preview?${query}`), 400, error);
    });

    it('refuses exactly what a PUT refuses, in the same words', async () => {
      for (const cron of ['0 30 2 * * *', '@every 5m', '5']) {
        const previewed = await call(t, `/api/cron/preview?cron_expression=${encodeURIComponent(cron)}`);
        const saved = await put(t, JOB, { cron_expression: cron });
        expect(previewed.status).toBe(400);
        expect(saved.status).toBe(400);
        expect(previewed.body.error).toBe(saved.body.error);
      }
    });
  });
});
