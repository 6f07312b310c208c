import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { register as globalRegister, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withClient } from '../src/db/with-client.ts';
import { createEvents, type SchedulerEventMap } from '../src/events.ts';
import type { JobDefinition } from '../src/jobs/job.ts';
import { createRegistry, JOBS } from '../src/jobs/registry.ts';
import { createLogger } from '../src/logger.ts';
import { createMetrics, type Metrics } from '../src/metrics/registry.ts';
import { sleep } from '../testkit/poll.ts';
import { EventMonitor } from './support/event-monitor.ts';
import { itemKeyOf, itemMarker } from './support/pipeline.ts';
import { pgAdminUrl } from './support/postgres.ts';
import { eventually, startTestService, type TestService } from './support/service.ts';

/**
 * The Prometheus metrics of a service instance (issue 11): scraped with `scrape()` (the route comes
 * with the HTTP layer), values read with prom-client's getMetricsAsJSON (no exposition parser is
 * installed), the text checked by `promtool check metrics`. The overdue rule behind
 * `scheduler_schedule_overdue_seconds` is tested as pure functions in overdue.test.ts.
 */

// ---------------------------------------------------------------------------------------------
// A running service

const MODEL = 'gpt-test-metrics';
/** A cron that does not fire while the tests run (midnight, January 1st). */
const NEVER = '0 0 1 1 *';

const probe = (name: string, handler: JobDefinition['handler'], queue: JobDefinition['queue'] = {}, defaultCron = NEVER): JobDefinition => ({
  name,
  description: `metrics test job ${name}`,
  defaultCron,
  queue,
  handler,
});

/** Completes with 3 items done and 1 failed. */
const OK = probe('probe-ok', async () => {
  await sleep(20);
  return { itemsProcessed: 3, itemsFailed: 1, failures: [{ item: { id: 1 }, reason: 'bad item' }] };
});
/** Fails; pg-boss retries it an hour later (not during the test). */
const FLAKY = probe('probe-flaky', async () => Promise.reject(new Error('flaky failure')), { retryLimit: 2, retryDelay: 3600 });
/** Fails with no retries: dead-lettered. */
const DEAD = probe('probe-dead', async () => Promise.reject(new Error('fatal failure')), { retryLimit: 0 });
/** Its worker is stopped in the tests, so what is sent to it waits. */
const BACKLOG = probe('probe-backlog', async () => ({ itemsProcessed: 0, itemsFailed: 0 }));
/** Hourly; its worker is stopped too, so no run starts. */
const HOURLY = probe('probe-hourly', async () => ({ itemsProcessed: 0, itemsFailed: 0 }), {}, '0 * * * *');
const PROBES = [OK, FLAKY, DEAD, BACKLOG, HOURLY];
const PROBE_NAMES = new Set(PROBES.map((p) => p.name));

/** Every sample of a JSON scrape as `name{label="value",…}` → value (labels sorted). */
type Samples = Map<string, number>;
const keyOf = (name: string, labels: MetricValue<string>['labels']) =>
  `${name}{${Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}="${v}"`)
    .join(',')}}`;

async function samples(metrics: Metrics): Promise<Samples> {
  const json = (await metrics.registry.getMetricsAsJSON()) as MetricObjectWithValues<MetricValue<string>>[];
  const out: Samples = new Map();
  for (const family of json) {
    for (const value of family.values) out.set(keyOf((value as { metricName?: string }).metricName ?? family.name, value.labels), value.value);
  }
  return out;
}

/** The samples of `after` that differ from `before` (new ones count from 0), restricted by `keep`. */
function changed(before: Samples, after: Samples, keep: (key: string) => boolean): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of after) {
    const delta = value - (before.get(key) ?? 0);
    if (delta !== 0 && keep(key)) out[key] = Math.round(delta * 1e6) / 1e6;
  }
  return out;
}

/** A sample's labels and value, from the exposition text (enough of the format for these checks). */
function textSamples(text: string): Array<{ name: string; labels: Record<string, string>; value: string }> {
  const out: Array<{ name: string; labels: Record<string, string>; value: string }> = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    expect(match, line).not.toBeNull();
    const labels: Record<string, string> = {};
    for (const [, k, v] of match![2]?.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g) ?? []) labels[k!] = v!;
    out.push({ name: match![1]!, labels, value: match![3]! });
  }
  return out;
}

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;

function promtoolCheck(text: string): { status: number | null; output: string } {
  const result = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}`.trim() };
}

describe('metrics of a running service', () => {
  let t: TestService;
  let metrics: Metrics;
  let monitor: EventMonitor;
  const sentIds: string[] = [];

  const send = async (job: string, trigger: string, options: { startAfter?: number } = {}) => {
    const id = await t.service.boss.send(job, { trigger }, options);
    expect(id).toBeTruthy();
    sentIds.push(id!);
    return id!;
  };

  beforeAll(async () => {
    t = await startTestService({ OPENAI_MODEL: MODEL, LLM_CONCURRENCY: '1' }, { registry: createRegistry([...JOBS, ...PROBES]) });
    // What is sent to these waits: no worker takes it.
    await t.service.boss.offWork(BACKLOG.name);
    await t.service.boss.offWork(HOURLY.name);
    monitor = new EventMonitor(t.service.events);
    metrics = createMetrics({
      events: t.service.events,
      db: t.service.database.db,
      boss: t.service.boss,
      registry: t.service.registry,
      logger: createLogger('silent'),
      llmModel: MODEL,
    });
  });
  afterAll(async () => {
    metrics?.stop();
    await t?.stop();
  });

  it('passes promtool check metrics, lint included, on its own registry', async (context) => {
    const text = await metrics.scrape();
    expect(metrics.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    // Families every scrape has: build info, process metrics, the event counters at 0, the database up.
    expect(text).toMatch(/^scheduler_build_info\{version="\d+\.\d+\.\d+[^"]*",pg_boss_version="\d+\.\d+\.\d+[^"]*",node_version="v\d+[^"]*"\} 1$/m);
    expect(text).toMatch(/^process_cpu_seconds_total /m);
    expect(text).toMatch(/^scheduler_database_up 1$/m);
    expect(text).not.toMatch(/^nodejs_active_handles_total/m);
    // prom-client's default registry is left alone.
    expect(globalRegister.getMetricsAsArray()).toHaveLength(0);
    if (!promtool) {
      context.skip('promtool is not installed: the exposition text was not linted');
      return;
    }
    expect(promtoolCheck(text)).toEqual({ status: 0, output: '' });
  });

  it('has every registered job × status × trigger at 0 before the first run', async () => {
    const s = await samples(metrics);
    for (const job of t.service.registry.keys()) {
      for (const status of ['completed', 'failed']) {
        for (const trigger of ['cron', 'manual', 'cli']) expect(s.get(keyOf('scheduler_job_runs_total', { job_name: job, status, trigger })), `${job} ${status} ${trigger}`).toBe(0);
        expect(s.get(keyOf('scheduler_job_run_duration_seconds_count', { job_name: job, status }))).toBe(0);
      }
      expect(s.get(keyOf('scheduler_job_dead_letters_total', { job_name: job }))).toBe(0);
    }
    expect(s.get(keyOf('scheduler_llm_calls_total', { job_name: 'extract-blueprints', model: MODEL, outcome: 'ok' }))).toBe(0);
  });

  it('a completed run, a failed run that will retry and a dead-lettered one each move exactly their series', async () => {
    const onlyProbes = (key: string) => key.startsWith('scheduler_job_') && [...PROBE_NAMES].some((name) => key.includes(`job_name="${name}"`));
    /** Runs `job`, and returns the changed samples (histogram buckets and sums apart) and its run:end. */
    const runAndDiff = async (job: string, trigger: string) => {
      const before = await samples(metrics);
      const jobId = await send(job, trigger);
      const end = await monitor.next('run:end', (e) => e.jobId === jobId);
      const diff = changed(before, await samples(metrics), onlyProbes);
      const status = end.status === 'COMPLETED' ? 'completed' : 'failed';
      const seconds = end.durationMs / 1000;
      // The histogram: its sum moved by the duration, and exactly the buckets at or above it by one.
      expect(diff[keyOf('scheduler_job_run_duration_seconds_sum', { job_name: job, status })] ?? 0).toBeCloseTo(seconds, 5);
      for (const [key, delta] of Object.entries(diff).filter(([key]) => key.startsWith('scheduler_job_run_duration_seconds_bucket'))) {
        const le = /le="([^"]+)"/.exec(key)![1]!;
        expect(le === '+Inf' || Number(le) >= seconds, key).toBe(true);
        expect(delta).toBe(1);
      }
      expect(diff[keyOf('scheduler_job_run_duration_seconds_bucket', { job_name: job, status, le: '+Inf' })]).toBe(1);
      const rest = Object.fromEntries(Object.entries(diff).filter(([key]) => !/^scheduler_job_run_duration_seconds_(bucket|sum)/.test(key)));
      return { end, rest };
    };

    const cases = [
      {
        job: OK.name,
        trigger: 'manual',
        end: { status: 'COMPLETED', itemsProcessed: 3, itemsFailed: 1 },
        also: { [keyOf('scheduler_job_items_total', { job_name: OK.name, outcome: 'processed' })]: 3, [keyOf('scheduler_job_items_total', { job_name: OK.name, outcome: 'failed' })]: 1 },
      },
      { job: FLAKY.name, trigger: 'cli', end: { status: 'FAILED', willRetry: true, deadLettered: false }, also: { [keyOf('scheduler_job_retries_total', { job_name: FLAKY.name })]: 1 } },
      { job: DEAD.name, trigger: 'manual', end: { status: 'FAILED', willRetry: false, deadLettered: true }, also: { [keyOf('scheduler_job_dead_letters_total', { job_name: DEAD.name })]: 1 } },
    ];
    for (const { job, trigger, end, also } of cases) {
      const run = await runAndDiff(job, trigger);
      expect(run.end).toMatchObject(end);
      const status = end.status === 'COMPLETED' ? 'completed' : 'failed';
      expect(run.rest, job).toEqual({
        [keyOf('scheduler_job_runs_total', { job_name: job, status, trigger })]: 1,
        [keyOf('scheduler_job_run_duration_seconds_count', { job_name: job, status })]: 1,
        ...also,
      });
    }
  });

  it('a reaped run is counted as reaped, and as a retry or a dead letter when pg-boss says so', async () => {
    const reapedDiff = async (event: Omit<SchedulerEventMap['run:reaped'], 'job' | 'jobId' | 'logId'>) => {
      const before = await samples(metrics);
      // What the reaper emits when it closes a run whose worker is gone (the reaper has tests of its own).
      t.service.events.emit('run:reaped', { job: OK.name, jobId: null, logId: 0, ...event });
      return changed(before, await samples(metrics), (key) => key.startsWith('scheduler_job_'));
    };
    const reaped = keyOf('scheduler_job_reaped_runs_total', { job_name: OK.name });
    expect(await reapedDiff({ pgbossState: 'gone' })).toEqual({ [reaped]: 1 });
    expect(await reapedDiff({ pgbossState: 'retry', willRetry: true, deadLettered: false })).toEqual({ [reaped]: 1, [keyOf('scheduler_job_retries_total', { job_name: OK.name })]: 1 });
    // Lost on its last attempt: pg-boss failed it and dead-lettered it.
    expect(await reapedDiff({ pgbossState: 'failed', willRetry: false, deadLettered: true })).toEqual({ [reaped]: 1, [keyOf('scheduler_job_dead_letters_total', { job_name: OK.name })]: 1 });
  });

  it('LLM calls move the call and token counters and the call histogram, by job, model and outcome', async () => {
    t.llm.respond((req) =>
      itemKeyOf(req) === 'refused'
        ? { status: 400, body: { error: { message: 'Bad request' } } }
        : { content: { exam_name: 'Concurso', organization: null, topics: [{ code: 'T-1', name: 'Tema', discipline: 'Geral' }] } },
    );
    for (const key of ['good', 'refused']) {
      await t.service.database.pool.query('insert into harvest_items (title, content) values ($1, $2)', [`Edital ${key}`, `Edital ${key} ${itemMarker(key)}`]);
    }
    const before = await samples(metrics);
    const seenBefore = monitor.of('llm:call').length;
    const jobId = await send('extract-blueprints', 'manual');
    const end = await monitor.next('run:end', (e) => e.jobId === jobId);
    expect(end).toMatchObject({ status: 'COMPLETED', itemsProcessed: 1, itemsFailed: 1 });
    const calls = monitor.of('llm:call').slice(seenBefore).filter((c) => c.job === 'extract-blueprints');
    expect(calls.map((c) => c.outcome).sort()).toEqual(['ok', 'rejected']);

    const diff = changed(before, await samples(metrics), (key) => key.startsWith('scheduler_llm_') && !/_(bucket|sum)\{/.test(key));
    const labels = { job_name: 'extract-blueprints', model: MODEL };
    const sum = (field: 'promptTokens' | 'completionTokens') => calls.reduce((total, c) => total + c[field], 0);
    expect(sum('promptTokens')).toBeGreaterThan(0);
    expect(diff).toEqual({
      [keyOf('scheduler_llm_calls_total', { ...labels, outcome: 'ok' })]: 1,
      [keyOf('scheduler_llm_calls_total', { ...labels, outcome: 'rejected' })]: 1,
      [keyOf('scheduler_llm_tokens_total', { ...labels, kind: 'prompt' })]: sum('promptTokens'),
      [keyOf('scheduler_llm_tokens_total', { ...labels, kind: 'completion' })]: sum('completionTokens'),
      [keyOf('scheduler_llm_call_duration_seconds_count', { model: MODEL })]: 2,
    });
  });

  it('the database gauges show a queued backlog, dead letters, a paused schedule and an overdue one', async () => {
    const firstSent = Date.now();
    for (let i = 0; i < 4; i++) await send(BACKLOG.name, 'manual');
    for (let i = 0; i < 2; i++) await send(BACKLOG.name, 'manual', { startAfter: 3600 });
    // Paused in the table, as an operator might (the schedule sync applies it to pg-boss).
    await t.service.database.pool.query(`update job_schedule set is_active = false where job_name = $1`, [FLAKY.name]);
    // probe-hourly as if pg-boss had taken its schedule three hours ago and no worker had run it
    // since: its worker is stopped, so only the clock is moved back.
    await t.service.database.pool.query(
      `update pgboss.schedule set updated_on = now() - interval '3 hours',
         data = jsonb_set(data, '{scheduled_since}', to_jsonb(to_char((now() - interval '3 hours') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')))
       where name = $1 and key = ''`,
      [HOURLY.name],
    );

    // pg-boss's monitor pass counts the queues every 10 s; the gauges show its latest count.
    const at = (name: string, labels: Record<string, string>) => s.get(keyOf(name, labels));
    const settled = () =>
      at('scheduler_queue_jobs', { job_name: BACKLOG.name, state: 'ready' }) === 4 &&
      at('scheduler_queue_jobs', { job_name: BACKLOG.name, state: 'deferred' }) === 2 &&
      at('scheduler_dead_letter_queue_jobs', { job_name: DEAD.name }) === 1 &&
      !s.has(keyOf('scheduler_schedule_next_run_timestamp_seconds', { job_name: FLAKY.name }));
    let s = await samples(metrics);
    for (const deadline = Date.now() + 30_000; !settled() && Date.now() < deadline; s = await samples(metrics)) await sleep(500);
    expect(at('scheduler_queue_jobs', { job_name: BACKLOG.name, state: 'ready' })).toBe(4);
    expect(at('scheduler_queue_jobs', { job_name: BACKLOG.name, state: 'deferred' })).toBe(2);
    expect(at('scheduler_dead_letter_queue_jobs', { job_name: DEAD.name })).toBe(1);
    expect(s.has(keyOf('scheduler_schedule_next_run_timestamp_seconds', { job_name: FLAKY.name }))).toBe(false);
    expect(at('scheduler_database_up', {})).toBe(1);
    for (const state of ['blocked', 'active', 'failed']) expect(at('scheduler_queue_jobs', { job_name: BACKLOG.name, state })).toBe(0);
    // probe-flaky's failed run waits an hour for its retry: deferred, not ready.
    expect(at('scheduler_queue_jobs', { job_name: FLAKY.name, state: 'deferred' })).toBe(1);
    expect(at('scheduler_dead_letter_queue_jobs', { job_name: OK.name })).toBe(0);

    const waited = at('scheduler_queue_oldest_waiting_seconds', { job_name: BACKLOG.name })!;
    expect(waited).toBeGreaterThan(0);
    expect(waited).toBeLessThanOrEqual((Date.now() - firstSent) / 1000 + 2);
    expect(at('scheduler_queue_oldest_waiting_seconds', { job_name: OK.name })).toBe(0);
    // A retry waiting out its delay is not waiting to run yet.
    expect(at('scheduler_queue_oldest_waiting_seconds', { job_name: FLAKY.name })).toBe(0);

    expect(at('scheduler_schedule_active', { job_name: FLAKY.name })).toBe(0);
    expect(at('scheduler_schedule_overdue_seconds', { job_name: FLAKY.name })).toBe(0);
    expect(at('scheduler_schedule_active', { job_name: OK.name })).toBe(1);
    expect(at('scheduler_schedule_overdue_seconds', { job_name: OK.name })).toBe(0);
    const next = at('scheduler_schedule_next_run_timestamp_seconds', { job_name: OK.name })!;
    expect(new Date(next * 1000).toISOString()).toMatch(/-01-01T00:00:00\.000Z$/);
    const { rows } = await t.service.database.pool.query(`select extract(epoch from max(started_at))::float8 as at from job_logs where job_name = $1`, [OK.name]);
    expect(at('scheduler_schedule_last_run_timestamp_seconds', { job_name: OK.name })).toBeCloseTo(rows[0].at, 2);
    expect(s.has(keyOf('scheduler_schedule_last_run_timestamp_seconds', { job_name: HOURLY.name }))).toBe(false);

    // Owed: the first full hour after three hours ago, so 2 to 3 hours late.
    const overdue = at('scheduler_schedule_overdue_seconds', { job_name: HOURLY.name })!;
    expect(overdue).toBeGreaterThanOrEqual(2 * 3600 - 1);
    expect(overdue).toBeLessThanOrEqual(3 * 3600 + 60);
  }, 60_000);

  it('records HTTP requests by method, route pattern and status, with bounded labels', async () => {
    metrics.observeHttpRequest('get', '/api/jobs/logs/:jobName/latest', 200, 0.012);
    metrics.observeHttpRequest('BREW', '/api/jobs/logs/:jobName/latest', 418, 0.5);
    metrics.observeHttpRequest('GET', '/api/jobs/logs/:jobName/latest', 200, Number.NaN);
    const s = await samples(metrics);
    const route = '/api/jobs/logs/:jobName/latest';
    expect(s.get(keyOf('scheduler_http_request_duration_seconds_count', { method: 'GET', route, status: '200' }))).toBe(1);
    expect(s.get(keyOf('scheduler_http_request_duration_seconds_sum', { method: 'GET', route, status: '200' }))).toBeCloseTo(0.012, 6);
    expect(s.get(keyOf('scheduler_http_request_duration_seconds_count', { method: 'OTHER', route, status: '418' }))).toBe(1);
  });

  it('no label value is a job id, a log id or an item id', async () => {
    const text = await metrics.scrape();
    expect(sentIds.length).toBeGreaterThan(0);
    expect(text).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i);
    const allowed: Record<string, Set<string> | RegExp> = {
      job_name: new Set([...t.service.registry.keys(), 'none']),
      status: /^(completed|failed|[1-5]\d\d|unknown)$/,
      trigger: new Set(['cron', 'manual', 'cli']),
      outcome: new Set(['processed', 'failed', 'ok', 'bad_output', 'transient', 'rejected', 'unavailable', 'aborted']),
      kind: new Set(['prompt', 'completion', 'cached']),
      state: new Set(['ready', 'deferred', 'blocked', 'active', 'failed']),
      model: new Set([MODEL]),
      method: /^[A-Z]+$/,
      route: /^\//,
      le: /^(\+Inf|\d+(\.\d+)?(e[+-]?\d+)?)$/,
      version: /^\d+\.\d+\.\d+/,
      pg_boss_version: /^\d+\.\d+\.\d+/,
      node_version: /^v\d+/,
    };
    for (const sample of textSamples(text).filter((x) => x.name.startsWith('scheduler_'))) {
      for (const [label, value] of Object.entries(sample.labels)) {
        const rule = allowed[label];
        expect(rule, `${sample.name}: label ${label}`).toBeDefined();
        expect(rule instanceof RegExp ? rule.test(value) : rule!.has(value), `${sample.name}{${label}="${value}"}`).toBe(true);
      }
    }
  });

  it('several instances keep their own registries: counters are per instance', async () => {
    const other = createMetrics({ events: t.service.events, db: t.service.database.db, boss: t.service.boss, registry: t.service.registry, logger: createLogger('silent'), processMetrics: false });
    try {
      const before = await samples(metrics);
      const jobId = await send(OK.name, 'manual');
      await monitor.next('run:end', (e) => e.jobId === jobId);
      const key = keyOf('scheduler_job_runs_total', { job_name: OK.name, status: 'completed', trigger: 'manual' });
      // `other` subscribed after the earlier runs: it counts only this one.
      expect((await samples(other)).get(key)).toBe(1);
      expect((await samples(metrics)).get(key)).toBe(before.get(key)! + 1);
    } finally {
      other.stop();
    }
  });

  it('answers without the database when it does not answer in time: scheduler_database_up 0', async () => {
    const stuck = createMetrics({
      events: t.service.events,
      db: t.service.database.db,
      boss: { getQueues: () => new Promise(() => {}) },
      registry: t.service.registry,
      logger: createLogger('silent'),
      processMetrics: false,
      databaseTimeoutMs: 200,
    });
    try {
      const started = Date.now();
      const text = await stuck.scrape();
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(text).toMatch(/^scheduler_database_up 0$/m);
      expect(text).toMatch(/^scheduler_job_runs_total\{/m);
      expect(text).not.toMatch(/^scheduler_queue_jobs\{/m);
    } finally {
      stuck.stop();
    }
  });

  // Last: it cuts the service off its database.
  it('answers when the database refuses connections: scheduler_database_up 0, counters and process metrics still there', async (context) => {
    const database = new URL(t.database.url).pathname.slice(1);
    const admin = pgAdminUrl();
    await withClient(admin, async (client) => {
      await client.query(`alter database ${client.escapeIdentifier(database)} allow_connections false`);
      await client.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [database]);
    });
    try {
      const text = await eventually(async () => {
        const text = await metrics.scrape();
        return /^scheduler_database_up 0$/m.test(text) && text;
      });
      expect(text).toMatch(/^scheduler_job_runs_total\{job_name="probe-ok",status="completed",trigger="manual"\} [1-9]/m);
      expect(text).toMatch(/^process_resident_memory_bytes /m);
      expect(text).toMatch(/^scheduler_build_info\{/m);
      expect(text).not.toMatch(/^scheduler_queue_jobs\{/m);
      expect(text).not.toMatch(/^scheduler_schedule_overdue_seconds\{/m);
      if (promtool) expect(promtoolCheck(text)).toEqual({ status: 0, output: '' });
      else context.skip('promtool is not installed: the exposition text was not linted');
    } finally {
      await withClient(admin, (client) => client.query(`alter database ${client.escapeIdentifier(database)} allow_connections true`));
    }
    // And back once the database answers again.
    await eventually(async () => /^scheduler_database_up 1$/m.test(await metrics.scrape()));
  });
});

// ---------------------------------------------------------------------------------------------
// Over HTTP: what Prometheus sees

describe('GET /metrics over HTTP', () => {
  const TOKEN = 'metrics-test-token-0123456789';
  const READ_ONLY = 'metrics-readonly-token-0123456789';
  const asReader = { authorization: `Bearer ${READ_ONLY}` };
  let t: TestService;
  let monitor: EventMonitor;
  beforeAll(async () => {
    t = await startTestService({ API_TOKEN: TOKEN, API_TOKEN_READONLY: READ_ONLY, OPENAI_MODEL: MODEL });
    monitor = new EventMonitor(t.service.events);
  });
  afterAll(() => t?.stop());

  it('needs a token like /api; the read-only token may scrape; the text is Prometheus 0.0.4 and passes promtool', async (context) => {
    const refused = await t.http('/metrics');
    expect(refused.status).toBe(401);
    expect(await refused.json()).toEqual({ error: expect.stringMatching(/bearer token/) });
    const res = await t.http('/metrics', { headers: asReader });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toMatch(/^scheduler_build_info\{version="[^"]+",pg_boss_version="[^"]+",node_version="v22\.[^"]+"\} 1$/m);
    expect(text).toMatch(/^scheduler_database_up 1$/m);
    if (!promtool) return context.skip('promtool is not installed: the exposition text was not linted');
    expect(promtoolCheck(text)).toEqual({ status: 0, output: '' });
  });

  it('counts a run started through the API and the requests by route pattern, never by raw path', async () => {
    const started = await t.http('/api/jobs/run/extract-blueprints', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(started.status).toBe(202);
    const { jobId } = (await started.json()) as { jobId: string };
    await monitor.next('run:end', (e) => e.jobId === jobId);
    for (const path of ['/api/jobs/schedules/extract-blueprints', '/api/jobs/schedules/generate-drops', '/api/jobs/logs/2147483647']) await (await t.http(path, { headers: asReader })).arrayBuffer();

    const text = await (await t.http('/metrics', { headers: asReader })).text();
    expect(text).toMatch(/^scheduler_job_runs_total\{job_name="extract-blueprints",status="completed",trigger="manual"\} 1$/m);
    expect(text).toMatch(/^scheduler_http_request_duration_seconds_count\{method="GET",route="\/api\/jobs\/schedules\/:jobName",status="200"\} 2$/m);
    expect(text).toMatch(/^scheduler_http_request_duration_seconds_count\{method="GET",route="\/api\/jobs\/logs\/:id",status="404"\} 1$/m);
    expect(text).toMatch(/^scheduler_http_request_duration_seconds_count\{method="POST",route="\/api\/jobs\/run\/:jobName",status="202"\} 1$/m);
    // The 401 above was answered before any route ran: still the route's pattern.
    expect(text).toMatch(/^scheduler_http_request_duration_seconds_count\{method="GET",route="\/metrics",status="401"\} 1$/m);
    expect(text).not.toMatch(/route="[^"]*(extract-blueprints|generate-drops|2147483647)"/);
  });

  it('a ROLE=worker instance serves /metrics and /healthz on METRICS_PORT, and no API', async () => {
    const worker = await startTestService({ ROLE: 'worker', METRICS_PORT: '0', API_TOKEN: TOKEN, API_TOKEN_READONLY: READ_ONLY }, { database: t.database, llm: t.llm });
    try {
      expect(worker.service.url).toBe('');
      expect(worker.service.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      expect((await fetch(worker.service.metricsUrl)).status).toBe(401);
      const scraped = await fetch(worker.service.metricsUrl, { headers: asReader });
      expect(scraped.status).toBe(200);
      expect(await scraped.text()).toMatch(/^scheduler_job_runs_total\{job_name="extract-blueprints",status="completed",trigger="cron"\} 0$/m);
      const base = worker.service.metricsUrl.replace(/\/metrics$/, '');
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      const api = await fetch(`${base}/api/jobs/status`, { headers: asReader });
      expect(api.status).toBe(404);
      expect(await api.json()).toEqual({ error: expect.stringMatching(/serves only \/metrics and \/healthz/) });
    } finally {
      await worker.stop();
    }
  });
});

describe("the README's Prometheus examples", () => {
  it('its alert rules pass promtool check rules, and use only families the service exports', async (context) => {
    if (!promtool) return context.skip('promtool is not installed: the rules were not checked');
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## Metrics'), readme.indexOf('\n## ', readme.indexOf('## Metrics') + 1));
    const rules = [...section.matchAll(/```yaml\n(groups:[\s\S]*?)```/g)].map((m) => m[1]!);
    expect(rules).toHaveLength(1);
    const file = join(mkdtempSync(join(tmpdir(), 'rules-')), 'rules.yml');
    writeFileSync(file, rules[0]!);
    const checked = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    expect(checked.status, checked.stdout + checked.stderr).toBe(0);
    expect(checked.stdout).toMatch(/SUCCESS: 3 rules found/);
    // Every family a rule or query names is one the service serves.
    const exported = new Set((await createMetrics({ events: createEvents(createLogger('silent')), db: null as never, boss: null as never, registry: createRegistry(), logger: createLogger('silent'), processMetrics: false }).registry.getMetricsAsJSON()).map((m) => m.name));
    for (const [name] of section.matchAll(/\bscheduler_[a-z_]+?(?=_bucket\b|\b)/g)) expect(exported.has(name.replace(/_(bucket|sum|count)$/, '')), name).toBe(true);
  });
});
