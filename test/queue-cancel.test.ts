import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyRun } from '../src/alerts/rules.ts';
import { createReaper } from '../src/boss/reaper.ts';
import { runsOfJob } from '../src/db/job-logs.ts';
import { deadLetterQueueOf, type JobContext, type JobDefinition } from '../src/jobs/job.ts';
import { createRegistry } from '../src/jobs/registry.ts';
import { createLogger } from '../src/logger.ts';
import { EventMonitor } from './support/event-monitor.ts';
import { call, expectError, ISO, postJson, type Json } from './support/http.ts';
import { closedLog, createItem, trigger } from './support/pipeline.ts';
import { eventually, startTestService, type TestService } from './support/service.ts';

/**
 * The queue (GET /api/jobs/queue) and cancelling a run (POST /api/jobs/runs/{jobId}/cancel): what
 * an operator sees waiting, running and waiting to retry, and what a cancel does to each.
 */

const RETRY_DELAY_SECONDS = 3600;
/** As the pipeline's jobs (one runs at a time, a heartbeat), but a retry waits an hour. */
const QUEUE = { policy: 'stately', retryLimit: 2, retryDelay: RETRY_DELAY_SECONDS, retryBackoff: false, expireInSeconds: 120, heartbeatSeconds: 10 } as const;

/** Runs until its signal aborts (a cancel, expiry or shutdown). */
const slow: JobDefinition = {
  name: 'slow-test',
  description: 'runs until stopped',
  defaultCron: '0 0 1 1 *',
  queue: QUEUE,
  handler: ({ signal }: JobContext) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true })),
};
/** Fails, so pg-boss waits an hour to retry it. */
const failing: JobDefinition = {
  name: 'failing-test',
  description: 'fails',
  defaultCron: '0 0 1 1 *',
  queue: QUEUE,
  async handler() {
    throw new Error('upstream unavailable');
  },
};
const quick: JobDefinition = {
  name: 'quick-test',
  description: 'succeeds',
  defaultCron: '0 0 1 1 *',
  queue: QUEUE,
  handler: async () => ({ itemsProcessed: 1, itemsFailed: 0 }),
};

const stateOf = async (t: TestService, job: string, id: string) => (await t.service.boss.findJobs(job, { id }))[0]?.state;
const cancel = (t: TestService, jobId: string, init: RequestInit = {}) => call(t, `/api/jobs/runs/${jobId}/cancel`, { method: 'POST', ...init });
const queue = async (t: TestService, query = ''): Promise<Json[]> => {
  const res = await call(t, `/api/jobs/queue${query}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
};
/** What a refused request must leave as it was: pg-boss's jobs, the run logs and the items. */
const snapshot = async (t: TestService) => {
  const pool = t.service.database.pool;
  const [jobs, logs, items] = await Promise.all([
    pool.query('select id, name, state, retry_count, start_after, completed_on from pgboss.job order by id'),
    pool.query('select * from job_logs order by id'),
    pool.query('select id, status, claimed_by_log_id from harvest_items order by id'),
  ]);
  return { jobs: jobs.rows, logs: logs.rows, items: items.rows };
};
/** The job_logs row of the (first) attempt of `jobId` once it exists, open or closed. */
const openedLog = (t: TestService, jobId: string) => eventually(async () => (await runsOfJob(t.service.database.db, jobId))[0]);

describe('the queue, and cancelling waiting and running runs', () => {
  let t: TestService;
  let events: EventMonitor;
  let running: string;
  let waiting: string;
  let retrying: string;
  beforeAll(async () => {
    t = await startTestService({ SHUTDOWN_TIMEOUT_SECONDS: '3' }, { registry: createRegistry([slow, failing, quick]) });
    events = new EventMonitor(t.service.events);
  });
  afterAll(() => t?.stop());

  it('lists the running run first (with its open log), then the waiting ones by when each may start (a retry: when it fires)', async () => {
    running = await trigger(t, 'slow-test');
    const runningLog = await openedLog(t, running);
    await eventually(async () => (await stateOf(t, 'slow-test', running)) === 'active');
    // One runs at a time (stately): the second waits behind it.
    waiting = await trigger(t, 'slow-test');
    retrying = await trigger(t, 'failing-test');
    const failedLog = await closedLog(t, retrying);
    expect(failedLog.metadata).toMatchObject({ will_retry: true });
    await eventually(async () => (await stateOf(t, 'failing-test', retrying)) === 'retry');
    const [retryJob] = await t.service.boss.findJobs('failing-test', { id: retrying });

    const listed = await queue(t);
    expect(listed).toEqual([
      { job_id: running, job_name: 'slow-test', state: 'active', trigger: 'manual', created_at: expect.stringMatching(ISO), start_after: expect.stringMatching(ISO), retry_count: 0, retry_limit: 2, log_id: runningLog.id },
      { job_id: waiting, job_name: 'slow-test', state: 'created', trigger: 'manual', created_at: expect.stringMatching(ISO), start_after: expect.stringMatching(ISO), retry_count: 0, retry_limit: 2, log_id: null },
      { job_id: retrying, job_name: 'failing-test', state: 'retry', trigger: 'manual', created_at: expect.stringMatching(ISO), start_after: retryJob!.startAfter.toISOString(), retry_count: retryJob!.retryCount, retry_limit: 2, log_id: failedLog.id },
    ]);
    // The retry fires about an hour after the failure.
    expect(Date.parse(listed[2].start_after) - Date.now()).toBeGreaterThan((RETRY_DELAY_SECONDS - 60) * 1000);
  });

  it('filters by job and state, and is bounded by limit', async () => {
    expect((await queue(t, '?jobName=failing-test')).map((j) => j.job_id)).toEqual([retrying]);
    expect((await queue(t, '?state=created')).map((j) => j.job_id)).toEqual([waiting]);
    expect((await queue(t, '?jobName=slow-test&state=active')).map((j) => j.job_id)).toEqual([running]);
    expect((await queue(t, '?jobName=quick-test')).map((j) => j.job_id)).toEqual([]);
    expect((await queue(t, '?limit=1')).map((j) => j.job_id)).toEqual([running]);
  });

  it('refuses an unknown state or job, and a limit out of range', async () => {
    expectError(await call(t, '/api/jobs/queue?state=completed'), 400, /^state: state must be one of created, active, retry/);
    expectError(await call(t, '/api/jobs/queue?limit=0'), 400, /limit must be between 1 and 1000/);
    expectError(await call(t, '/api/jobs/queue?limit=1001'), 400, /limit must be between 1 and 1000/);
    expectError(await call(t, '/api/jobs/queue?jobName=nope'), 404, /unknown job "nope"/);
  });

  it('cancelling a waiting run: gone from the queue, cancelled in pg-boss, and no log was ever opened', async () => {
    const res = await cancel(t, waiting);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({ job_id: waiting, job_name: 'slow-test', state_before: 'created', message: expect.stringMatching(/cancelled before it started/) });
    expect((await queue(t)).map((j) => j.job_id)).toEqual([running, retrying]);
    expect(await stateOf(t, 'slow-test', waiting)).toBe('cancelled');
    expect(await runsOfJob(t.service.database.db, waiting)).toEqual([]);
  });

  it('cancelling a run waiting to retry: never retried, and the log of its last attempt now says will_retry false', async () => {
    const before = await closedLog(t, retrying);
    const res = await cancel(t, retrying);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ job_id: retrying, job_name: 'failing-test', state_before: 'retry', message: expect.stringMatching(/will not be retried \(log \d+ now says so\)/) });
    expect(await stateOf(t, 'failing-test', retrying)).toBe('cancelled');
    expect((await queue(t, '?jobName=failing-test'))).toEqual([]);
    // Over HTTP, as an operator reads it: the same failure, no longer to be retried.
    const log = await call(t, `/api/jobs/logs/${before.id}`);
    expect(log.body).toMatchObject({ status: 'FAILED', error_message: 'upstream unavailable', metadata: { will_retry: false, cancelled: true, cancelled_at: expect.stringMatching(ISO) } });
    expect(await t.service.boss.findJobs(deadLetterQueueOf('failing-test'))).toEqual([]);
  });

  it('cancelling a running run stops it at once: FAILED "cancelled by operator", not retried, not dead-lettered, no alert', async () => {
    // Spelled in capitals, as some tools print a uuid: the same job.
    const res = await cancel(t, running.toUpperCase());
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ job_id: running, job_name: 'slow-test', state_before: 'active', message: expect.stringMatching(/cancelled and stopped/) });

    const log = await closedLog(t, running);
    expect(log).toMatchObject({ status: 'FAILED', error_message: 'cancelled by operator', metadata: { cancelled: true, will_retry: false, attempt: 1 } });
    expect(log.metadata.dead_lettered).toBeUndefined();
    const ended = await events.next('run:end', (e) => e.jobId === running);
    expect(ended).toMatchObject({ status: 'FAILED', error: 'cancelled by operator', willRetry: false, deadLettered: false, absorbedByJobId: null });
    // Neither a failure to alert on nor a success that closes one.
    expect(classifyRun(ended)).toBeNull();

    expect(await stateOf(t, 'slow-test', running)).toBe('cancelled');
    expect(await queue(t)).toEqual([]);
    expect(await runsOfJob(t.service.database.db, running)).toHaveLength(1);
    expect(await t.service.boss.findJobs(deadLetterQueueOf('slow-test'))).toEqual([]);
  });

  it('409 for a run that has ended, naming its state; nothing is changed', async () => {
    const done = await trigger(t, 'quick-test');
    expect((await closedLog(t, done)).status).toBe('COMPLETED');
    await eventually(async () => (await stateOf(t, 'quick-test', done)) === 'completed');
    const before = await snapshot(t);
    const res = await cancel(t, done);
    expectError(res, 409, new RegExp(`job ${done} of quick-test has already ended \\(completed\\)`));
    expect(res.body.state).toBe('completed');
    // Cancelled already: the same.
    const again = await cancel(t, waiting);
    expectError(again, 409, /has already ended \(cancelled\)/);
    expect(again.body.state).toBe('cancelled');
    expect(await snapshot(t)).toEqual(before);
  });

  it('404 for an id that is no job of ours (a dead letter included), 400 for a malformed id or a body; nothing is changed', async () => {
    const deadLetter = (await t.service.boss.send(deadLetterQueueOf('slow-test'), { trigger: 'manual' }))!;
    // A live run, to show that a refused request does not touch it.
    const live = await trigger(t, 'slow-test');
    await openedLog(t, live);
    await eventually(async () => (await stateOf(t, 'slow-test', live)) === 'active');
    const before = await snapshot(t);

    expectError(await cancel(t, randomUUID()), 404, /^no job with id [0-9a-f-]{36} in the queues of slow-test, failing-test, quick-test$/);
    expectError(await cancel(t, deadLetter), 404, /no job with id/);
    expectError(await cancel(t, 'not-a-uuid'), 400, /^jobId: jobId must be a UUID$/);
    expectError(await postJson(t, `/api/jobs/runs/${live}/cancel`, { force: true }), 400, /this route takes no body/);
    expectError(await postJson(t, `/api/jobs/runs/${live}/cancel`, '{'), 400, /Malformed JSON/);

    expect(await snapshot(t)).toEqual(before);
    expect((await t.service.boss.findJobs(deadLetterQueueOf('slow-test'), { id: deadLetter }))[0]?.state).toBe('created');
    expect((await cancel(t, live)).status).toBe(200);
    expect((await closedLog(t, live)).error_message).toBe('cancelled by operator');
  });
});

describe('cancelling extract-blueprints while it waits on the model', () => {
  let a: TestService;
  let b: TestService;
  let eventsA: EventMonitor;
  const db = () => a.service.database.pool;
  const itemsOf = async (ids: number[]) => (await db().query('select id, status, claimed_by_log_id from harvest_items where id = any($1) order by id', [ids])).rows;

  /** Two new items, and a run of extract-blueprints holding them while its model calls hang. */
  async function runHoldingItems(on: TestService): Promise<{ jobId: string; logId: number; itemIds: number[] }> {
    const itemIds: number[] = [];
    for (const key of ['x', 'y']) itemIds.push((await createItem(a, { title: `Edital ${key}`, content: `Conteúdo ${randomUUID()}` })).id);
    const requests = a.llm.requests.length;
    const jobId = await trigger(on, 'extract-blueprints');
    const { id: logId } = await openedLog(a, jobId);
    await eventually(async () => (await itemsOf(itemIds)).every((i) => i.status === 'PROCESSING' && i.claimed_by_log_id === logId) && a.llm.requests.length >= requests + 2);
    return { jobId, logId, itemIds };
  }

  async function expectCancelled(jobId: string, itemIds: number[]) {
    const log = await closedLog(a, jobId, { timeoutMs: 25_000 });
    expect(log).toMatchObject({ status: 'FAILED', error_message: 'cancelled by operator', metadata: { cancelled: true, will_retry: false } });
    expect(log.metadata.reaped).toBeUndefined();
    // Its claims go back: the items wait for the next run.
    await eventually(async () => (await itemsOf(itemIds)).every((i) => i.status === 'PENDING' && i.claimed_by_log_id === null));
    expect(await stateOf(a, 'extract-blueprints', jobId)).toBe('cancelled');
    expect(await a.service.boss.findJobs(deadLetterQueueOf('extract-blueprints'))).toEqual([]);
    expect(await runsOfJob(a.service.database.db, jobId)).toHaveLength(1);
    expect(await queue(b, '?jobName=extract-blueprints')).toEqual([]);
    // Not picked up again here: the next test's run takes them.
    await db().query(`update harvest_items set status = 'BLUEPRINT_DONE' where id = any($1)`, [itemIds]);
  }

  beforeAll(async () => {
    a = await startTestService({ SHUTDOWN_TIMEOUT_SECONDS: '3', LLM_CONCURRENCY: '2' });
    // An API-only instance on the same database: it runs nothing, so every run is on `a`.
    b = await startTestService({ ROLE: 'api' }, { database: a.database, llm: a.llm });
    eventsA = new EventMonitor(a.service.events);
  }, 60_000);
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
  });

  it('cancelled on the instance running it: stopped at once, FAILED "cancelled by operator", its items back to PENDING', async () => {
    a.llm.respond(() => ({ hang: true }));
    const { jobId, itemIds } = await runHoldingItems(a);
    const res = await cancel(a, jobId);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ job_id: jobId, job_name: 'extract-blueprints', state_before: 'active', message: expect.stringMatching(/cancelled and stopped/) });
    await expectCancelled(jobId, itemIds);
  });

  it('cancelled through another instance: the running one stops it at its next heartbeat and says cancelled, not interrupted', async () => {
    a.llm.respond(() => ({ hang: true }));
    const { jobId, itemIds } = await runHoldingItems(b);
    const res = await cancel(b, jobId);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ job_id: jobId, state_before: 'active', message: expect.stringMatching(/the instance running it stops it within about 10 s/) });
    const ended = await eventsA.next('run:end', (e) => e.jobId === jobId, 25_000);
    expect(ended).toMatchObject({ status: 'FAILED', error: 'cancelled by operator', willRetry: false, deadLettered: false });
    await expectCancelled(jobId, itemIds);
  }, 40_000);

  it("a reaper pass right after the cancel leaves the run to its instance, which logs it cancelled: one end, not a lost worker", async () => {
    a.llm.respond(() => ({ hang: true }));
    const { jobId, itemIds } = await runHoldingItems(b);
    const reaper = createReaper({ db: b.service.database.db, boss: b.service.boss, logger: createLogger('silent'), events: b.service.events });
    const reaped: unknown[] = [];
    const onReaped = (e: { jobId: string | null }) => {
      if (e.jobId === jobId) reaped.push(e);
    };
    const unsubscribe = [a.service.events.on('run:reaped', onReaped), b.service.events.on('run:reaped', onReaped)];
    try {
      // A first pass finds the run alive; the next one looks at the runs open before it.
      expect((await reaper.reap()).closed).toBe(0);
      expect((await cancel(b, jobId)).status).toBe(200);
      // Before the running instance's heartbeat (every 5 s) notices the cancel.
      expect((await reaper.reap()).closed).toBe(0);
      await eventsA.next('run:end', (e) => e.jobId === jobId, 25_000);
      await expectCancelled(jobId, itemIds);
      expect(reaped).toEqual([]);
    } finally {
      for (const off of unsubscribe) off();
    }
  }, 40_000);

  it("a run's detail (GET /api/jobs/logs/{id}) lists its failed items, each with its reason", async () => {
    const good = await createItem(a, { title: 'Edital bom', content: 'Conteúdo programático: Língua Portuguesa' });
    const bad = await createItem(a, { title: 'Edital ruim', content: 'x'.repeat(50) });
    a.llm.respond((req) =>
      req.messages.some((m) => m.content.includes('Edital ruim'))
        ? { status: 400, body: { error: { message: "This model's maximum context length is 128000 tokens", type: 'invalid_request_error', code: null } } }
        : { content: { exam_name: 'Concurso bom', organization: null, topics: [{ code: 'LP-1', name: 'Crase', discipline: 'Língua Portuguesa' }] } },
    );
    const { id } = await closedLog(a, await trigger(a, 'extract-blueprints'));
    const res = await call(b, `/api/jobs/logs/${id}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      status: 'COMPLETED',
      items_processed: 1,
      items_failed: 1,
      error_message: "1 of 2 harvest items failed: LLM error 400: This model's maximum context length is 128000 tokens (1)",
      metadata: { failures_total: 1, failures: [{ item: { harvest_item_id: bad.id }, reason: "LLM error 400: This model's maximum context length is 128000 tokens" }] },
    });
    expect((await itemsOf([good.id, bad.id])).map((i) => i.status)).toEqual(['BLUEPRINT_DONE', 'BLUEPRINT_ERROR']);
  });
});

describe('with API_TOKEN', () => {
  const token = 'full-token-0123456789';
  const readOnly = 'read-only-token-0123456789';
  let t: TestService;
  const as = (bearer: string): RequestInit => ({ headers: { authorization: `Bearer ${bearer}` } });
  beforeAll(async () => {
    // API only: the run it is asked for waits, as no instance works.
    t = await startTestService({ ROLE: 'api', API_TOKEN: token, API_TOKEN_READONLY: readOnly });
  });
  afterAll(() => t?.stop());

  it('the read-only token may read the queue but not cancel (403, the run still waits); the full token cancels', async () => {
    const sent = await call(t, '/api/jobs/run/generate-drops', { method: 'POST', ...as(token) });
    expect(sent.status).toBe(202);
    const jobId = sent.body.jobId;
    const listed = await call(t, '/api/jobs/queue', as(readOnly));
    expect(listed.body).toEqual([expect.objectContaining({ job_id: jobId, state: 'created', log_id: null })]);
    expectError(await cancel(t, jobId), 401, /bearer token/);
    expectError(await cancel(t, jobId, as(readOnly)), 403, /read-only/);
    expect(await stateOf(t, 'generate-drops', jobId)).toBe('created');
    const res = await cancel(t, jobId, as(token));
    expect(res.body).toMatchObject({ job_id: jobId, state_before: 'created' });
    expect(await stateOf(t, 'generate-drops', jobId)).toBe('cancelled');
  });
});
