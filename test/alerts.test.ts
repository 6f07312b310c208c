import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JobWithMetadata } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAlerter } from '../src/alerts/alerter.ts';
import { listAlerts, type Alert } from '../src/alerts/alerts.ts';
import { ALERT_QUEUE } from '../src/alerts/delivery.ts';
import { classifyReaped, classifyRun } from '../src/alerts/rules.ts';
import { createReaper, fateOfLostAttempt } from '../src/boss/reaper.ts';
import { openRuns, runOfJob } from '../src/db/job-logs.ts';
import type { SchedulerEventMap } from '../src/events.ts';
import { deadLetterQueueOf, type JobDefinition } from '../src/jobs/job.ts';
import { createRegistry } from '../src/jobs/registry.ts';
import { createLogger } from '../src/logger.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../testkit/fake-openai.ts';
import { waitFor } from '../testkit/poll.ts';
import { EventMonitor } from './support/event-monitor.ts';
import { ISO, readJson, type Json } from './support/http.ts';
import { createTestDatabase, type TestDatabase } from './support/postgres.ts';
import { startTestService, type TestService } from './support/service.ts';

/**
 * Failure alerts to ALERT_WEBHOOK_URL, against a real HTTP receiver on loopback: one alert per
 * failure and one recovery, whatever the number of failures, instances or restarts; delivery
 * retried with backoff, dead-lettered when the receiver never takes it, and never in a run's way.
 */

// ---------------------------------------------------------------------------------------------
// A webhook receiver that records every request; it answers 200, 500 or never, as told.

type Received = { body: Json; path: string; headers: IncomingHttpHeaders };
type Answer = 200 | 500 | 'hang';

async function startReceiver() {
  const requests: Received[] = [];
  let answer: (body: Json) => Answer = () => 200;
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk) => (text += chunk));
    req.on('end', () => {
      const body = JSON.parse(text);
      requests.push({ body, path: req.url ?? '', headers: req.headers });
      const reply = answer(body);
      if (reply === 'hang') return;
      res.writeHead(reply, { 'content-type': 'text/plain' }).end(reply === 200 ? 'ok' : 'receiver broken');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    /** The token in the path stands for Slack's: it must never reach a log. */
    url: `http://127.0.0.1:${port}/hooks/${SECRET}`,
    masked: `http://127.0.0.1:${port}/****`,
    requests,
    answer: (fn: (body: Json) => Answer) => void (answer = fn),
    /** What the receiver got about one job, in order. */
    about: (job: string) => requests.filter((r) => r.body.job === job).map((r) => r.body),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
type Receiver = Awaited<ReturnType<typeof startReceiver>>;

const SECRET = 'T0KEN-s3cret-xoxb';

// ---------------------------------------------------------------------------------------------
// Probe jobs: each fails, fails every item or succeeds as told; no retries, so a failure is final.

type Mode = 'ok' | 'fail' | 'items-fail';
const modes = new Map<string, Mode>();
const probe = (name: string, queue: JobDefinition['queue'] = {}): JobDefinition => ({
  name,
  description: 'alert probe',
  defaultCron: '0 0 1 1 *',
  queue: { policy: 'standard', retryLimit: 0, ...queue },
  async handler() {
    const mode = modes.get(name) ?? 'ok';
    if (mode === 'fail') throw new Error(`${name} broke`);
    if (mode === 'items-fail') return { itemsProcessed: 0, itemsFailed: 2, failures: [{ item: { n: 1 }, reason: 'bad input' }, { item: { n: 2 }, reason: 'bad input' }] };
    return { itemsProcessed: 1, itemsFailed: 0 };
  },
});
/** probe-lost expires a second after it starts: its worker is lost in the tests, pg-boss then fails it. */
const registry = () => createRegistry([...['probe-dl', 'probe-items', 'probe-retry', 'probe-hang', 'probe-multi'].map((name) => probe(name)), probe('probe-lost', { expireInSeconds: 1 })]);

/** A delivery attempt gives up after this long (tests that nothing waits for it measure against it). */
const TIMEOUT_SECONDS = 2;

/** One retry, 1–2 s after the first attempt, and a short timeout: the tests run in seconds. */
const alertEnv = (receiver: Receiver, extra: Record<string, string> = {}) => ({
  ALERT_WEBHOOK_URL: receiver.url,
  ALERT_RETRY_LIMIT: '1',
  ALERT_RETRY_DELAY_SECONDS: '1',
  ALERT_WEBHOOK_TIMEOUT_SECONDS: String(TIMEOUT_SECONDS),
  ...extra,
});

/** Sends a run of `job` in `mode` and waits for its end. */
async function run(t: TestService, monitor: EventMonitor | EventMonitor[], job: string, mode: Mode): Promise<SchedulerEventMap['run:end']> {
  modes.set(job, mode);
  const jobId = await t.service.boss.send(job, { trigger: 'manual' });
  if (!jobId) throw new Error(`send of ${job} refused`);
  const monitors = Array.isArray(monitor) ? monitor : [monitor];
  return Promise.race(monitors.map((m) => m.next('run:end', (e) => e.jobId === jobId)));
}

const eventually = <T>(what: string, check: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 20_000) => waitFor(what, check, timeoutMs, 50);

/** The history row of one alert. */
const historyOf = async (t: TestService, id: number): Promise<Alert | undefined> => (await listAlerts(t.service.database.db, { limit: 100, offset: 0 })).find((a) => a.id === id);

/** Waits for the log line saying that an alert of `kind` for `job` was not sent again. */
const suppressed = (t: TestService, kind: string, job: string, after = 0) =>
  eventually(`${kind} for ${job} suppressed`, () => t.logs.filter((l) => l.msg === `${kind} alert for ${job} already open: not sent again`).length > after);

// ---------------------------------------------------------------------------------------------

describe('failure alerts of one service', () => {
  let database: TestDatabase;
  let llm: FakeOpenAI;
  let receiver: Receiver;
  let t: TestService;
  let monitor: EventMonitor;
  const logsOfEveryInstance: Array<Record<string, unknown>>[] = [];

  const start = async () => {
    t = await startTestService(alertEnv(receiver, { PUBLIC_URL: 'https://scheduler.example.com/' }), { database, llm, registry: registry() });
    monitor = new EventMonitor(t.service.events);
    logsOfEveryInstance.push(t.logs);
  };

  beforeAll(async () => {
    database = await createTestDatabase();
    llm = await startFakeOpenAI();
    receiver = await startReceiver();
    await start();
  });
  afterAll(async () => {
    await t?.stop();
    await receiver?.close();
    await llm?.close();
    await database?.drop();
  });

  it('a dead-lettered run sends one alert with its fields; more failures, even after a restart, send none; its recovery sends one', async () => {
    const failed = await run(t, monitor, 'probe-dl', 'fail');
    expect(failed).toMatchObject({ status: 'FAILED', deadLettered: true });
    const [alert] = await eventually('the dead_lettered alert', () => receiver.about('probe-dl').length === 1 && receiver.about('probe-dl'));
    expect(alert).toMatchObject({
      kind: 'dead_lettered',
      job: 'probe-dl',
      log_id: failed.logId,
      job_id: failed.jobId,
      error: 'probe-dl broke',
      run_url: `https://scheduler.example.com/api/jobs/logs/${failed.logId}`,
      alert_id: expect.any(Number),
    });
    expect(alert.occurred_at).toMatch(ISO);
    expect(alert.sent_at).toMatch(ISO);
    expect(new Date(alert.sent_at).getTime()).toBeGreaterThanOrEqual(new Date(alert.occurred_at).getTime());
    // Slack-compatible: the text names the job, the error and links the run.
    expect(alert.text).toContain('*probe-dl*');
    expect(alert.text).toContain('probe-dl broke');
    expect(alert.text).toContain(`<https://scheduler.example.com/api/jobs/logs/${failed.logId}|log ${failed.logId}>`);
    expect(receiver.requests.at(-1)!.headers['content-type']).toBe('application/json');
    expect(receiver.requests.at(-1)!.path).toBe(`/hooks/${SECRET}`);
    await eventually('delivered in the history', async () => (await historyOf(t, alert.alert_id))?.delivered);
    expect(await historyOf(t, alert.alert_id)).toMatchObject({ kind: 'dead_lettered', job_name: 'probe-dl', log_id: failed.logId, status: 'delivered', attempts: 1, last_error: null, resolved_by: null });

    // The same failure again: the alert stands, nothing is sent.
    await run(t, monitor, 'probe-dl', 'fail');
    await suppressed(t, 'dead_lettered', 'probe-dl');
    expect(receiver.about('probe-dl')).toHaveLength(1);

    // A restart resends nothing and remembers the open alert.
    await t.stop();
    await start();
    await run(t, monitor, 'probe-dl', 'fail');
    await suppressed(t, 'dead_lettered', 'probe-dl');
    expect(receiver.about('probe-dl')).toHaveLength(1);

    // The first successful run: one recovery, which closes the alert.
    const ok = await run(t, monitor, 'probe-dl', 'ok');
    const recovered = await eventually('the recovery', () => receiver.about('probe-dl')[1]);
    expect(recovered).toMatchObject({ kind: 'recovered', job: 'probe-dl', log_id: ok.logId, job_id: ok.jobId, error: null, details: { closes: [{ kind: 'dead_lettered', alert_id: alert.alert_id }] } });
    await eventually('the failure alert resolved by the recovery', async () => (await historyOf(t, alert.alert_id))?.resolved_by === recovered.alert_id);

    // Another success closes nothing; the next failure alerts again.
    await run(t, monitor, 'probe-dl', 'ok');
    await run(t, monitor, 'probe-dl', 'fail');
    await eventually('a new dead_lettered alert', () => receiver.about('probe-dl').length === 3);
    await run(t, monitor, 'probe-dl', 'ok');
    await eventually('its recovery', () => receiver.about('probe-dl').length === 4);
    expect(receiver.about('probe-dl').map((a) => a.kind)).toEqual(['dead_lettered', 'recovered', 'dead_lettered', 'recovered']);
  });

  it('a run that completes with every item failed sends one alert; a partial failure is a recovery', async () => {
    const end = await run(t, monitor, 'probe-items', 'items-fail');
    expect(end).toMatchObject({ status: 'COMPLETED', itemsProcessed: 0, itemsFailed: 2 });
    const [alert] = await eventually('the all_items_failed alert', () => receiver.about('probe-items').length === 1 && receiver.about('probe-items'));
    expect(alert).toMatchObject({ kind: 'all_items_failed', job: 'probe-items', log_id: end.logId, job_id: end.jobId, error: '2 of 2 items failed: bad input (2)' });

    await run(t, monitor, 'probe-items', 'items-fail');
    await suppressed(t, 'all_items_failed', 'probe-items');
    expect(receiver.about('probe-items')).toHaveLength(1);

    await run(t, monitor, 'probe-items', 'ok');
    await eventually('the recovery', () => receiver.about('probe-items').length === 2);
    expect(receiver.about('probe-items')[1]).toMatchObject({ kind: 'recovered', details: { closes: [{ kind: 'all_items_failed', alert_id: alert.alert_id }] } });
  });

  it('a receiver answering 500 then 200 gets the alert on the retry: delivered, 2 attempts', async () => {
    let refused = 0;
    receiver.answer((body) => (body.job === 'probe-retry' && refused++ === 0 ? 500 : 200));
    await run(t, monitor, 'probe-retry', 'fail');
    const [a, b] = await eventually('two attempts', () => receiver.about('probe-retry').length === 2 && receiver.about('probe-retry'));
    expect(b.alert_id).toBe(a.alert_id);
    const history = await eventually('delivered', async () => {
      const row = await historyOf(t, a.alert_id);
      return row?.delivered && row;
    });
    expect(history).toMatchObject({ status: 'delivered', attempts: 2, last_error: 'HTTP 500: receiver broken' });
    expect(history.delivered_at).toMatch(ISO);
    receiver.answer(() => 200);
  });

  it('a receiver that hangs delays no run; the alert is retried, dead-lettered and listed as not delivered', async () => {
    receiver.answer((body) => (body.job === 'probe-hang' ? 'hang' : 200));
    const failed = await run(t, monitor, 'probe-hang', 'fail');
    // The run's log is closed by the time its end is told, in less time than one delivery attempt may take.
    const log = await runOfJob(t.service.database.db, failed.jobId);
    expect(log).toMatchObject({ status: 'FAILED', error_message: 'probe-hang broke' });
    expect(log!.ended_at!.getTime() - log!.started_at.getTime()).toBeLessThan(TIMEOUT_SECONDS * 1000 * 0.75);
    // The next run does not wait either, while the receiver holds the delivery.
    await eventually('the receiver holding the alert', () => receiver.about('probe-hang').length === 1);
    const started = Date.now();
    await run(t, monitor, 'probe-multi', 'ok');
    expect(Date.now() - started).toBeLessThan(TIMEOUT_SECONDS * 1000 * 0.75);

    const [{ alert_id: id }] = receiver.about('probe-hang');
    const history = await eventually('the alert dead-lettered', async () => {
      const row = await historyOf(t, id);
      return row?.status === 'failed' && row;
    });
    expect(history).toMatchObject({ kind: 'dead_lettered', delivered: false, delivered_at: null, attempts: 2, last_error: `timed out after ${TIMEOUT_SECONDS} s` });
    expect(receiver.about('probe-hang').filter((a) => a.kind === 'dead_lettered')).toHaveLength(2);
    const letters = await t.service.boss.findJobs(deadLetterQueueOf(ALERT_QUEUE));
    expect(letters.map((l) => l.data)).toContainEqual({ alertId: id });
    // Not the pipeline's: the job dead letters never list it.
    expect(await t.service.boss.findJobs(deadLetterQueueOf('probe-hang'))).toHaveLength(1);
    receiver.answer(() => 200);
  });

  it('a run whose worker is lost on its last attempt sends one dead_lettered alert once the reaper closes it', async () => {
    const job = 'probe-lost';
    const { db } = t.service.database;
    const reap = () => createReaper({ db, boss: t.service.boss, logger: createLogger('silent'), events: t.service.events }).reap();
    // The worker that takes the job is this test, standing for a process killed mid-run (test/faults.test.ts kills a real one).
    await t.service.boss.offWork(job);
    const jobId = await t.service.boss.send(job, { trigger: 'manual' });
    const [claimed] = await t.service.boss.fetch(job);
    expect(claimed?.id).toBe(jobId);
    // Its log, opened as the runner opens it before the handler starts; nothing will close it.
    const logId = (await openRuns(db, job, [{ job_id: jobId!, trigger: 'manual', attempt: 1, worker: 'lost' }])).get(jobId!)!;

    // pg-boss's supervision fails the job once it expires: no retry left, so it is dead-lettered.
    await eventually('pg-boss to fail the lost job', async () => (await t.service.boss.findJobs(job, { id: jobId! }))[0]?.state === 'failed', 30_000);
    expect(await t.service.boss.findJobs(deadLetterQueueOf(job))).toHaveLength(1);
    // The service's reaper closes the run within two of its passes; one here saves the wait.
    await reap();
    const reaped = await monitor.next('run:reaped', (e) => e.logId === logId);
    expect(reaped).toMatchObject({ job, jobId, pgbossState: 'failed', willRetry: false, deadLettered: true });
    expect(await runOfJob(db, jobId!)).toMatchObject({ id: logId, status: 'FAILED', error_message: 'interrupted: worker lost', metadata: { reaped: true, dead_lettered: true } });

    const [alert] = await eventually('the dead_lettered alert', () => receiver.about(job).length === 1 && receiver.about(job));
    expect(alert).toMatchObject({ kind: 'dead_lettered', job, log_id: logId, job_id: jobId, error: 'interrupted: worker lost', run_url: `https://scheduler.example.com/api/jobs/logs/${logId}` });
    // Another pass finds nothing left to close, so nothing more is sent.
    await reap();
    await eventually('delivered in the history', async () => (await historyOf(t, alert.alert_id))?.delivered);
    expect(receiver.about(job)).toHaveLength(1);
  }, 60_000);

  it('instances racing on one failure raise one alert; the history pages newest first', async () => {
    const alerter = createAlerter({ db: t.service.database.db, boss: t.service.boss, logger: createLogger('silent'), baseUrl: () => '' });
    const facts = { kind: 'budget_exhausted' as const, job: 'probe-budget', logId: null, jobId: null, error: 'monthly LLM budget spent', occurredAt: new Date() };
    const raised = await Promise.all(Array.from({ length: 10 }, () => alerter.raise(facts)));
    expect(raised.filter((id) => id !== null)).toHaveLength(1);
    const recoveries = await Promise.all(Array.from({ length: 10 }, () => alerter.recover({ job: 'probe-budget', logId: null, jobId: null, occurredAt: new Date() })));
    expect(recoveries.filter((id) => id !== null)).toHaveLength(1);
    await eventually('both delivered', () => receiver.about('probe-budget').length === 2);
    expect(receiver.about('probe-budget').map((a) => a.kind)).toEqual(['budget_exhausted', 'recovered']);

    // GET /api/alerts: newest first, a page at a time (each answer checked against the contract by t.http).
    const page = await readJson(await t.http('/api/alerts?limit=2&offset=0'));
    expect(page.map((a: Json) => a.id)).toEqual([recoveries.find((id) => id !== null), raised.find((id) => id !== null)]);
    expect(page[0]).toMatchObject({ kind: 'recovered', job_name: 'probe-budget', status: 'delivered', delivered: true, attempts: 1 });
    expect(page[1]).toMatchObject({ kind: 'budget_exhausted', job_name: 'probe-budget', error: 'monthly LLM budget spent', resolved_by: page[0].id, message: { kind: 'budget_exhausted', run_url: null } });
    const next = await readJson(await t.http('/api/alerts?limit=2&offset=2'));
    expect(next[0].id).toBeLessThan(page[1].id);
    expect(await listAlerts(t.service.database.db, { limit: 2, offset: 0 })).toEqual(page);
    const refused = await t.http('/api/alerts?limit=0');
    expect(refused.status).toBe(400);
    expect(await readJson(refused)).toEqual({ error: expect.stringMatching(/limit must be between 1 and 100/) });
  });

  it('no log line holds the webhook URL, only its masked form', () => {
    const text = logsOfEveryInstance.flat().map((l) => JSON.stringify(l)).join('\n');
    expect(text).not.toContain(SECRET);
    expect(text).toContain(receiver.masked);
  });
});

describe('alerts across instances', () => {
  let database: TestDatabase;
  let llm: FakeOpenAI;
  let receiver: Receiver;
  const instances: TestService[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    llm = await startFakeOpenAI();
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await Promise.all(instances.map((t) => t.stop()));
    await receiver?.close();
    await llm?.close();
    await database?.drop();
  });

  const startThree = async (env: Record<string, string>) => {
    const three = await Promise.all([0, 1, 2].map(() => startTestService(alertEnv(receiver, env), { database, llm, registry: registry() })));
    instances.push(...three);
    return three;
  };

  it('three instances: one failure sends one alert, its recovery one', async () => {
    const three = await startThree({});
    const monitors = three.map((t) => new EventMonitor(t.service.events));
    const failed = await run(three[0]!, monitors, 'probe-multi', 'fail');
    await eventually('the alert', () => receiver.about('probe-multi').length === 1);
    // Every instance works the alerts queue, yet the alert was delivered once; the link is to the instance that raised it.
    expect(receiver.about('probe-multi')[0]).toMatchObject({ kind: 'dead_lettered', log_id: failed.logId });
    expect(three.map((t) => `${t.service.url}/api/jobs/logs/${failed.logId}`)).toContain(receiver.about('probe-multi')[0].run_url);

    // A second failure, on whichever instance takes it, is not sent again.
    const before = three.map((t) => t.logs.length);
    await run(three[1]!, monitors, 'probe-multi', 'fail');
    await eventually('suppressed on one instance', () => three.some((t, i) => t.logs.slice(before[i]).some((l) => l.msg === 'dead_lettered alert for probe-multi already open: not sent again')));

    await run(three[2]!, monitors, 'probe-multi', 'ok');
    await run(three[0]!, monitors, 'probe-multi', 'ok');
    await eventually('the recovery', () => receiver.about('probe-multi').length === 2);
    await run(three[1]!, monitors, 'probe-multi', 'fail');
    await eventually('the next failure', () => receiver.about('probe-multi').length === 3);
    expect(receiver.about('probe-multi').map((a) => a.kind)).toEqual(['dead_lettered', 'recovered', 'dead_lettered']);
    await Promise.all(three.map((t) => t.stop()));
  });

  it('three API-only instances (no worker running) see an overdue schedule: one alert', async () => {
    const three = await startThree({ ROLE: 'api', ALERT_OVERDUE_SECONDS: '60', ALERT_CHECK_SECONDS: '1' });
    const { pool } = three[0]!.service.database;
    // probe-dl (yearly, January 1st) as if pg-boss had taken its schedule before last year's January 1st
    // and no worker had run it since (no instance runs cron): that occurrence is owed. Only the clock is moved back.
    const { rows } = await pool.query(
      `update pgboss.schedule set data = jsonb_set(data, '{scheduled_since}', to_jsonb(date_trunc('year', now(), timezone) - interval '1 year 1 day'))
       where name = 'probe-dl' and key = '' returning date_trunc('year', now(), timezone) - interval '1 year' as due_at`,
    );
    // A run of another job since then does not hide it.
    await pool.query(`insert into job_logs (job_name, status, ended_at) values ('probe-items', 'COMPLETED', now())`);
    const dueAt = (rows[0].due_at as Date).toISOString();

    const [alert] = await eventually('the overdue alert', () => receiver.about('probe-dl').length > 0 && receiver.about('probe-dl'));
    expect(alert).toMatchObject({ kind: 'overdue', job: 'probe-dl', log_id: null, job_id: null, run_url: null, occurred_at: dueAt, details: { due_at: dueAt, overdue_seconds: 60 } });
    expect(alert.error).toMatch(/^due at .+, no run has started in the \d+ s since/);
    // Every instance checks again, twice, and finds it alerted already.
    const seen = three.map((t) => t.logs.length);
    await eventually('two more passes on every instance', () =>
      three.every((t, i) => t.logs.slice(seen[i]).filter((l) => l.msg === 'overdue, alerted already: probe-dl').length >= 2),
    );
    expect(receiver.about('probe-dl')).toHaveLength(1);
    expect(three.every((t) => t.logs.some((l) => l.msg === 'alerts on: POSTed to ' + receiver.masked + '; schedules overdue after 60 s (checked every 1 s)'))).toBe(true);
  });

  it('without ALERT_WEBHOOK_URL alerts are off, said once at startup', async () => {
    const t = await startTestService({ ROLE: 'api' }, { registry: registry() });
    instances.push(t);
    expect(t.logs.filter((l) => l.msg === 'alerts off: ALERT_WEBHOOK_URL is not set')).toHaveLength(1);
    expect(await t.service.boss.getQueue(ALERT_QUEUE)).toBeNull();
  });
});

describe('alert rules as pure functions', () => {
  const end = (fields: Partial<SchedulerEventMap['run:end']>): SchedulerEventMap['run:end'] => ({
    job: 'j', jobId: 'id', logId: 1, trigger: 'manual', attempt: 1, status: 'COMPLETED', itemsProcessed: 0, itemsFailed: 0, durationMs: 1,
    error: null, willRetry: false, deadLettered: false, absorbedByJobId: null, configurationError: false, ...fields,
  });

  it('classifies a run end', () => {
    expect(classifyRun(end({ status: 'FAILED', deadLettered: true }))).toBe('dead_lettered');
    expect(classifyRun(end({ status: 'FAILED', willRetry: true }))).toBeNull();
    expect(classifyRun(end({ status: 'FAILED', absorbedByJobId: 'other' }))).toBeNull();
    // A setting refused every item: failed for good, not "all items failed".
    expect(classifyRun(end({ status: 'FAILED', deadLettered: true, itemsFailed: 3 }))).toBe('dead_lettered');
    expect(classifyRun(end({ itemsFailed: 3 }))).toBe('all_items_failed');
    expect(classifyRun(end({ itemsFailed: 3, itemsProcessed: 1 }))).toBe('success');
    expect(classifyRun(end({}))).toBe('success');
  });

  it('classifies a reaped run by what pg-boss did with its attempt: dead_lettered only when it failed the last one', () => {
    const reaped = (state: JobWithMetadata['state'] | 'gone', retryCount: number, attempt: number) => {
      const job = state === 'gone' ? undefined : { state, retryCount, deadLetter: 'j/dead-letter' };
      return { job: 'j', jobId: 'id', logId: 1, pgbossState: state, ...fateOfLostAttempt(job, attempt) };
    };
    expect(reaped('failed', 2, 3)).toMatchObject({ willRetry: false, deadLettered: true });
    expect(classifyReaped(reaped('failed', 2, 3))).toBe('dead_lettered');
    // Retries left: pg-boss retries it (waiting, or the next attempt already running).
    expect(reaped('retry', 0, 1)).toMatchObject({ willRetry: true, deadLettered: false });
    expect(reaped('active', 1, 1)).toMatchObject({ willRetry: true, deadLettered: false });
    // A later attempt failed for good: that run's own end says so, not this one.
    expect(reaped('failed', 2, 1)).toMatchObject({ willRetry: true, deadLettered: false });
    expect(reaped('completed', 0, 1)).toMatchObject({ willRetry: false, deadLettered: false });
    // pg-boss no longer has the job: unknown, no alert.
    expect(reaped('gone', 0, 1)).not.toHaveProperty('deadLettered');
    for (const [state, retryCount, attempt] of [['retry', 0, 1], ['active', 1, 1], ['failed', 2, 1], ['completed', 0, 1], ['gone', 0, 1]] as const) {
      expect(classifyReaped(reaped(state, retryCount, attempt)), state).toBeNull();
    }
  });
});
