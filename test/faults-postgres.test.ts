import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAI, type FakeOpenAI } from '../testkit/fake-openai.ts';
import { sleep, waitFor } from '../testkit/poll.ts';
import {
  addItems,
  blueprintFor,
  requestsPerItem,
  serviceEnv,
  ServiceProcesses,
  sqlClient,
  startDedicatedPostgres,
  timedFetch,
  triggerRun,
  type DedicatedPostgres,
  type ServiceProcess,
  type Sql,
} from './support/faults.ts';
import { itemKeyOf } from './support/pipeline.ts';

/**
 * PostgreSQL stopped (pg_ctl stop -m fast) and started again under a running service process, on a
 * server of this file's own (never the shared test server). The service must answer quickly while
 * the database is away, stay up, and recover by itself.
 */

describe('PostgreSQL restarted while the service runs', () => {
  let pgServer: DedicatedPostgres;
  let llm: FakeOpenAI;
  let sql: Sql;
  let service: ServiceProcess;
  const procs = new ServiceProcesses();

  beforeAll(async () => {
    pgServer = await startDedicatedPostgres();
    llm = await startFakeOpenAI();
    llm.respond(blueprintFor);
    sql = sqlClient(pgServer.url);
    service = await procs.start(serviceEnv(pgServer.url, llm.url));
  }, 120_000);

  afterAll(async () => {
    await procs.killAll();
    await llm?.close();
    await sql?.close();
    await pgServer?.destroy();
  }, 60_000);

  /** While the database is down: quick 503 from /healthz, a quick JSON error from a data route, no exit. */
  async function expectQuickFailures(): Promise<void> {
    const health = await timedFetch(`${service.url}/healthz`);
    expect(health.status).toBe(503);
    expect(health.ms).toBeLessThan(3_000);
    expect(health.body).toEqual({ error: 'database unavailable' });

    const logs = await timedFetch(`${service.url}/api/jobs/logs`);
    expect([500, 503]).toContain(logs.status);
    expect(logs.ms).toBeLessThan(3_000);
    expect(logs.contentType).toMatch(/^application\/json/);
    expect(typeof logs.body.error).toBe('string');

    await sleep(2_000);
    expect(service.alive(), service.output().slice(-3_000)).toBe(true);
  }

  async function expectRecovered(): Promise<void> {
    const started = Date.now();
    await waitFor('/healthz to answer 200 again', async () => (await timedFetch(`${service.url}/healthz`, {}, 5_000)).status === 200, 30_000, 500);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(service.alive()).toBe(true);
  }

  /** A manual run, end to end: item in, blueprint out. */
  async function expectManualRunWorks(key: string): Promise<void> {
    const ids = await addItems(sql, [key]);
    const jobId = await triggerRun(service.url);
    const log = await waitFor(`manual run ${jobId} to close`, async () => (await sql.q(`select * from job_logs where metadata->>'job_id' = $1 and status <> 'STARTED'`, [jobId]))[0], 20_000);
    expect(log).toMatchObject({ status: 'COMPLETED', items_failed: 0 });
    expect((await sql.q(`select status from harvest_items where id = $1`, [ids[key]]))[0].status).toBe('BLUEPRINT_DONE');
    expect(await sql.q(`select count(*)::int as n from exam_blueprints where harvest_item_id = $1`, [ids[key]])).toEqual([{ n: 1 }]);
  }

  it('idle: answers quickly while PostgreSQL is down, stays up, and works again once it is back', async () => {
    await pgServer.stop();
    try {
      await expectQuickFailures();
    } finally {
      await pgServer.start();
    }
    await expectRecovered();
    await expectManualRunWorks('after-idle-restart');
  }, 90_000);

  it('mid-run: the run in flight is not left STARTED, its item comes back and is processed once', async () => {
    // The model answers the `mid` item only when let go, which happens while the database is down.
    let letGo!: () => void;
    const gate = new Promise<void>((resolve) => (letGo = resolve));
    llm.respond(async (req) => {
      if (itemKeyOf(req) === 'mid') await gate;
      return blueprintFor(req);
    });
    const { mid } = await addItems(sql, ['mid']);
    const jobId = await triggerRun(service.url);
    const running = await waitFor('the run to hold the item', async () =>
      (await sql.q(`select l.id from job_logs l join harvest_items i on i.claimed_by_log_id = l.id where l.metadata->>'job_id' = $1 and l.status = 'STARTED' and i.id = $2`, [jobId, mid]))[0], 20_000);
    await waitFor('the LLM request for the item', () => requestsPerItem(llm.requests).mid === 1, 10_000, 50);

    await pgServer.stop();
    try {
      await expectQuickFailures();
      // The run gets its answer while it cannot save it.
      letGo();
      await sleep(1_000);
      expect(service.alive(), service.output().slice(-3_000)).toBe(true);
    } finally {
      letGo();
      await pgServer.start();
    }
    const restartedAt = Date.now();
    await expectRecovered();

    // Closed by the runner or, since the runner could not write, by the reaper once pg-boss lets go
    // (heartbeat 10 s + supervise 10 s + reaper 15 s).
    const closed = await waitFor('the interrupted run to be closed', async () => (await sql.q(`select * from job_logs where id = $1 and status <> 'STARTED'`, [running.id]))[0], 120_000, 500);
    expect.soft(Date.now() - restartedAt, 'ms from the restart to the interrupted run closed').toBeLessThan(45_000);
    expect(closed.status).toBe('FAILED');
    expect(closed.ended_at).not.toBeNull();
    const item = await waitFor('the item to be given back', async () => (await sql.q(`select status, claimed_by_log_id from harvest_items where id = $1 and status <> 'PROCESSING'`, [mid]))[0], 30_000, 500);
    expect(item).toEqual({ status: 'PENDING', claimed_by_log_id: null });
    expect(await sql.q(`select count(*)::int as n from exam_blueprints where harvest_item_id = $1`, [mid])).toEqual([{ n: 0 }]);
    const [job] = await sql.q(`select state from pgboss.job where id = $1`, [jobId]);
    expect(job.state).not.toBe('active');

    // The next run processes it, once; the service is still the same process.
    await expectManualRunWorks('after-mid-run-restart');
    expect((await sql.q(`select status from harvest_items where id = $1`, [mid]))[0].status).toBe('BLUEPRINT_DONE');
    expect(await sql.q(`select count(*)::int as n from exam_blueprints where harvest_item_id = $1`, [mid])).toEqual([{ n: 1 }]);
    expect(requestsPerItem(llm.requests).mid).toBe(2);
    expect(service.alive()).toBe(true);
  }, 210_000);
});
