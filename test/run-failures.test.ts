import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadLetterQueueOf, type JobDefinition } from '../src/jobs/job.ts';
import { createRegistry } from '../src/jobs/registry.ts';
import { EventMonitor } from './support/event-monitor.ts';
import type { FakeRequest } from '../testkit/fake-openai.ts';
import type { Json } from './support/http.ts';
import { closedLog, trigger, userMessage } from './support/pipeline.ts';
import { eventually, jobsWithoutRetries, startTestService, type TestService } from './support/service.ts';

/**
 * What a failed run's log says is what pg-boss does with it: retried, absorbed by a pending retry,
 * or dead-lettered; configuration errors are not retried; item failures are summed up and listed.
 */

const logsOf = async (t: TestService, job: string): Promise<Json[]> =>
  (await t.service.database.pool.query(`select * from job_logs where job_name = $1 order by id`, [job])).rows;
const deadLetters = (t: TestService, job: string) => t.service.boss.findJobs(deadLetterQueueOf(job));
const stateOf = async (t: TestService, job: string, id: string) => (await t.service.boss.findJobs(job, { id }))[0]?.state;

describe('a stately job failing while a retry of it is pending', () => {
  let t: TestService;
  let failing = true;
  /** Fails (after a moment, so a second run can queue behind it) while `failing` is set. */
  const flaky: JobDefinition = {
    name: 'flaky',
    description: 'fails on demand',
    defaultCron: '0 0 1 1 *',
    queue: { policy: 'stately', retryLimit: 2, retryDelay: 4, retryBackoff: false, expireInSeconds: 60 },
    async handler() {
      await new Promise((resolve) => setTimeout(resolve, 300));
      if (failing) throw new Error('upstream unavailable');
      return { itemsProcessed: 1, itemsFailed: 0 };
    },
  };
  let events: EventMonitor;
  beforeAll(async () => {
    t = await startTestService({}, { registry: createRegistry([flaky]) });
    events = new EventMonitor(t.service.events);
  });
  afterAll(() => t?.stop());

  it('the second failure is absorbed by the pending retry: its log says so, nothing is dead-lettered, and pg-boss retries the first', async () => {
    // Two manual runs, the second queued while the first is running (the 1.5 s apart, made certain).
    const first = await trigger(t, 'flaky');
    await eventually(async () => (await stateOf(t, 'flaky', first)) === 'active');
    const second = await trigger(t, 'flaky');

    const firstLog = await closedLog(t, first);
    expect(firstLog).toMatchObject({ status: 'FAILED', error_message: 'upstream unavailable', metadata: { attempt: 1, will_retry: true } });
    const secondLog = await closedLog(t, second);
    expect(secondLog).toMatchObject({ status: 'FAILED', error_message: 'upstream unavailable', metadata: { attempt: 1, will_retry: false, absorbed_by_job_id: first } });
    // pg-boss agrees: the first waits to retry, the second is settled, and no run went to the dead-letter queue.
    expect(await stateOf(t, 'flaky', first)).toBe('retry');
    await eventually(async () => (await stateOf(t, 'flaky', second)) === 'completed');
    expect(await deadLetters(t, 'flaky')).toHaveLength(0);
    // The seam tells the same: what pg-boss was told about each run.
    expect(await events.next('run:end', (e) => e.jobId === second)).toMatchObject({ status: 'FAILED', willRetry: false, deadLettered: false, absorbedByJobId: first });
    expect(await events.next('run:end', (e) => e.jobId === first)).toMatchObject({ status: 'FAILED', willRetry: true, absorbedByJobId: null });

    // pg-boss itself runs the retry, which now succeeds.
    failing = false;
    const retried = await eventually(async () => (await logsOf(t, 'flaky')).find((l) => l.metadata.job_id === first && l.metadata.attempt === 2 && l.status !== 'STARTED'), { timeoutMs: 20_000 });
    expect(retried.status).toBe('COMPLETED');
    expect(await deadLetters(t, 'flaky')).toHaveLength(0);
  }, 40_000);

  it('a run with no retry pending says will_retry until its last attempt, which says dead_lettered and is in the dead-letter queue', async () => {
    failing = true;
    const id = await trigger(t, 'flaky');
    const attempts = await eventually(async () => {
      const logs = (await logsOf(t, 'flaky')).filter((l) => l.metadata.job_id === id && l.status !== 'STARTED');
      return logs.length === 3 ? logs : null;
    }, { timeoutMs: 30_000 });
    expect(events.of('run:end').filter((e) => e.jobId === id).map((e) => [e.attempt, e.willRetry, e.deadLettered])).toEqual([
      [1, true, false],
      [2, true, false],
      [3, false, true],
    ]);
    expect(attempts.map((l) => [l.metadata.attempt, l.metadata.will_retry, l.metadata.dead_lettered ?? false])).toEqual([
      [1, true, false],
      [2, true, false],
      [3, false, true],
    ]);
    await eventually(async () => (await deadLetters(t, 'flaky')).some((d) => d.sourceId === id));
  }, 40_000);
});

describe('without OPENAI_API_KEY', () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService({ OPENAI_API_KEY: '' });
  });
  afterAll(() => t?.stop());

  it('startup warns once, naming the jobs that will fail', () => {
    const warnings = t.logs.filter((l) => /OPENAI_API_KEY is not set/.test(String(l.msg)));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40, jobs: ['extract-blueprints', 'generate-drops'] });
  });

  it('two runs 1.5 s apart each fail once, saying what to set, are not retried, and are dead-lettered', async () => {
    const first = await trigger(t, 'extract-blueprints');
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const second = await trigger(t, 'extract-blueprints');
    for (const id of [first, second]) {
      const log = await closedLog(t, id);
      expect(log.status).toBe('FAILED');
      expect(log.error_message).toMatch(/^OPENAI_API_KEY is not set: set it in the environment/);
      expect(log.metadata).toMatchObject({ attempt: 1, will_retry: false, dead_lettered: true, configuration_error: { variables: ['OPENAI_API_KEY'] } });
      await eventually(async () => (await stateOf(t, 'extract-blueprints', id)) === 'failed');
    }
    await eventually(async () => (await deadLetters(t, 'extract-blueprints')).filter((d) => d.sourceId === first || d.sourceId === second).length === 2);
    // Nothing waits to retry: one attempt each.
    expect((await t.service.boss.findJobs('extract-blueprints', { queued: true })).length).toBe(0);
    expect((await logsOf(t, 'extract-blueprints')).length).toBe(2);
  });
});

describe('item failures in the log', () => {
  let t: TestService;
  const db = () => t.service.database.pool;
  /** A blueprint ready for generate-drops, with topics `<prefix>-1..n`. */
  async function blueprint(prefix: string, topics: number): Promise<number> {
    const { rows: [item] } = await db().query(`insert into harvest_items (title, content, status) values ($1, 'x', 'BLUEPRINT_DONE') returning id`, [prefix]);
    const list = Array.from({ length: topics }, (_, i) => ({ code: `${prefix}-${i + 1}`, name: `Tópico ${prefix}-${i + 1}`, discipline: 'Geral' }));
    const { rows: [bp] } = await db().query(
      `insert into exam_blueprints (harvest_item_id, exam_name, topics, raw_output, model) values ($1, $2, $3::jsonb, '{}'::jsonb, 'm') returning id`,
      [item.id, `Concurso ${prefix}`, JSON.stringify(list)],
    );
    return bp.id;
  }
  const topicOf = (req: FakeRequest) => /^Topic: Tópico ([\w-]+)$/m.exec(userMessage(req))?.[1] ?? '?';
  const drops = { drops: [{ title: 'Uma ideia', content: 'Um exemplo.' }] };
  const rejected = (message: string) => ({ status: 400, body: { error: { message, type: 'invalid_request_error', code: null } } });

  beforeAll(async () => {
    t = await startTestService({ DROPS_BATCH_SIZE: '10' }, { registry: jobsWithoutRetries() });
  });
  afterAll(() => t?.stop());
  // Each case leaves nothing for the next one.
  const clear = () => db().query(`update exam_blueprints set drops_generated_at = now() where drops_generated_at is null`);

  it('a run with some failed topics is COMPLETED, its error_message sums the reasons (most common first) and its metadata lists each topic', async () => {
    const bp = await blueprint('mix', 5);
    t.llm.respond((req) => {
      const code = topicOf(req);
      if (code === 'mix-1' || code === 'mix-2') return rejected('Invalid value for topic');
      if (code === 'mix-3') return rejected('Content too long');
      return { content: drops };
    });
    const log = await closedLog(t, await trigger(t, 'generate-drops'));
    expect(log.status).toBe('COMPLETED');
    expect(log.items_processed).toBe(2);
    expect(log.items_failed).toBe(3);
    expect(log.error_message).toBe('3 of 5 topics failed: LLM error 400: Invalid value for topic (2); LLM error 400: Content too long (1)');
    expect(log.metadata.failures_total).toBe(3);
    expect(log.metadata.failures.map((f: Json) => [f.item.blueprint_id, f.item.topic_code, f.reason]).sort()).toEqual([
      [bp, 'mix-1', 'LLM error 400: Invalid value for topic'],
      [bp, 'mix-2', 'LLM error 400: Invalid value for topic'],
      [bp, 'mix-3', 'LLM error 400: Content too long'],
    ]);
    await clear();
  });

  it('every topic refused with the same 400: the run is FAILED as a configuration error, not retried, and the topics are listed', async () => {
    const bp = await blueprint('all', 9);
    t.llm.respond(() => rejected("Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model."));
    const id = await trigger(t, 'generate-drops');
    const log = await closedLog(t, id);
    expect(log.status).toBe('FAILED');
    expect(log.error_message).toMatch(/^9 of 9 topics failed: LLM error 400: Invalid parameter: 'response_format'.* \(9\): the model server refuses the requests, not the items; check OPENAI_MODEL/);
    expect(log.items_failed).toBe(9);
    expect(log.metadata).toMatchObject({ will_retry: false, dead_lettered: true, configuration_error: { variables: ['OPENAI_MODEL', 'OPENAI_BASE_URL'] }, failures_total: 9 });
    expect(log.metadata.failures).toHaveLength(9);
    await eventually(async () => (await deadLetters(t, 'generate-drops')).some((d) => d.sourceId === id));
    // The blueprint is as it was: unclaimed, without drops, for the run after the setting is fixed.
    const { rows: [row] } = await db().query('select drops_generated_at, drops_claimed_by_log_id from exam_blueprints where id = $1', [bp]);
    expect(row).toEqual({ drops_generated_at: null, drops_claimed_by_log_id: null });
    await clear();
  });

  it('extract-blueprints: every item refused the same way leaves the items PENDING, not BLUEPRINT_ERROR', async () => {
    const { rows } = await db().query(`insert into harvest_items (title, content) select 'Edital ' || g, 'x' from generate_series(1, 3) g returning id`);
    t.llm.respond(() => rejected('Unknown parameter: response_format'));
    const log = await closedLog(t, await trigger(t, 'extract-blueprints'));
    expect(log.status).toBe('FAILED');
    expect(log.error_message).toMatch(/^3 of 3 harvest items failed: LLM error 400: Unknown parameter: response_format \(3\): the model server refuses/);
    const { rows: items } = await db().query('select status, error_message, claimed_by_log_id from harvest_items where id = any($1)', [rows.map((r) => r.id)]);
    expect(items).toEqual(rows.map(() => ({ status: 'PENDING', error_message: null, claimed_by_log_id: null })));
    await db().query(`update harvest_items set status = 'BLUEPRINT_DONE' where status = 'PENDING'`);
  });

  it('one item refused alone is an item failure (it may be the item), marked BLUEPRINT_ERROR with its reason', async () => {
    const { rows: [item] } = await db().query(`insert into harvest_items (title, content) values ('Edital só', 'x') returning id`);
    t.llm.respond(() => rejected("This model's maximum context length is 128000 tokens"));
    const log = await closedLog(t, await trigger(t, 'extract-blueprints'));
    expect(log).toMatchObject({ status: 'COMPLETED', items_failed: 1, error_message: "1 of 1 harvest items failed: LLM error 400: This model's maximum context length is 128000 tokens (1)" });
    expect(log.metadata.failures).toEqual([{ item: { harvest_item_id: item.id }, reason: "LLM error 400: This model's maximum context length is 128000 tokens" }]);
    const { rows: [row] } = await db().query('select status, error_message from harvest_items where id = $1', [item.id]);
    expect(row).toEqual({ status: 'BLUEPRINT_ERROR', error_message: "LLM error 400: This model's maximum context length is 128000 tokens" });
  });
});
