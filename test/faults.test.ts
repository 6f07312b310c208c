import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAI } from '../testkit/fake-openai.ts';
import { sleep, waitFor } from '../testkit/poll.ts';
import { freePort } from '../testkit/ports.ts';
import {
  addItems,
  blueprintFor,
  parseJsonLines,
  requestsPerItem,
  serviceEnv,
  ServiceProcesses,
  sqlClient,
  triggerRun,
  type Sql,
} from './support/faults.ts';
import { createTestDatabase, type TestDatabase } from './support/postgres.ts';
import { runScript } from '../testkit/processes.ts';

/**
 * Real faults injected into real service processes (`node src/main.ts`): kill -9 mid-run, SIGTERM
 * mid-run, and a database that is not there at startup. Nothing may be lost or left half-done.
 */

/** The log of the run of `jobId` once it is STARTED and holds `itemId` as PROCESSING. */
function runningLog(sql: Sql, jobId: string, itemId: number) {
  return waitFor(`run of job ${jobId} STARTED with item ${itemId} PROCESSING`, async () => {
    const [row] = await sql.q(
      `select l.* from job_logs l join harvest_items i on i.claimed_by_log_id = l.id
       where l.metadata->>'job_id' = $1 and l.status = 'STARTED' and i.id = $2 and i.status = 'PROCESSING'`,
      [jobId, itemId],
    );
    return row;
  }, 20_000);
}

const closedLog = (sql: Sql, jobId: string, timeoutMs: number) =>
  waitFor(`run of job ${jobId} to close`, async () => (await sql.q(`select * from job_logs where metadata->>'job_id' = $1 and status <> 'STARTED'`, [jobId]))[0], timeoutMs);

const bossJob = async (sql: Sql, jobId: string) => (await sql.q(`select state from pgboss.job where id = $1`, [jobId]))[0];

describe('kill -9 during a run', () => {
  it('the next instance closes the lost run as FAILED, gives the item back, pg-boss retries it, and the item is processed once', async () => {
    const db = await createTestDatabase();
    const llm = await startFakeOpenAI();
    const sql = sqlClient(db.url);
    const procs = new ServiceProcesses();
    try {
      // The first request never answers (the run is mid-flight when it is killed); later ones do.
      let answered = 0;
      llm.respond((req) => (answered++ === 0 ? { hang: true } : blueprintFor(req)));
      const { k1 } = await addItems(sql, ['k1']);

      const a = await procs.start(serviceEnv(db.url, llm.url));
      const jobId = await triggerRun(a.url);
      const log = await runningLog(sql, jobId, k1!);
      await waitFor('the LLM request of the run', () => llm.requests.length === 1, 10_000);
      // The steady state of any instance up for more than a few seconds: its pg-boss supervisor has
      // made a monitor pass over the queue (the first comes 10 s after start). The kill lands after it.
      await waitFor('a supervise pass of A over the queue', async () => (await sql.q(`select 1 from pgboss.queue where name = 'extract-blueprints' and monitor_claim_on is not null`)).length === 1, 30_000);

      expect((await a.signal('SIGKILL')).code).toBeNull();
      const killedAt = Date.now();
      const b = await procs.start(serviceEnv(db.url, llm.url));

      // pg-boss fails the job once its heartbeat is 10 s stale, in its supervisor's monitor pass over
      // the queue (meant to come every 10 s); the reaper (every 15 s) then closes the log. ~30 s by
      // the README, 45 s allowed.
      const reaped = await waitFor('the lost run to be closed', async () => (await sql.q(`select * from job_logs where id = $1 and status <> 'STARTED'`, [log.id]))[0], 120_000, 500);
      const reapedAfterMs = Date.now() - killedAt;
      // Soft, so the rest is still checked when only the delay is off.
      expect.soft(reapedAfterMs, 'ms from kill -9 to the run closed as FAILED').toBeLessThan(45_000);
      expect(reaped.status).toBe('FAILED');
      expect(reaped.error_message).toBe('interrupted: worker lost');
      expect(reaped.ended_at).not.toBeNull();
      expect(reaped.metadata).toMatchObject({ job_id: jobId, attempt: 1, reaped: true, pgboss_state: 'retry' });
      await waitFor('B to log the reaping', () => b.logs().some((l) => /lost its worker: closed as FAILED/.test(l.msg)), 5_000, 50);

      const [item] = await sql.q(`select status, claimed_by_log_id from harvest_items where id = $1`, [k1]);
      expect(item).toEqual({ status: 'PENDING', claimed_by_log_id: null });
      // pg-boss will run the job again (after its 30 s+ backoff): it waits as `retry`, not `active`.
      expect((await bossJob(sql, jobId)).state).toBe('retry');

      // A manual run meanwhile processes the given-back item, once.
      const manual = await triggerRun(b.url);
      const done = await closedLog(sql, manual, 20_000);
      expect(done).toMatchObject({ status: 'COMPLETED', items_processed: 1, items_failed: 0 });
      expect((await sql.q(`select status from harvest_items where id = $1`, [k1]))[0].status).toBe('BLUEPRINT_DONE');
      expect(await sql.q(`select harvest_item_id from exam_blueprints`)).toEqual([{ harvest_item_id: k1 }]);
      // The hung attempt and the successful one.
      expect(requestsPerItem(llm.requests)).toEqual({ k1: 2 });
    } finally {
      await procs.killAll();
      await llm.close();
      await sql.close();
      await db.drop();
    }
  }, 180_000);
});

describe('SIGTERM during a run', () => {
  let db: TestDatabase;
  let llm: FakeOpenAI;
  let sql: Sql;
  const procs = new ServiceProcesses();
  beforeAll(async () => {
    db = await createTestDatabase();
    llm = await startFakeOpenAI();
    sql = sqlClient(db.url);
  });
  afterAll(async () => {
    await procs.killAll();
    await llm?.close();
    await sql?.close();
    await db?.drop();
  });

  it('a run that finishes within SHUTDOWN_TIMEOUT_SECONDS ends COMPLETED and the process exits 0', async () => {
    llm.respond(async (req) => {
      await sleep(1_000);
      return blueprintFor(req);
    });
    const { s1 } = await addItems(sql, ['s1']);
    const proc = await procs.start(serviceEnv(db.url, llm.url, { SHUTDOWN_TIMEOUT_SECONDS: '10' }));
    const jobId = await triggerRun(proc.url);
    await runningLog(sql, jobId, s1!);
    await waitFor('the LLM request for s1', () => requestsPerItem(llm.requests).s1 === 1, 10_000, 50);

    const { code, ms } = await proc.signal('SIGTERM', 20_000);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(10_000);

    const [log] = await sql.q(`select * from job_logs where metadata->>'job_id' = $1`, [jobId]);
    expect(log).toMatchObject({ status: 'COMPLETED', items_processed: 1 });
    expect((await sql.q(`select status from harvest_items where id = $1`, [s1]))[0].status).toBe('BLUEPRINT_DONE');
    expect((await bossJob(sql, jobId)).state).toBe('completed');
    await waitFor('the last log line', () => proc.logs().some((l) => l.msg === 'stopped'), 2_000, 50);
  }, 60_000);

  it('a run still going at the end of SHUTDOWN_TIMEOUT_SECONDS is FAILED, its item PENDING, its job retried; the process exits 0', async () => {
    llm.respond(() => ({ hang: true }));
    const { s2 } = await addItems(sql, ['s2']);
    const proc = await procs.start(serviceEnv(db.url, llm.url, { SHUTDOWN_TIMEOUT_SECONDS: '2' }));
    const jobId = await triggerRun(proc.url);
    const running = await runningLog(sql, jobId, s2!);
    await waitFor('the LLM request for s2', () => requestsPerItem(llm.requests).s2 === 1, 10_000, 50);

    const { code, ms } = await proc.signal('SIGTERM', 30_000);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(8_000);

    const [log] = await sql.q(`select * from job_logs where id = $1`, [running.id]);
    expect(log.status).toBe('FAILED');
    expect(log.error_message).toBe('interrupted: the worker stopped before the run finished (shutdown)');
    expect(log.ended_at).not.toBeNull();
    expect(log.metadata.will_retry).toBe(true);
    expect(await sql.q(`select status, claimed_by_log_id from harvest_items where id = $1`, [s2])).toEqual([{ status: 'PENDING', claimed_by_log_id: null }]);
    const job = await bossJob(sql, jobId);
    expect(job.state).not.toBe('active');
    expect(job.state).toBe('retry');
  }, 60_000);
});

describe('database unreachable at startup', () => {
  it('logs "database unreachable … retrying", keeps trying for DB_STARTUP_TIMEOUT_SECONDS, then exits non-zero saying why', async () => {
    const closedPort = await freePort();
    const started = Date.now();
    const result = await runScript(
      'src/main.ts',
      [],
      { DATABASE_URL: `postgres://postgres:secret@127.0.0.1:${closedPort}/memodrops`, DB_STARTUP_TIMEOUT_SECONDS: '3', PORT: String(await freePort()), LOG_FORMAT: 'json', LOG_LEVEL: 'info' },
      20_000,
    );
    const ms = Date.now() - started;

    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(ms).toBeLessThan(8_000);
    const lines = parseJsonLines(result.stdout);
    const retrying = lines.filter((l) => /^database unreachable \(.*ECONNREFUSED.*\); retrying in [\d.]+ s$/.test(l.msg));
    expect(retrying.length, result.stdout).toBeGreaterThanOrEqual(1);
    const fatal = lines.find((l) => l.level === 60);
    expect(fatal?.msg).toMatch(/^startup failed: database unreachable after 3 s: .*ECONNREFUSED/);
    // It kept retrying for (about) the 3 s it was given, not less: first failure → giving up.
    expect(fatal!.time - retrying[0]!.time).toBeGreaterThanOrEqual(2_500);
    expect(lines.some((l) => /job scheduler ready/.test(l.msg))).toBe(false);
  }, 30_000);
});
