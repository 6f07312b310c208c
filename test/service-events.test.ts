import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventMonitor } from './support/event-monitor.ts';
import { createItem, itemKeyOf, keyedItem, trigger } from './support/pipeline.ts';
import { eventually, startTestService, type TestService } from './support/service.ts';

/**
 * A running service tells its event seam what happens: runs starting and ending (with what pg-boss
 * was told), every HTTP attempt to the model, and schedule changes from the API or the table. A
 * listener that throws never breaks a run.
 */

const blueprintFor = (key: string) => ({ exam_name: `Concurso ${key}`, organization: null, topics: [{ code: `${key}-1`, name: 'Tema', discipline: 'Geral' }] });

describe('the event seam of a running service', () => {
  let t: TestService;
  let monitor: EventMonitor;
  beforeAll(async () => {
    t = await startTestService({ OPENAI_MAX_RETRIES: '1', OPENAI_RETRY_AFTER_MAX_SECONDS: '1' });
    monitor = new EventMonitor(t.service.events);
  });
  afterAll(() => t?.stop());

  it('a run is told as it starts and ends, with its counts, and each LLM attempt with its outcome, status and tokens', async () => {
    let calls = 0;
    t.llm.respond((req) => (++calls === 1 ? { status: 429, headers: { 'retry-after': '0' } } : { content: blueprintFor(itemKeyOf(req) ?? '?') }));
    // A listener that throws is logged; the run goes on.
    t.service.events.on('run:end', () => {
      throw new Error('a broken metrics exporter');
    });
    await createItem(t, keyedItem('ev1'));
    const jobId = await trigger(t, 'extract-blueprints');

    const end = await monitor.next('run:end', (e) => e.jobId === jobId);
    const start = monitor.of('run:start').find((e) => e.jobId === jobId);
    expect(start).toMatchObject({ job: 'extract-blueprints', trigger: 'manual', attempt: 1, logId: end.logId });
    expect(end).toMatchObject({
      job: 'extract-blueprints',
      status: 'COMPLETED',
      itemsProcessed: 1,
      itemsFailed: 0,
      error: null,
      willRetry: false,
      deadLettered: false,
      absorbedByJobId: null,
      configurationError: false,
    });
    expect(end.durationMs).toBeGreaterThanOrEqual(0);
    expect(monitor.seen.findIndex((e) => e.name === 'run:start' && e.event.jobId === jobId)).toBeLessThan(monitor.seen.findIndex((e) => e.name === 'run:end' && e.event.jobId === jobId));

    const llmCalls = monitor.of('llm:call').filter((c) => c.job === 'extract-blueprints');
    expect(llmCalls.map((c) => [c.outcome, c.status])).toEqual([
      ['transient', 429],
      ['ok', 200],
    ]);
    expect(llmCalls[1]!.model).toBe('gpt-4o-mini');
    expect(llmCalls[1]!.promptTokens).toBeGreaterThan(0);
    expect(llmCalls[1]!.completionTokens).toBeGreaterThan(0);

    // The log and pg-boss agree with the event, whatever the broken listener did.
    const { rows } = await t.service.database.pool.query('select status from job_logs where id = $1', [end.logId]);
    expect(rows[0].status).toBe('COMPLETED');
    await eventually(async () => (await t.service.boss.findJobs('extract-blueprints', { id: jobId }))[0]?.state === 'completed');
    await eventually(async () => t.logs.some((l) => l.event === 'run:end' && l.msg === 'a listener of run:end failed; the event went on'));
  });

  it('a run tells its progress: the items it claimed, then one step per item done or failed', async () => {
    t.llm.respond((req) => (itemKeyOf(req) === 'pg2' ? { status: 400, body: { error: { message: 'Bad request' } } } : { content: blueprintFor(itemKeyOf(req) ?? '?') }));
    for (const key of ['pg1', 'pg2', 'pg3']) await createItem(t, keyedItem(key));
    const jobId = await trigger(t, 'extract-blueprints');

    const end = await monitor.next('run:end', (e) => e.jobId === jobId);
    expect(end).toMatchObject({ itemsProcessed: 2, itemsFailed: 1 });
    const steps = monitor.of('run:progress').filter((e) => e.jobId === jobId);
    expect(steps.every((e) => e.logId === end.logId && e.job === 'extract-blueprints' && e.itemsTotal === 3)).toBe(true);
    expect(steps[0]).toMatchObject({ itemsProcessed: 0, itemsFailed: 0 });
    expect(steps.map((e) => e.itemsProcessed + e.itemsFailed)).toEqual([0, 1, 2, 3]);
    expect(steps.at(-1)).toMatchObject({ itemsProcessed: 2, itemsFailed: 1 });
    // Every progress step comes before the run's end.
    const endAt = monitor.seen.findIndex((e) => e.name === 'run:end' && e.event.jobId === jobId);
    expect(monitor.seen.findLastIndex((e) => e.name === 'run:progress' && e.event.jobId === jobId)).toBeLessThan(endAt);
  });

  it('a schedule changed through the API is told as source api; one edited in the table, as source table once the sync applies it', async () => {
    const res = await t.http('/api/jobs/schedules/generate-drops', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ cron_expression: '15 3 * * *' }) });
    expect(res.status).toBe(200);
    expect(await monitor.next('schedule:changed', (e) => e.cron === '15 3 * * *')).toEqual({ job: 'generate-drops', source: 'api', cron: '15 3 * * *', timezone: 'UTC', active: true });

    await t.service.database.pool.query(`update job_schedule set is_active = false where job_name = 'generate-drops'`);
    expect(await monitor.next('schedule:changed', (e) => !e.active)).toEqual({ job: 'generate-drops', source: 'table', cron: '15 3 * * *', timezone: 'UTC', active: false });
  });
});
