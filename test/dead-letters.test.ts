import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadLetterQueueOf } from '../src/jobs/job.ts';
import { generateDropsJob } from '../src/jobs/generate-drops.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../testkit/fake-openai.ts';
import { call, expectError, ISO, postJson, type Json } from './support/http.ts';
import { createTestDatabase, type TestDatabase } from './support/postgres.ts';
import { deadLetteredRun } from './support/pipeline.ts';
import { eventually, jobsWithoutRetries, startTestService, type TestService } from './support/service.ts';

/**
 * Runs whose retries are spent land in `<job>/dead-letter`; GET /api/jobs/dead-letters lists them and
 * POST /api/jobs/dead-letters/:id/retry sends one back to its job.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const retry = (t: TestService, id: string, init: RequestInit = {}) => call(t, `/api/jobs/dead-letters/${id}/retry`, { method: 'POST', ...init });
const list = async (t: TestService, query = ''): Promise<Json[]> => {
  const res = await call(t, `/api/jobs/dead-letters${query}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
};

describe('dead letters', () => {
  let database: TestDatabase;
  let llm: FakeOpenAI;
  /** Without an API key: every run fails. */
  let failing: TestService;
  /** The same database with a key: runs succeed. */
  let healthy: TestService | undefined;
  /** Dead-lettered runs, oldest first: [pg-boss job id that failed, job name]. */
  const failed: Array<{ jobId: string; job: string }> = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    llm = await startFakeOpenAI();
    failing = await startTestService({ OPENAI_API_KEY: '' }, { database, llm, registry: jobsWithoutRetries() });
  });
  afterAll(async () => {
    await failing?.stop();
    await healthy?.stop();
    await llm?.close();
    await database?.drop();
  });

  /** A manual run that fails, and waits until it is in the dead-letter queue. */
  async function failRun(t: TestService, job: string): Promise<Json> {
    const { jobId, letter } = await deadLetteredRun(t, job);
    failed.push({ jobId, job });
    return letter;
  }

  it('a run that fails with no retries left is listed with its job, data, time and error', async () => {
    const before = Date.now();
    const letter = await failRun(failing, 'extract-blueprints');
    expect(letter).toMatchObject({ job_name: 'extract-blueprints', data: { trigger: 'manual' }, state: 'created', retry_count: 0, error: expect.stringMatching(/^OPENAI_API_KEY is not set: set it/) });
    expect(letter.id).toMatch(UUID);
    expect(letter.id).not.toBe(failed[0]!.jobId);
    expect(letter.created_at).toMatch(ISO);
    expect(letter.source_created_at).toMatch(ISO);
    expect(new Date(letter.created_at).getTime()).toBeGreaterThanOrEqual(before - 1_000);
    // No stack trace or file path leaks through the error.
    expect(JSON.stringify(letter)).not.toMatch(/stack|\.ts:\d+|node_modules/);
    // The run's log says the same.
    const log = (await call(failing, '/api/jobs/logs?jobName=extract-blueprints')).body.find((l: Json) => l.metadata.job_id === failed[0]!.jobId);
    expect(log).toMatchObject({ status: 'FAILED', error_message: letter.error, metadata: { will_retry: false, dead_lettered: true } });
    // It really is in pg-boss's dead-letter queue.
    expect((await failing.service.boss.findJobs(deadLetterQueueOf('extract-blueprints'), { id: letter.id }))[0]).toMatchObject({ sourceName: 'extract-blueprints' });
  });

  it('lists the dead letters of every job newest first, filters by jobName and pages', async () => {
    // The first run's job must have left the queue before the next is accepted (one waiting at most).
    await failRun(failing, 'generate-drops');
    await failRun(failing, 'extract-blueprints');

    const all = await list(failing);
    expect(all.map((d) => [d.job_name, d.source_job_id])).toEqual([...failed].reverse().map((f) => [f.job, f.jobId]));
    const times = all.map((d) => new Date(d.created_at).getTime());
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    for (const d of all) expect(Object.keys(d).sort()).toEqual(['created_at', 'data', 'error', 'id', 'job_name', 'retry_count', 'source_created_at', 'source_job_id', 'state'].sort());

    expect((await list(failing, '?jobName=extract-blueprints')).map((d) => d.source_job_id)).toEqual([failed[2]!.jobId, failed[0]!.jobId]);
    expect((await list(failing, '?jobName=generate-drops')).map((d) => d.source_job_id)).toEqual([failed[1]!.jobId]);
    expect((await list(failing, '?limit=1')).map((d) => d.id)).toEqual([all[0].id]);
    expect((await list(failing, '?limit=2&offset=1')).map((d) => d.id)).toEqual([all[1].id, all[2].id]);
    expect(await list(failing, '?offset=3')).toEqual([]);
    expect((await list(failing, '?jobName=extract-blueprints&limit=1&offset=1')).map((d) => d.source_job_id)).toEqual([failed[0]!.jobId]);

    expectError(await call(failing, '/api/jobs/dead-letters?jobName=no-such-job'), 404, /unknown job "no-such-job"/);
    expectError(await call(failing, `/api/jobs/dead-letters?jobName=${encodeURIComponent("extract-blueprints'; drop table job_logs;--")}`), 404, /unknown job/);
    // The dead-letter queue's own name is not a job.
    expectError(await call(failing, `/api/jobs/dead-letters?jobName=${encodeURIComponent(deadLetterQueueOf('extract-blueprints'))}`), 404, /unknown job/);
    for (const limit of ['0', '101', 'abc', '-1']) expectError(await call(failing, `/api/jobs/dead-letters?limit=${limit}`), 400, /limit/);
    for (const offset of ['-1', 'abc', '1.5']) expectError(await call(failing, `/api/jobs/dead-letters?offset=${offset}`), 400, /offset/);
  });

  it('retry refuses malformed and unknown ids without a 500, and changes nothing', async () => {
    const before = await list(failing);
    for (const id of ['abc', '123', 'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz', `${randomUUID()}x`, encodeURIComponent("1' or '1'='1"), '%00']) {
      const res = await retry(failing, id);
      expect([400, 404], id).toContain(res.status);
      expect(typeof res.body.error, id).toBe('string');
    }
    expectError(await retry(failing, randomUUID()), 404, /no dead letter/);
    // The id of the failed job itself, or of any job that is not a dead letter, is not a dead letter's.
    expectError(await retry(failing, failed[0]!.jobId), 404, /no dead letter/);
    // A body with fields is refused like on any other route.
    expectError(await retry(failing, before[0].id, { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ force: true }) }), 400, /unknown field.*force/);
    expect(await list(failing)).toEqual(before);
    // GET on the retry route starts nothing.
    expectError(await call(failing, `/api/jobs/dead-letters/${before[0].id}/retry`), 404, /no route/);
  });

  describe('after the cause is fixed (a second service on the same database, with an API key)', () => {
    beforeAll(async () => {
      await failing.stop();
      llm.respond(() => ({ content: { exam_name: 'Concurso', organization: null, topics: [{ code: 'T1', name: 'Tema', discipline: 'Geral' }] } }));
      healthy = await startTestService({}, { database, llm });
    });

    it('the dead letters are still there', async () => {
      expect((await list(healthy!)).map((d) => d.source_job_id)).toEqual([...failed].reverse().map((f) => f.jobId));
    });

    it('retry sends the run back to its job, where it runs and completes; a second retry of the id is a 404', async () => {
      const item = await postJson(healthy!, '/api/harvest-items', { title: 'Edital', content: 'Programa: Português.' });
      expect(item.status).toBe(201);
      const [letter] = await list(healthy!, '?jobName=extract-blueprints&limit=1');
      expect(letter.source_job_id).toBe(failed[2]!.jobId);

      const res = await retry(healthy!, letter.id);
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      expect(res.body).toMatchObject({ jobName: 'extract-blueprints', id: letter.id });
      expect(res.body.message).toMatch(/extract-blueprints/);
      expect(res.body.jobId).toMatch(UUID);
      expect(res.body.jobId).not.toBe(letter.id);

      // Sooner than the workers' 30 s backstop poll: the retry wakes them.
      const log = await eventually(
        async () => {
          const logs = (await call(healthy!, '/api/jobs/logs?jobName=extract-blueprints')).body as Json[];
          return logs.find((l) => l.metadata.job_id === res.body.jobId && l.status === 'COMPLETED');
        },
        { timeoutMs: 10_000 },
      );
      expect(log).toMatchObject({ items_processed: 1, items_failed: 0, metadata: { trigger: 'manual', attempt: 1 } });
      // The failed run's log says which job took its work over.
      const source = ((await call(healthy!, '/api/jobs/logs?jobName=extract-blueprints')).body as Json[]).find((l) => l.metadata.job_id === failed[2]!.jobId);
      expect(source?.metadata).toMatchObject({ dead_lettered: true, sent_back_as: res.body.jobId });
      expect((await call(healthy!, `/api/harvest-items?status=BLUEPRINT_DONE`)).body.map((r: Json) => r.id)).toEqual([item.body.id]);

      // Gone from the list and from the dead-letter queue; the other two stay.
      expect((await list(healthy!)).map((d) => d.source_job_id)).toEqual([failed[1]!.jobId, failed[0]!.jobId]);
      expect(await healthy!.service.boss.findJobs(deadLetterQueueOf('extract-blueprints'), { id: letter.id })).toEqual([]);
      expectError(await retry(healthy!, letter.id), 404, /no dead letter/);
    });

    it('while its job already has a run waiting, retry is a 409 and the dead letter stays as it was', async () => {
      const boss = healthy!.service.boss;
      // Nothing may start the waiting run under the test.
      await boss.offWork('generate-drops');
      const waiting = await call(healthy!, '/api/jobs/run/generate-drops', { method: 'POST' });
      expect(waiting.status).toBe(202);
      const [letter] = await list(healthy!, '?jobName=generate-drops');
      expect(letter.source_job_id).toBe(failed[1]!.jobId);

      const refused = await retry(healthy!, letter.id);
      expectError(refused, 409, /generate-drops.*waiting/);
      expect(refused.body).toMatchObject({ jobName: 'generate-drops', id: letter.id, jobId: waiting.body.jobId });
      expect((await list(healthy!, '?jobName=generate-drops'))[0]).toEqual(letter);
      expect((await boss.findJobs('generate-drops', { queued: true })).map((j) => j.id)).toEqual([waiting.body.jobId]);

      // A redrive by other means (pg-boss's own, in bulk) in the same situation fails the dead letter in
      // place; it is still listed, and still retryable.
      expect(await boss.redrive(deadLetterQueueOf('generate-drops'), { ids: [letter.id] })).toBe(0);
      expect((await list(healthy!, '?jobName=generate-drops'))[0]).toMatchObject({ id: letter.id, state: 'failed', error: letter.error });

      // Once the waiting run is gone, the retry goes through: the job is back in its queue.
      await boss.cancel('generate-drops', waiting.body.jobId);
      const res = await retry(healthy!, letter.id);
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      const [job] = await boss.findJobs('generate-drops', { id: res.body.jobId });
      expect(job).toMatchObject({ name: 'generate-drops', state: 'created', data: letter.data, retryCount: 0, retryLimit: generateDropsJob.queue.retryLimit });
      expect(job!.sourceRootId).toBe(failed[1]!.jobId);
      expect(await list(healthy!, '?jobName=generate-drops')).toEqual([]);
      expectError(await retry(healthy!, letter.id), 404, /no dead letter/);
    });
  });
});

describe('sending back every dead letter that matches (POST /api/jobs/dead-letters/retry)', () => {
  let database: TestDatabase;
  let llm: FakeOpenAI;
  let t: TestService;
  const sendBackMatching = (body?: Json) =>
    call(t, '/api/jobs/dead-letters/retry', { method: 'POST', ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
  /** What an operator could see changed: the dead letters, both queues and every log. */
  const snapshot = async () => ({
    letters: await list(t),
    queued: [...(await t.service.boss.findJobs('extract-blueprints', { queued: true })), ...(await t.service.boss.findJobs('generate-drops', { queued: true }))].map((j) => j.id),
    logs: (await call(t, '/api/jobs/logs?limit=100')).body,
  });

  beforeAll(async () => {
    database = await createTestDatabase();
    llm = await startFakeOpenAI();
    t = await startTestService({ OPENAI_API_KEY: '' }, { database, llm, registry: jobsWithoutRetries() });
    // Three dead letters of extract-blueprints and two of generate-drops, one run at a time (a job holds one waiting run).
    for (const job of ['extract-blueprints', 'generate-drops', 'extract-blueprints', 'generate-drops', 'extract-blueprints']) {
      await deadLetteredRun(t, job);
    }
    // From here on nothing runs: what is sent back stays in its queue for the test to see.
    await t.service.boss.offWork('extract-blueprints');
    await t.service.boss.offWork('generate-drops');
  });
  afterAll(async () => {
    await t?.stop();
    await llm?.close();
    await database?.drop();
  });

  it('refuses a bad filter, an unknown job, or a filter that matches nothing, and changes nothing', async () => {
    const before = await snapshot();
    expect(before.letters).toHaveLength(5);
    expectError(await sendBackMatching({ jobName: 'no-such-job' }), 404, /unknown job "no-such-job"/);
    expectError(await sendBackMatching({ error: 'no failure says this' }), 404, /no dead letter whose error contains "no failure says this"/);
    expectError(await sendBackMatching({ jobName: 'generate-drops', error: 'nothing like it' }), 404, /no dead letter of generate-drops whose error/);
    expectError(await sendBackMatching({ error: '' }), 400, /error must not be empty/);
    expectError(await sendBackMatching({ ids: [before.letters[0].id] }), 400, /unknown field.*ids/);
    expectError(await call(t, '/api/jobs/dead-letters/retry', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'all' }), 400, /Content-Type must be application\/json/);
    expect(await snapshot()).toEqual(before);
  });

  it('the list takes the same error filter, in any case', async () => {
    expect(await list(t, `?error=${encodeURIComponent('openai_api_key IS NOT SET')}`)).toHaveLength(5);
    expect(await list(t, '?error=rate%20limit')).toEqual([]);
    expect((await list(t, '?jobName=generate-drops&error=OPENAI')).map((d) => d.job_name)).toEqual(['generate-drops', 'generate-drops']);
    expectError(await call(t, '/api/jobs/dead-letters?error='), 400, /error must not be empty/);
  });

  it('sends one run back per job, settles the other letters into it, and leaves a job that already has a run waiting untouched', async () => {
    const letters = await list(t);
    const extract = letters.filter((d) => d.job_name === 'extract-blueprints');
    const drops = letters.filter((d) => d.job_name === 'generate-drops');
    const waiting = await call(t, '/api/jobs/run/generate-drops', { method: 'POST' });
    expect(waiting.status).toBe(202);

    const res = await sendBackMatching({ error: 'OPENAI_API_KEY' });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const [sentExtract, leftDrops] = res.body.jobs;
    expect(sentExtract).toMatchObject({ jobName: 'extract-blueprints', sent: extract[0].id, left: [], reason: null, waitingJobId: null });
    expect(sentExtract.settled.sort()).toEqual([extract[1].id, extract[2].id].sort());
    expect(leftDrops).toMatchObject({ jobName: 'generate-drops', jobId: null, sent: null, settled: [], waitingJobId: waiting.body.jobId, reason: expect.stringMatching(/generate-drops already has a run waiting/) });
    expect(leftDrops.left.sort()).toEqual(drops.map((d) => d.id).sort());
    expect(res.body.message).toMatch(/extract-blueprints: 3 dead letters sent back as one run/);
    expect(res.body.message).toMatch(/generate-drops: 2 dead letters left/);

    // One new extract-blueprints run waits in its queue, carrying the newest letter's payload and chain.
    const [queued] = await t.service.boss.findJobs('extract-blueprints', { queued: true });
    expect(queued).toMatchObject({ id: sentExtract.jobId, state: 'created', data: extract[0].data, sourceRootId: extract[0].source_job_id });
    // The extract letters are gone from the list and from pg-boss; generate-drops' are exactly as they were.
    expect(await list(t)).toEqual(drops);
    expect(await t.service.boss.findJobs(deadLetterQueueOf('extract-blueprints'))).toEqual([]);
    expect((await t.service.boss.findJobs('generate-drops', { queued: true })).map((j) => j.id)).toEqual([waiting.body.jobId]);

    // Each settled letter's failed run says which job took its work over; the others' logs do not.
    const logs = (await call(t, '/api/jobs/logs?limit=100')).body as Json[];
    for (const letter of extract) expect(logs.find((l) => l.metadata.job_id === letter.source_job_id)?.metadata.sent_back_as, letter.id).toBe(sentExtract.jobId);
    for (const letter of drops) expect(logs.find((l) => l.metadata.job_id === letter.source_job_id)?.metadata).not.toHaveProperty('sent_back_as');
  });

  it('is a 409 naming the waiting run when every matching job already has one, and changes nothing', async () => {
    const before = await snapshot();
    const [waiting] = await t.service.boss.findJobs('generate-drops', { queued: true });
    const res = await sendBackMatching({ jobName: 'generate-drops' });
    expectError(res, 409, /nothing was sent back: generate-drops: generate-drops already has a run waiting/);
    expect(res.body.jobs).toEqual([expect.objectContaining({ jobName: 'generate-drops', sent: null, settled: [], left: before.letters.map((d: Json) => d.id), waitingJobId: waiting!.id })]);
    expect(await snapshot()).toEqual(before);
  });

  it('with no body, sends back every job once the waiting run has gone', async () => {
    const [waiting] = await t.service.boss.findJobs('generate-drops', { queued: true });
    await t.service.boss.cancel('generate-drops', waiting!.id);
    const drops = await list(t);
    const res = await sendBackMatching();
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body.jobs).toEqual([expect.objectContaining({ jobName: 'generate-drops', sent: drops[0].id, settled: [drops[1].id], left: [] })]);
    expect(await list(t)).toEqual([]);
    expectError(await sendBackMatching(), 404, /^no dead letter$/);
  });
});
