import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReaper } from '../src/boss/reaper.ts';
import { createRegistry } from '../src/jobs/registry.ts';
import { extractBlueprintsJob } from '../src/jobs/extract-blueprints.ts';
import { generateDropsJob } from '../src/jobs/generate-drops.ts';
import { createLogger } from '../src/logger.ts';
import type { FakeReply, FakeRequest } from '../testkit/fake-openai.ts';
import type { Json } from './support/http.ts';
import { closedLog, createItem, itemKeyOf, keyedItem, trigger } from './support/pipeline.ts';
import { eventually, startTestService, type TestService } from './support/service.ts';

/** Runs that die (lost worker) or run out of time end FAILED and give their items back. */

const blueprintReply = (req: FakeRequest): FakeReply => {
  const key = itemKeyOf(req) ?? '?';
  return { content: { exam_name: `Concurso ${key}`, organization: null, topics: [{ code: 'T1', name: 'Tema', discipline: 'Geral' }] } };
};

describe('reaper: runs whose worker is gone', () => {
  let t: TestService;
  const logger = createLogger('silent');
  beforeAll(async () => {
    t = await startTestService();
  });
  afterAll(() => t?.stop());

  const q = (text: string, values?: unknown[]) => t.service.database.pool.query(text, values);
  const reap = () => createReaper({ db: t.service.database.db, boss: t.service.boss, logger, events: t.service.events }).reap();

  /** A STARTED log for `jobId` and an item PROCESSING under it, as a crashed run leaves them. */
  async function crashedRun(jobId: string, attempt = 1): Promise<{ logId: number; itemId: number }> {
    const { rows: [log] } = await q(`insert into job_logs (job_name, status, metadata) values ('extract-blueprints', 'STARTED', $1) returning id`, [
      JSON.stringify({ job_id: jobId, trigger: 'manual', attempt }),
    ]);
    const { rows: [item] } = await q(`insert into harvest_items (title, content, status, claimed_by_log_id) values ('Edital perdido', 'Edital [[item:lost-${log.id}]]', 'PROCESSING', $1) returning id`, [log.id]);
    return { logId: log.id, itemId: item.id };
  }

  it('closes a run whose pg-boss job does not exist and gives its item back', async () => {
    const jobId = randomUUID();
    const { logId, itemId } = await crashedRun(jobId);
    const reaped: unknown[] = [];
    const off = t.service.events.on('run:reaped', (e) => void reaped.push(e));

    const result = await reap();
    off();
    expect(reaped).toEqual([{ job: 'extract-blueprints', jobId, logId, pgbossState: 'gone' }]);

    expect(result.closed).toBeGreaterThanOrEqual(1);
    expect(result.released).toBeGreaterThanOrEqual(1);
    const { rows: [log] } = await q('select * from job_logs where id = $1', [logId]);
    expect(log.status).toBe('FAILED');
    expect(log.error_message).toBe('interrupted: worker lost');
    expect(log.ended_at).not.toBeNull();
    expect(log.metadata).toMatchObject({ reaped: true, pgboss_state: 'gone', trigger: 'manual', attempt: 1 });
    const { rows: [item] } = await q('select * from harvest_items where id = $1', [itemId]);
    expect(item.status).toBe('PENDING');
    expect(item.claimed_by_log_id).toBeNull();

    // Over HTTP, the run reads as failed.
    const logs: Json[] = await (await t.http('/api/jobs/logs?jobName=extract-blueprints')).json() as Json[];
    expect(logs.find((l) => l.id === logId)).toMatchObject({ status: 'FAILED', error_message: 'interrupted: worker lost' });
  });

  it('checks a run once it has lived through a pass: a lost run that started after the previous pass is closed at the next', async () => {
    const reaper = createReaper({ db: t.service.database.db, boss: t.service.boss, logger });
    await reaper.reap();
    const { logId, itemId } = await crashedRun(randomUUID());

    await reaper.reap();
    expect((await q('select status from job_logs where id = $1', [logId])).rows[0].status).toBe('STARTED');

    await reaper.reap();
    const { rows: [log] } = await q('select * from job_logs where id = $1', [logId]);
    expect(log).toMatchObject({ status: 'FAILED', error_message: 'interrupted: worker lost' });
    expect((await q('select status from harvest_items where id = $1', [itemId])).rows[0].status).toBe('PENDING');
  });

  it('closes a run whose pg-boss job is no longer active, and the item is processed by the next run', async () => {
    t.llm.respond(blueprintReply);
    // A real job that ran and completed.
    const finishedJobId = await trigger(t, 'extract-blueprints');
    await eventually(async () => (await q(`select 1 from job_logs where metadata->>'job_id' = $1 and status = 'COMPLETED'`, [finishedJobId])).rows[0]);
    // pg-boss completes the job just after the run closes its log.
    await eventually(async () => (await t.service.boss.findJobs('extract-blueprints', { id: finishedJobId }))[0]?.state === 'completed');

    const { logId, itemId } = await crashedRun(finishedJobId);
    await reap();

    const { rows: [log] } = await q('select * from job_logs where id = $1', [logId]);
    expect(log.status).toBe('FAILED');
    expect(log.error_message).toBe('interrupted: worker lost');
    expect(log.metadata).toMatchObject({ reaped: true, pgboss_state: 'completed' });
    expect((await q('select status from harvest_items where id = $1', [itemId])).rows[0].status).toBe('PENDING');

    // The released item is picked up again.
    const jobId = await trigger(t, 'extract-blueprints');
    const closed = await closedLog(t, jobId);
    expect(closed.status).toBe('COMPLETED');
    expect((await q('select status from harvest_items where id = $1', [itemId])).rows[0].status).toBe('BLUEPRINT_DONE');
    expect((await q('select count(*)::int as n from exam_blueprints where harvest_item_id = $1', [itemId])).rows[0].n).toBe(1);
  });

  it('leaves a live run alone: its log stays STARTED and its items PROCESSING', async () => {
    // The LLM holds every answer until we let it go.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    t.llm.respond(async (req) => {
      await gate;
      return blueprintReply(req);
    });
    const items = [await createItem(t, keyedItem('live1')), await createItem(t, keyedItem('live2'))];
    const jobId = await trigger(t, 'extract-blueprints');
    const log = await eventually(async () => (await q(`select * from job_logs where metadata->>'job_id' = $1`, [jobId])).rows[0]);
    await eventually(async () => (await q(`select count(*)::int as n from harvest_items where status = 'PROCESSING' and claimed_by_log_id = $1`, [log.id])).rows[0].n === 2);
    const [job] = await t.service.boss.findJobs('extract-blueprints', { id: jobId });
    expect(job?.state).toBe('active');

    try {
      await reap();
      await reap();

      const { rows: [still] } = await q('select * from job_logs where id = $1', [log.id]);
      expect(still.status).toBe('STARTED');
      expect(still.error_message).toBeNull();
      const { rows: claimed } = await q('select status, claimed_by_log_id from harvest_items where id = any($1)', [items.map((i) => i.id)]);
      expect(claimed).toEqual([
        { status: 'PROCESSING', claimed_by_log_id: log.id },
        { status: 'PROCESSING', claimed_by_log_id: log.id },
      ]);
    } finally {
      release();
    }

    const closed = await eventually(async () => (await q(`select * from job_logs where id = $1 and status <> 'STARTED'`, [log.id])).rows[0]);
    expect(closed.status).toBe('COMPLETED');
    expect(closed.items_processed).toBe(2);
    const { rows: done } = await q('select status from harvest_items where id = any($1)', [items.map((i) => i.id)]);
    expect(done.map((r) => r.status)).toEqual(['BLUEPRINT_DONE', 'BLUEPRINT_DONE']);
  });
});

describe('a run that times out', () => {
  const EXPIRE_SECONDS = 4;
  let t: TestService;

  beforeAll(async () => {
    // extract-blueprints as registered, except that it expires after a few seconds.
    const registry = createRegistry([{ ...extractBlueprintsJob, queue: { ...extractBlueprintsJob.queue, expireInSeconds: EXPIRE_SECONDS } }, generateDropsJob]);
    // One LLM call must fit in half the expiry (checked at startup): 2 s, one item at a time.
    t = await startTestService({ SHUTDOWN_TIMEOUT_SECONDS: '2', LOG_LEVEL: 'silent', OPENAI_TIMEOUT_SECONDS: '2', LLM_CONCURRENCY: '1' }, { registry });
  });
  afterAll(() => t?.stop());

  it('ends FAILED with "timed out after N s" and gives back every item it did not finish', async () => {
    t.llm.respond(() => ({ hang: true }));
    const items = [await createItem(t, keyedItem('slow1')), await createItem(t, keyedItem('slow2')), await createItem(t, keyedItem('slow3'))];
    const q = (text: string, values?: unknown[]) => t.service.database.pool.query(text, values);

    const jobId = await trigger(t, 'extract-blueprints');
    const log = await closedLog(t, jobId, { timeoutMs: 15_000 });

    expect(log.status).toBe('FAILED');
    expect(log.error_message).toBe(`timed out after ${EXPIRE_SECONDS} s`);
    expect(log.items_processed).toBe(0);
    expect(log.metadata.duration_ms).toBeGreaterThanOrEqual((EXPIRE_SECONDS - 1) * 1000);
    expect(log.metadata.duration_ms).toBeLessThan((EXPIRE_SECONDS + 2) * 1000);
    expect(log.metadata.will_retry).toBe(true);
    // The model was asked (and never answered).
    expect(t.llm.requests.length).toBeGreaterThanOrEqual(1);

    // slow1's call timed out (2 s) before the run did; slow2 was in flight at the expiry, slow3 not started.
    await eventually(async () => {
      const { rows } = await q('select status, claimed_by_log_id from harvest_items where id = any($1) order by id', [items.map((i) => i.id)]);
      return rows.every((r, i) => r.status === (i === 0 ? 'BLUEPRINT_ERROR' : 'PENDING') && r.claimed_by_log_id === null);
    }, { timeoutMs: 5_000 });
    expect((await q('select count(*)::int as n from exam_blueprints')).rows[0].n).toBe(0);

    // pg-boss holds the job for a retry, not as a run in progress.
    await eventually(async () => {
      const [job] = await t.service.boss.findJobs('extract-blueprints', { id: jobId });
      return job && job.state !== 'active' ? job : undefined;
    });
    const [job] = await t.service.boss.findJobs('extract-blueprints', { id: jobId });
    expect(job?.state).toBe('retry');
  });
});

describe('a service stopped in the middle of a run', () => {
  it('closes the run as FAILED and its items are PENDING once an instance is back', async () => {
    const t = await startTestService({ SHUTDOWN_TIMEOUT_SECONDS: '1' });
    let restarted: TestService | undefined;
    try {
      t.llm.respond(() => ({ hang: true }));
      const items = [await createItem(t, keyedItem('stop1')), await createItem(t, keyedItem('stop2'))];
      const jobId = await trigger(t, 'extract-blueprints');
      const pool = t.service.database.pool;
      const log = await eventually(async () => (await pool.query(`select * from job_logs where metadata->>'job_id' = $1`, [jobId])).rows[0]);
      await eventually(async () => (await pool.query(`select count(*)::int as n from harvest_items where status = 'PROCESSING'`)).rows[0].n === 2);

      const stopStarted = Date.now();
      await t.service.stop();
      // The grace period is honoured, not the 15-minute expiry.
      expect(Date.now() - stopStarted).toBeLessThan(10_000);

      restarted = await startTestService({}, { database: t.database, llm: t.llm });
      const q = (text: string, values?: unknown[]) => restarted!.service.database.pool.query(text, values);
      const { rows: [closed] } = await q('select * from job_logs where id = $1', [log.id]);
      expect(closed.status).toBe('FAILED');
      expect(closed.error_message).toMatch(/interrupted/);
      const { rows } = await q('select status, claimed_by_log_id from harvest_items where id = any($1)', [items.map((i) => i.id)]);
      expect(rows).toEqual([
        { status: 'PENDING', claimed_by_log_id: null },
        { status: 'PENDING', claimed_by_log_id: null },
      ]);
    } finally {
      await restarted?.stop();
      await t.stop();
    }
  });
});
