import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeCancelledRuns, closeLostRun, closeRuns, openRuns } from '../src/db/job-logs.ts';
import { createLogRetention } from '../src/db/log-retention.ts';
import type { JobDefinition } from '../src/jobs/job.ts';
import { createRegistry } from '../src/jobs/registry.ts';
import { createLogger } from '../src/logger.ts';
import { call, expectError, type Json } from './support/http.ts';
import { closedLog, trigger as runNow } from './support/pipeline.ts';
import { startTestService, type TestService } from './support/service.ts';

/**
 * GET /api/jobs/logs: the status and trigger filters, keyset pages (`before`), and what it refuses,
 * over job_logs rows inserted with SQL (ROLE=api: no run, reaper or retention touches them).
 */

type Status = 'STARTED' | 'COMPLETED' | 'FAILED';
type Row = { id: number; job: string; status: Status; trigger: string | null; at: string };

const STATUSES: Status[] = ['STARTED', 'COMPLETED', 'FAILED'];
const TRIGGERS = ['cron', 'manual', 'cli'];
const JOBS = ['extract-blueprints', 'generate-drops'];

/** started_at, all in one format with microseconds, so that strings compare as instants do. */
const at = (minute: number, micros = 0) => `2026-05-01T10:${String(minute).padStart(2, '0')}:00.${String(micros).padStart(6, '0')}Z`;

/** 30 runs inserted out of time order (minute i*7 mod 30), with ties and a row without a trigger. */
const SPECS = Array.from({ length: 30 }, (_, i) => ({
  job: JOBS[i % 3 === 0 ? 1 : 0]!,
  status: (i % 5 === 0 ? 'FAILED' : i % 7 === 0 ? 'STARTED' : 'COMPLETED') as Status,
  trigger: i === 29 ? null : i % 4 === 0 ? 'manual' : i % 6 === 1 ? 'cli' : 'cron',
  // Rows 10, 11 and 12 start at the same instant: the higher id comes first. Rows 20 and 21 are one
  // microsecond apart, the later one inserted first (lower id): started_at decides, at full precision.
  at: i === 11 || i === 12 ? at(10) : i === 20 ? at(20, 2) : i === 21 ? at(20, 1) : at((i * 7) % 30),
}));

/** The list's order: newest started_at first, then the higher id. */
const newestFirst = (rows: Row[]) => [...rows].sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : b.id - a.id));
const ids = (rows: Array<{ id: number }>) => rows.map((row) => row.id);

describe('GET /api/jobs/logs filters and keyset pages', () => {
  let t: TestService;
  let rows: Row[];
  let all: Row[];

  const insert = async (spec: Omit<Row, 'id'>): Promise<Row> => {
    const { rows: inserted } = await t.service.database.pool.query<{ id: number }>(
      // As written by hand: the trigger column comes from metadata by itself.
      `insert into job_logs (job_name, status, started_at, ended_at, metadata)
       values ($1, $2, $3::timestamptz, case when $2 = 'STARTED' then null else $3::timestamptz + interval '1 minute' end, $4::jsonb)
       returning id`,
      [spec.job, spec.status, spec.at, JSON.stringify(spec.trigger === null ? { attempt: 1 } : { trigger: spec.trigger, attempt: 1 })],
    );
    return { ...spec, id: inserted[0]!.id };
  };
  const list = async (query: string): Promise<number[]> => {
    const res = await call(t, `/api/jobs/logs?${query}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return ids(res.body);
  };
  /** Every page of a query through `before`, `limit` rows at a time, until a short page. */
  const pages = async (query: string, limit: number): Promise<number[][]> => {
    const got: number[][] = [];
    for (let before: number | undefined; ; ) {
      const page = await list(`${query}&limit=${limit}${before === undefined ? '' : `&before=${before}`}`);
      got.push(page);
      if (page.length < limit) return got;
      before = page.at(-1);
    }
  };
  const tableDigest = async () =>
    (await t.service.database.pool.query(`select count(*)::int as n, md5(coalesce(string_agg(to_jsonb(l)::text, ',' order by id), '')) as digest from job_logs l`)).rows[0];

  beforeAll(async () => {
    t = await startTestService({ ROLE: 'api', JOB_LOGS_RETENTION_DAYS: '0' });
    rows = [];
    for (const spec of SPECS) rows.push(await insert(spec));
    all = newestFirst(rows);
  });
  afterAll(() => t?.stop());

  it('lists every run newest first, ties broken by the higher id, at microsecond precision', async () => {
    const order = await list('limit=100');
    expect(order).toEqual(ids(all));
    // Spelled out once, so a wrong sort in the test cannot hide a wrong order: the three rows of one
    // instant come one after another, the highest id first.
    const tied = ids(rows.filter((r) => r.at === at(10))).sort((a, b) => b - a);
    expect(tied).toHaveLength(3);
    const first = order.indexOf(tied[0]!);
    expect(tied.map((id) => order.indexOf(id))).toEqual([first, first + 1, first + 2]);
    // Row 20 (lower id, one microsecond later) before row 21.
    expect(order.indexOf(rows[20]!.id)).toBe(order.indexOf(rows[21]!.id) - 1);
  });

  it('filters by status, by trigger, and by any combination with jobName', async () => {
    for (const status of STATUSES) {
      const want = ids(all.filter((r) => r.status === status));
      expect(want.length).toBeGreaterThan(0);
      expect(await list(`status=${status}&limit=100`)).toEqual(want);
    }
    for (const trigger of TRIGGERS) {
      const want = ids(all.filter((r) => r.trigger === trigger));
      expect(want.length).toBeGreaterThan(0);
      expect(await list(`trigger=${trigger}&limit=100`)).toEqual(want);
    }
    let empty = 0;
    for (const job of JOBS) {
      for (const status of STATUSES) {
        for (const trigger of TRIGGERS) {
          const want = ids(all.filter((r) => r.job === job && r.status === status && r.trigger === trigger));
          if (want.length === 0) empty++;
          expect(await list(`jobName=${job}&status=${status}&trigger=${trigger}&limit=100`)).toEqual(want);
        }
      }
    }
    // Some combinations match nothing: an empty page, not an error.
    expect(empty).toBeGreaterThan(0);
    // The run without a trigger is listed unfiltered and by status, never under a trigger.
    const untriggered = rows[29]!.id;
    expect(await list('limit=100')).toContain(untriggered);
    for (const trigger of TRIGGERS) expect(await list(`trigger=${trigger}&limit=100`)).not.toContain(untriggered);
    // A row as the list shows it.
    const [failedManual] = (await call(t, '/api/jobs/logs?jobName=generate-drops&status=FAILED&trigger=manual&limit=1')).body;
    expect(failedManual).toMatchObject({ job_name: 'generate-drops', status: 'FAILED', trigger: 'manual', metadata: { trigger: 'manual' } });
  });

  it('keyset pages concatenate to the whole list, without a repeat or a gap, at every page size', async () => {
    const queries: Array<[string, Row[]]> = [
      ['', all],
      ['status=COMPLETED', all.filter((r) => r.status === 'COMPLETED')],
      ['trigger=cron', all.filter((r) => r.trigger === 'cron')],
      ['jobName=extract-blueprints&status=COMPLETED&trigger=cron', all.filter((r) => r.job === 'extract-blueprints' && r.status === 'COMPLETED' && r.trigger === 'cron')],
      // Each read through its own table or index (job_logs_failed, the partial trigger index): the same order, the same pages.
      ['status=FAILED', all.filter((r) => r.status === 'FAILED')],
      ['status=STARTED', all.filter((r) => r.status === 'STARTED')],
      ['trigger=manual', all.filter((r) => r.trigger === 'manual')],
      ['trigger=cli', all.filter((r) => r.trigger === 'cli')],
      ['jobName=generate-drops&status=FAILED', all.filter((r) => r.job === 'generate-drops' && r.status === 'FAILED')],
      ['status=FAILED&trigger=cron', all.filter((r) => r.status === 'FAILED' && r.trigger === 'cron')],
      ['jobName=extract-blueprints&trigger=manual', all.filter((r) => r.job === 'extract-blueprints' && r.trigger === 'manual')],
    ];
    for (const [query, want] of queries) {
      for (const limit of [1, 2, 3, 4, 5, 7, 100]) {
        const got = await pages(query, limit);
        expect(got.flat(), `${query} limit=${limit}`).toEqual(ids(want));
        expect(new Set(got.flat()).size).toBe(want.length);
        expect(got.slice(0, -1).every((page) => page.length === limit)).toBe(true);
      }
    }
  });

  it('before is a position in the order: the row itself need not match the filters, and the oldest row ends the list', async () => {
    const failed = all.find((r, i) => r.status === 'FAILED' && i > 5 && i < all.length - 5)!;
    const after = all.slice(all.indexOf(failed) + 1);
    expect(await list(`before=${failed.id}&limit=100`)).toEqual(ids(after));
    expect(await list(`status=COMPLETED&before=${failed.id}&limit=100`)).toEqual(ids(after.filter((r) => r.status === 'COMPLETED')));
    const completed = all.find((r, i) => r.status === 'COMPLETED' && r.trigger === 'cron' && i > 5 && i < all.length - 5)!;
    const afterCompleted = all.slice(all.indexOf(completed) + 1);
    expect(await list(`status=FAILED&before=${completed.id}&limit=100`)).toEqual(ids(afterCompleted.filter((r) => r.status === 'FAILED')));
    expect(await list(`trigger=manual&before=${completed.id}&limit=100`)).toEqual(ids(afterCompleted.filter((r) => r.trigger === 'manual')));
    expect(await list(`before=${all.at(-1)!.id}`)).toEqual([]);
    // Default limit 20.
    expect(await list(`before=${all[0]!.id}`)).toEqual(ids(all.slice(1, 21)));
  });

  it('a run that starts between two pages shifts offset pages but not keyset pages', async () => {
    const first = await list('trigger=manual&limit=3');
    const newer = await insert({ job: 'extract-blueprints', status: 'STARTED', trigger: 'manual', at: at(59) });
    try {
      const manual = ids(all.filter((r) => r.trigger === 'manual'));
      expect(await list(`trigger=manual&limit=3&before=${first.at(-1)}`)).toEqual(manual.slice(3, 6));
      // offset counts from the new newest row: the page repeats the last row of the first.
      expect(await list('trigger=manual&limit=3&offset=3')).toEqual(manual.slice(2, 5));
    } finally {
      await t.service.database.pool.query('delete from job_logs where id = $1', [newer.id]);
    }
  });

  it('offset still pages, with the filters', async () => {
    const completed = ids(all.filter((r) => r.status === 'COMPLETED'));
    expect(await list('status=COMPLETED&limit=4&offset=4')).toEqual(completed.slice(4, 8));
    expect(await list('offset=0&limit=100')).toEqual(ids(all));
    const failed = ids(all.filter((r) => r.status === 'FAILED'));
    expect(await list('status=FAILED&limit=2&offset=1')).toEqual(failed.slice(1, 3));
  });

  it('refuses an unknown status or trigger, a before that is not an id, and before with offset; a missing before row is a 404; the table is unchanged', async () => {
    const digest = await tableDigest();
    for (const status of ['RUNNING', 'failed', '', 'COMPLETED,FAILED']) {
      expectError(await call(t, `/api/jobs/logs?status=${encodeURIComponent(status)}`), 400, /^status: status must be one of STARTED, COMPLETED, FAILED$/);
    }
    for (const trigger of ['webhook', 'CRON', '']) {
      expectError(await call(t, `/api/jobs/logs?trigger=${trigger}`), 400, /^trigger: trigger must be one of cron, manual, cli$/);
    }
    for (const before of ['abc', '1.5', '0', '-3', '']) {
      expectError(await call(t, `/api/jobs/logs?before=${before}`), 400, /^before: before must be a log id \(a positive integer\)$/);
    }
    expectError(await call(t, '/api/jobs/logs?before=2147483648'), 400, /^before: before is out of range$/);
    for (const offset of ['0', '10']) {
      expectError(await call(t, `/api/jobs/logs?before=${all[0]!.id}&offset=${offset}`), 400, /^offset: offset cannot be combined with before/);
    }
    // Problems in several fields are all named.
    const both = await call(t, '/api/jobs/logs?status=nope&trigger=nope');
    expectError(both, 400, /status: .*; trigger: /);

    const missing = Math.max(...ids(rows)) + 1000;
    expectError(await call(t, `/api/jobs/logs?before=${missing}`), 404, new RegExp(`^before: no log with id ${missing}$`));
    expectError(await call(t, `/api/jobs/logs?status=FAILED&trigger=cli&before=${missing}`), 404, /no log with id/);
    expectError(await call(t, `/api/jobs/logs?jobName=no-such-job&before=${all[0]!.id}`), 404, /unknown job "no-such-job"/);
    expect(await tableDigest()).toEqual(digest);
  });
});

/**
 * ?status=FAILED reads job_logs_failed, which triggers on job_logs keep (drizzle/0010): every way a
 * run ends FAILED puts it in the list, and a row that stops being FAILED, or is deleted, leaves it.
 */
describe('GET /api/jobs/logs?status=FAILED follows every way a run fails', () => {
  let t: TestService;
  const JOB = 'doomed';
  const doomed: JobDefinition = {
    name: JOB,
    description: 'always fails',
    defaultCron: '0 0 1 1 *',
    queue: { retryLimit: 0 },
    async handler() {
      throw new Error('doomed to fail');
    },
  };
  const q = (text: string, params: unknown[] = []) => t.service.database.pool.query(text, params);
  const list = async (query: string): Promise<Json[]> => {
    const res = await call(t, `/api/jobs/logs?${query}&limit=100`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body;
  };
  const failedIds = async (query = '') => (await list(`status=FAILED${query}`)).map((row) => row.id);
  /** Opens a run as the runner does (openRuns). */
  const open = async (trigger: string): Promise<number> => {
    const jobId = crypto.randomUUID();
    return (await openRuns(t.service.database.db, JOB, [{ job_id: jobId, trigger, attempt: 1 }])).get(jobId)!;
  };
  /** job_logs_failed holds exactly the FAILED logs, with their job_name, started_at and trigger. */
  const expectInStep = async () => {
    const { rows } = await q(`
      select (select count(*) from job_logs_failed)::int as copies,
             (select count(*) from job_logs where status = 'FAILED')::int as failed,
             (select count(*) from job_logs l join job_logs_failed f on f.log_id = l.id
               where l.status = 'FAILED' and (f.job_name, f.started_at, f.trigger) is not distinct from (l.job_name, l.started_at, l.trigger))::int as matching`);
    expect(rows[0].copies).toBe(rows[0].failed);
    expect(rows[0].matching).toBe(rows[0].failed);
  };

  beforeAll(async () => {
    t = await startTestService({ JOB_LOGS_RETENTION_DAYS: '0' }, { registry: createRegistry([doomed]) });
  });
  afterAll(() => t?.stop());

  it('a run that fails in the runner, one closed by the reaper, a cancelled one and one set FAILED by hand are all listed, newest first', async () => {
    const jobId = await runNow(t, JOB);
    const byRunner = (await closedLog(t, jobId)).id;
    const reaped = await open('cli');
    expect(await closeLostRun(t.service.database.db, reaped, { reaped: true, pgboss_state: 'gone' })).toBe(true);
    const cancelled = await open('manual');
    await closeCancelledRuns(t.service.database.db, [{ id: cancelled, status: 'FAILED', items_processed: 0, items_failed: 0, error_message: 'cancelled by operator', metadata: { cancelled: true } }]);
    const completed = await open('cron');
    await closeRuns(t.service.database.db, [{ id: completed, status: 'COMPLETED', items_processed: 1, items_failed: 0, error_message: null, metadata: {} }]);
    const byHand = await open('cron');
    await q(`update job_logs set status = 'FAILED', ended_at = now(), error_message = 'set by hand' where id = $1`, [byHand]);

    expect(await failedIds()).toEqual([byHand, cancelled, reaped, byRunner]);
    expect(await failedIds(`&jobName=${JOB}`)).toEqual([byHand, cancelled, reaped, byRunner]);
    // The trigger column follows each run's metadata; the filters read it.
    expect(await failedIds('&trigger=manual')).toEqual([cancelled, byRunner]);
    expect(await failedIds('&trigger=cli')).toEqual([reaped]);
    expect((await list('trigger=cron')).map((row) => row.id)).toEqual([byHand, completed]);
    expect((await list('status=FAILED')).find((row) => row.id === byRunner)).toMatchObject({ status: 'FAILED', trigger: 'manual', error_message: 'doomed to fail', metadata: { trigger: 'manual' } });
    await expectInStep();
  });

  it('a log set back from FAILED leaves the list, and one whose started_at is changed by hand moves in it', async () => {
    const [newest, second] = await failedIds();
    await q(`update job_logs set status = 'COMPLETED', error_message = null where id = $1`, [newest]);
    expect(await failedIds()).not.toContain(newest);
    await q(`update job_logs set started_at = now() + interval '1 hour' where id = $1`, [second]);
    expect((await failedIds())[0]).toBe(second);
    await expectInStep();
  });

  it('a FAILED log deleted by the retention leaves the list', async () => {
    const failed = await failedIds();
    const [old, kept] = failed.slice(-2);
    await q(`update job_logs set started_at = now() - interval '40 days', ended_at = now() - interval '40 days' where id = $1`, [old]);
    const pass = await createLogRetention({ db: t.service.database.db, logger: createLogger('silent'), retentionDays: 30 }).run();
    expect(pass.deleted).toBe(1);
    expect(await failedIds()).toEqual(failed.filter((id) => id !== old));
    expect(await failedIds()).toContain(kept);
    expect((await q('select count(*)::int as n from job_logs_failed where log_id = $1', [old])).rows[0].n).toBe(0);
    await expectInStep();
  });

  it('a truncated job_logs leaves no FAILED run behind', async () => {
    expect((await failedIds()).length).toBeGreaterThan(0);
    await q('truncate job_logs');
    expect(await failedIds()).toEqual([]);
    await expectInStep();
  });
});
