import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEAD_LETTER_RETENTION, JOB_QUEUE_RETENTION, PG_BOSS_MAINTENANCE_INTERVAL_SECONDS } from '../src/boss/client.ts';
import { deadLetterQueueOf } from '../src/jobs/job.ts';
import { createDb, type Database } from '../src/db/client.ts';
import { createLogRetention, RETENTION_LOCK_NAME } from '../src/db/log-retention.ts';
import { EnvError, parseEnv } from '../src/env.ts';
import { createLogger } from '../src/logger.ts';
import { JOBS } from './support/http.ts';
import { createTestDatabase, type TestDatabase } from './support/postgres.ts';
import { eventually, startTestService, type TestService } from './support/service.ts';

/**
 * job_logs retention (src/db/log-retention.ts, wired in src/service.ts) and pg-boss's own retention
 * settings (src/boss/client.ts), against the README's "Data retention" table.
 */

type Row = { label: string; status: 'STARTED' | 'COMPLETED' | 'FAILED'; startedDaysAgo: number; endedDaysAgo?: number | null };

/** Inserts logs with the given ages (days before now); returns label → id. */
async function insertLogs(client: pg.Client, rows: Row[]): Promise<Map<string, number>> {
  const ids = new Map<string, number>();
  for (const row of rows) {
    const ended = row.endedDaysAgo === undefined ? (row.status === 'STARTED' ? null : row.startedDaysAgo) : row.endedDaysAgo;
    const { rows: [inserted] } = await client.query<{ id: number }>(
      `insert into job_logs (job_name, status, started_at, ended_at, metadata)
       values ('extract-blueprints', $1, now() - make_interval(days => $2), case when $3::int is null then null else now() - make_interval(days => $3::int) end, $4)
       returning id`,
      [row.status, row.startedDaysAgo, ended, { label: row.label }],
    );
    ids.set(row.label, inserted!.id);
  }
  return ids;
}

/** `count` finished logs started `daysAgo` days ago (a second apart). */
async function insertOld(client: pg.Client, count: number, daysAgo = 200): Promise<void> {
  await client.query(
    `insert into job_logs (job_name, status, started_at, ended_at)
     select 'generate-drops', 'COMPLETED', now() - make_interval(days => $2) + i * interval '1 second', now() - make_interval(days => $2) + i * interval '1 second'
     from generate_series(1, $1) as i`,
    [count, daysAgo],
  );
}

async function labels(client: pg.Client): Promise<string[]> {
  const { rows } = await client.query<{ label: string }>(`select metadata->>'label' as label from job_logs order by id`);
  return rows.map((r) => r.label);
}

async function count(client: pg.Client): Promise<number> {
  const { rows: [row] } = await client.query<{ n: number }>('select count(*)::int as n from job_logs');
  return row!.n;
}

/**
 * Records every DELETE statement on job_logs (rows removed, its transaction) through a
 * statement-level trigger: what the database saw, not what the module says it did.
 */
async function recordDeletes<T>(client: pg.Client, body: (seen: () => Promise<Array<{ rows: number; txid: string }>>) => Promise<T>): Promise<T> {
  await client.query(`
    create table deletes_seen (seq serial primary key, rows int not null, txid bigint not null);
    create function note_delete() returns trigger language plpgsql as $$
      begin
        insert into deletes_seen (rows, txid) select count(*), txid_current() from gone;
        return null;
      end $$;
    create trigger job_logs_deletes after delete on job_logs referencing old table as gone for each statement execute function note_delete();`);
  try {
    return await body(async () => (await client.query<{ rows: number; txid: string }>('select rows, txid::text from deletes_seen order by seq')).rows);
  } finally {
    await client.query('drop trigger job_logs_deletes on job_logs; drop function note_delete(); drop table deletes_seen');
  }
}

const silent = createLogger('silent');

describe('job_logs retention (the module)', () => {
  let database: TestDatabase;
  let client: pg.Client;
  const pools: Database[] = [];
  const dbOf = () => {
    const pool = createDb(database.url, { max: 2 });
    pools.push(pool);
    return pool.db;
  };

  beforeAll(async () => {
    database = await createTestDatabase();
    client = new pg.Client({ connectionString: database.url });
    await client.connect();
  });
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.close()));
    await client?.end();
    await database?.drop();
  });

  it('deletes finished logs past the retention, keeps recent ones and every STARTED run, however old', async () => {
    await client.query('truncate job_logs');
    await insertLogs(client, [
      { label: 'completed 200 d ago', status: 'COMPLETED', startedDaysAgo: 200 },
      { label: 'failed 91 d ago', status: 'FAILED', startedDaysAgo: 91 },
      { label: 'completed 89 d ago', status: 'COMPLETED', startedDaysAgo: 89 },
      { label: 'failed 10 d ago', status: 'FAILED', startedDaysAgo: 10 },
      { label: 'started 400 d ago, never closed', status: 'STARTED', startedDaysAgo: 400 },
      // A run the reaper closed recently although it started long ago: kept from its end.
      { label: 'started 100 d ago, closed 5 d ago', status: 'FAILED', startedDaysAgo: 100, endedDaysAgo: 5 },
      { label: 'completed today', status: 'COMPLETED', startedDaysAgo: 0 },
    ]);
    const retention = createLogRetention({ db: dbOf(), logger: silent, retentionDays: 90 });

    const pass = await retention.run();
    expect(pass).toMatchObject({ deleted: 2, busy: false });
    expect(await labels(client)).toEqual([
      'completed 89 d ago',
      'failed 10 d ago',
      'started 400 d ago, never closed',
      'started 100 d ago, closed 5 d ago',
      'completed today',
    ]);
    // Nothing left to do: a second pass deletes nothing.
    expect((await retention.run()).deleted).toBe(0);
  });

  it('JOB_LOGS_RETENTION_DAYS 0 keeps everything', async () => {
    await client.query('truncate job_logs');
    await insertOld(client, 5, 5_000);
    expect(await createLogRetention({ db: dbOf(), logger: silent, retentionDays: 0 }).run()).toMatchObject({ deleted: 0, batches: 0 });
    expect(await count(client)).toBe(5);
    expect(parseEnv({}).JOB_LOGS_RETENTION_DAYS).toBe(90);
    expect(parseEnv({ JOB_LOGS_RETENTION_DAYS: '0' }).JOB_LOGS_RETENTION_DAYS).toBe(0);
    expect(() => parseEnv({ JOB_LOGS_RETENTION_DAYS: '-1' })).toThrow(EnvError);
    expect(() => parseEnv({ JOB_LOGS_RETENTION_DAYS: '7.5' })).toThrow(/JOB_LOGS_RETENTION_DAYS: must be a whole number/);
  });

  it('deletes in bounded batches, each its own short transaction', async () => {
    await client.query('truncate job_logs');
    await insertOld(client, 25);
    await insertLogs(client, [{ label: 'recent', status: 'COMPLETED', startedDaysAgo: 1 }]);
    await recordDeletes(client, async (seen) => {
      const pass = await createLogRetention({ db: dbOf(), logger: silent, retentionDays: 90, batchSize: 10, pauseMs: 0 }).run();
      expect(pass).toMatchObject({ deleted: 25, batches: 3 });
      const statements = await seen();
      expect(statements.map((s) => s.rows)).toEqual([10, 10, 5]);
      expect(new Set(statements.map((s) => s.txid)).size).toBe(3);
    });
    expect(await labels(client)).toEqual(['recent']);
  });

  it('waits its turn: while another instance holds the lock, a pass deletes nothing', async () => {
    await client.query('truncate job_logs');
    await insertOld(client, 3);
    const retention = createLogRetention({ db: dbOf(), logger: silent, retentionDays: 90 });
    // Another instance in the middle of a batch.
    const other = new pg.Client({ connectionString: database.url });
    await other.connect();
    try {
      await other.query('begin');
      await other.query('select pg_advisory_xact_lock(hashtextextended($1, 0))', [RETENTION_LOCK_NAME]);
      expect(await retention.run()).toMatchObject({ deleted: 0, busy: true });
      expect(await count(client)).toBe(3);
      await other.query('commit');
    } finally {
      await other.end();
    }
    expect(await retention.run()).toMatchObject({ deleted: 3, busy: false });
  });

  it('two instances at once: every row deleted once, neither fails', async () => {
    await client.query('truncate job_logs');
    await insertOld(client, 300);
    await insertLogs(client, [{ label: 'recent', status: 'COMPLETED', startedDaysAgo: 1 }]);
    await recordDeletes(client, async (seen) => {
      const options = { logger: silent, retentionDays: 90, batchSize: 7, pauseMs: 0 };
      const passes = await Promise.all([createLogRetention({ ...options, db: dbOf() }).run(), createLogRetention({ ...options, db: dbOf() }).run()]);
      // A pass that meets the other's batch ends (busy); whatever is left goes on the next pass.
      const rest = passes.some((p) => p.busy) ? await createLogRetention({ ...options, db: dbOf() }).run() : { deleted: 0 };
      expect(passes[0]!.deleted + passes[1]!.deleted + rest.deleted).toBe(300);
      expect((await seen()).reduce((sum, s) => sum + s.rows, 0)).toBe(300);
    });
    expect(await labels(client)).toEqual(['recent']);
  });

  it('stop() ends a pass between batches', async () => {
    await client.query('truncate job_logs');
    await insertOld(client, 50);
    const retention = createLogRetention({ db: dbOf(), logger: silent, retentionDays: 90, batchSize: 10, pauseMs: 60_000 });
    const pass = retention.run();
    // The first batch commits, then the pass waits a minute, unless stopped.
    await eventually(async () => (await count(client)) === 40);
    const t0 = Date.now();
    retention.stop();
    expect(await pass).toMatchObject({ deleted: 10, batches: 1 });
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(await count(client)).toBe(40);
  });
});

describe('job_logs retention in the service', () => {
  let database: TestDatabase;
  let client: pg.Client;
  let t: TestService | undefined;

  beforeAll(async () => {
    database = await createTestDatabase();
    client = new pg.Client({ connectionString: database.url });
    await client.connect();
  });
  afterAll(async () => {
    await t?.stop();
    await client?.end();
    await database?.drop();
  });

  it('only instances that run background work delete, at start, and say how many rows', async () => {
    await insertLogs(client, [
      { label: 'completed 120 d ago', status: 'COMPLETED', startedDaysAgo: 120 },
      { label: 'failed 95 d ago', status: 'FAILED', startedDaysAgo: 95 },
      { label: 'started 300 d ago', status: 'STARTED', startedDaysAgo: 300 },
      { label: 'completed 30 d ago', status: 'COMPLETED', startedDaysAgo: 30 },
    ]);
    const kept = ['started 300 d ago', 'completed 30 d ago'];

    // ROLE=api runs no background work; JOB_LOGS_RETENTION_DAYS=0 keeps everything.
    for (const env of [{ ROLE: 'api' }, { JOB_LOGS_RETENTION_DAYS: '0' }]) {
      t = await startTestService(env, { database });
      // Long enough for a start-up pass to delete the two old rows (the worker below takes less).
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(await labels(client), JSON.stringify(env)).toHaveLength(4);
      if (env.JOB_LOGS_RETENTION_DAYS === '0') expect(t.logs.some((l) => /JOB_LOGS_RETENTION_DAYS=0: job_logs rows are kept forever/.test(String(l.msg)))).toBe(true);
      await t.stop();
    }

    t = await startTestService({ ROLE: 'worker', JOB_LOGS_RETENTION_DAYS: '60' }, { database });
    await eventually(async () => (await labels(client)).length === 2);
    expect(await labels(client)).toEqual(kept);
    const line = await eventually(async () => t!.logs.find((l) => /^deleted \d+ job_logs rows/.test(String(l.msg))));
    expect(line).toMatchObject({ level: 30, deleted: 2, retentionDays: 60 });
    expect(line.msg).toMatch(/^deleted 2 job_logs rows older than 60 days \(1 batch, [\d.]+ s\)$/);
    await t.stop();
  });
});

describe("pg-boss's retention settings", () => {
  let t: TestService;
  let client: pg.Client;
  let readme: string;

  beforeAll(async () => {
    // API-only: no worker takes the jobs this test plants.
    t = await startTestService({ ROLE: 'api' });
    client = new pg.Client({ connectionString: t.database.url });
    await client.connect();
    readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
  });
  afterAll(async () => {
    await client?.end();
    await t?.stop();
  });

  /** The README's "Data retention" row whose first cell starts with `label`. */
  const readmeRow = (label: string) => {
    const section = readme.split('\n## Data retention')[1]?.split('\n## ')[0] ?? '';
    const row = section.split('\n').find((line) => line.startsWith(`| ${label}`));
    if (!row) throw new Error(`README "Data retention" has no row starting "| ${label}"`);
    return row;
  };
  /** `name: 123` in code quotes within a README row. */
  const documented = (row: string, option: string) => Number(new RegExp('`' + option + ': (\\d+)`').exec(row)?.[1]);

  it('every queue has the retention the README gives, read back from pg-boss', async () => {
    const finished = readmeRow('finished pg-boss jobs');
    const waiting = readmeRow('pg-boss jobs still waiting');
    const deadLetters = readmeRow('dead letters');
    expect(documented(finished, 'deleteAfterSeconds')).toBe(JOB_QUEUE_RETENTION.deleteAfterSeconds);
    expect(documented(waiting, 'retentionSeconds')).toBe(JOB_QUEUE_RETENTION.retentionSeconds);
    expect(documented(deadLetters, 'retentionSeconds')).toBe(DEAD_LETTER_RETENTION.retentionSeconds);
    expect(documented(deadLetters, 'deleteAfterSeconds')).toBe(DEAD_LETTER_RETENTION.deleteAfterSeconds);
    expect(documented(finished, 'maintenanceIntervalSeconds')).toBe(PG_BOSS_MAINTENANCE_INTERVAL_SECONDS);
    expect(JOB_QUEUE_RETENTION).toEqual({ deleteAfterSeconds: 7 * 86_400, retentionSeconds: 14 * 86_400 });
    expect(DEAD_LETTER_RETENTION).toEqual({ deleteAfterSeconds: 90 * 86_400, retentionSeconds: 90 * 86_400 });

    for (const job of JOBS) {
      expect(await t.service.boss.getQueue(job)).toMatchObject(JOB_QUEUE_RETENTION);
      expect(await t.service.boss.getQueue(deadLetterQueueOf(job))).toMatchObject(DEAD_LETTER_RETENTION);
    }
    // The same, as stored.
    const { rows } = await client.query<{ name: string; retention_seconds: number; deletion_seconds: number }>(
      `select name, retention_seconds, deletion_seconds from pgboss.queue where name = any($1) order by name`,
      [[...JOBS, ...JOBS.map(deadLetterQueueOf)]],
    );
    expect(rows).toHaveLength(4);
    for (const row of rows) {
      const expected = row.name.endsWith('/dead-letter') ? DEAD_LETTER_RETENTION : JOB_QUEUE_RETENTION;
      expect([row.retention_seconds, row.deletion_seconds], row.name).toEqual([expected.retentionSeconds, expected.deleteAfterSeconds]);
    }
  });

  it("pg-boss's sweep deletes finished jobs a week after they finished and keeps younger ones", async () => {
    const boss = t.service.boss;
    const job = JOBS[0];
    // Stately queue: one waiting job at a time, so each is finished before the next is sent.
    const plant = async (state: 'completed' | 'failed', daysAgo: number) => {
      const id = await boss.send(job, { trigger: 'manual' });
      if (!id) throw new Error('send refused');
      await client.query(`update pgboss.job set state = $2, started_on = now() - make_interval(days => $3), completed_on = now() - make_interval(days => $3) where name = $4 and id = $1`, [
        id,
        state,
        daysAgo,
        job,
      ]);
      return id;
    };
    const oldCompleted = await plant('completed', 8);
    const oldFailed = await plant('failed', 8);
    const young = await plant('completed', 6);
    const { rows } = await client.query<{ deletion_seconds: number }>('select deletion_seconds from pgboss.job where id = $1', [young]);
    expect(rows[0]!.deletion_seconds).toBe(7 * 86_400);

    // Make the queue due for its sweep now instead of within the hour, and run it.
    await client.query('update pgboss.queue set maintain_on = null where name = $1', [job]);
    await boss.supervise(job);
    const left = async () => (await client.query<{ id: string }>('select id from pgboss.job where name = $1 and id = any($2)', [job, [oldCompleted, oldFailed, young]])).rows.map((r) => r.id);
    expect(await left()).toEqual([young]);
  });
});
