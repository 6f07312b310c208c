/**
 * B9. Console render: how long the operator console's overview takes to show, and what it costs in
 * bytes, on a database with 1 M `job_logs` rows next to one with 10 k.
 *
 * Each size is a database of its own on one embedded PostgreSQL, migrated by the service itself
 * (`node src/main.ts`, ROLE=api as in B8: no workers and no cron, so nothing changes the data and
 * nothing calls the model; OPENAI_BASE_URL points at a loopback port nobody listens on), then seeded
 * in SQL: `job_logs` over the last 60 days, both jobs (generate_series, as B8), and a little of
 * everything the pages show: harvest items of every status, blueprints with drops
 * (bench/data-at-scale-seed.ts), `llm_calls` over 14 days, daily budgets, a run that failed on a
 * setting (its items listed, dead-lettered, an open alert), a run in progress, a waiting run.
 *
 * What is measured, in headless Chromium (testkit/browser.ts), each load in a fresh browser context
 * (nothing cached), 1280×800:
 *   - the time to the overview's first full render: from `page.goto(url)` until both job cards show
 *     their next runs and their last run and the "Updated" note is on screen (a MutationObserver
 *     installed before the page's own scripts sees the DOM get there; the time is taken at the next
 *     animation frame, the one that paints it). LOADS loads per size in ROUNDS rounds, the sizes
 *     alternating load by load; before each round the script waits for a 1-minute load average
 *     below 1.5 (10 minutes at most) and records it. Where the time goes (the page's own resource
 *     timing): the HTML, the modules, the first and the last API answer.
 *   - the bytes of one load, each response's wire size (headers + body as sent, gzip where the
 *     service compresses) and decoded size, by kind (HTML, JS, CSS, JSON), and the largest files.
 *   - the other pages (runs, a run, queue, pipeline, costs, a schedule), VISITS loads each per size:
 *     goto → their data on screen, their slowest API request, and any console error or failed
 *     request, the first load followed by one 4 s refresh. Not a distribution: whether they load
 *     at 1 M, and what grows.
 * Targets: p95 ≤ 1 s at 1 M rows; JS + CSS ≤ 200 KB gzipped (KB = 1,024 bytes).
 *
 * `--screenshots`: also saves docs/console-overview.png, docs/console-run.png (the failed run's
 * detail) and docs/console-costs.png, at 1280×800, from the largest database.
 * `--quick`: the 10 k database alone, 5 loads; a CI-sized check that it still works, not figures to
 * quote (~1.5 min). Full mode: ~7 min on 2 cores (most of it waiting for a quiet machine between
 * rounds; seeding 1 M rows takes ~20 s).
 *
 *   cd /work/main && npm run bench:console [-- --quick] [-- --screenshots]
 */
import { mkdir } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import type { Browser, Page, Request } from 'playwright-core';
import { alertMessage } from '../src/alerts/message.ts';
import { EXTRACT_PROMPT } from '../src/jobs/extract-blueprints.prompt.ts';
import { DROPS_PROMPT } from '../src/jobs/generate-drops.prompt.ts';
import { deadLetterQueueOf } from '../src/jobs/job.ts';
import { CHROMIUM_PATH, hasChromium, launchChromium, watchedPage } from '../testkit/browser.ts';
import { sleep } from '../testkit/poll.ts';
import { freePort } from '../testkit/ports.ts';
import { spawnNode } from '../testkit/processes.ts';
import { dropsOf, JOB_QUEUES, seedBlueprints, seedDrops, seedHarvestItems, type Scale } from './data-at-scale-seed.ts';
import { fmt, killOnCleanup, machineLine, main, markdownTable, max, median, note, onCleanup, percentile, QUICK, ratio, ROOT, sized, startPostgres, stopGracefully } from './lib.ts';

type Size = { label: string; jobLogs: number };
const SMALL: Size = { label: '10 k', jobLogs: 10_000 };
const LARGE: Size = { label: '1 M', jobLogs: 1_000_000 };
const SIZES: Size[] = sized([SMALL], [SMALL, LARGE]);
/** Timed loads per size, in ROUNDS rounds; WARMUP untimed loads per size first (the service reads its files on first request). */
const LOADS = sized(5, 30);
const ROUNDS = sized(1, 3);
const WARMUP = 2;
const HISTORY_DAYS = 60;
const VIEWPORT = { width: 1280, height: 800 };
const SCREENSHOTS = process.argv.includes('--screenshots');
const TARGET_P95_MS = 1000;
const TARGET_JS_CSS_BYTES = 200 * 1024;
/** Wait for the 1-minute load average to fall below this before each round, polling every 10 s, 10 minutes at most. */
const QUIET_LOAD = 1.5;
const QUIET_POLL_MS = 10_000;
const QUIET_MAX_MS = 10 * 60_000;
/** A load that has not rendered fully by then is a failure (and is reported as one). */
const RENDER_TIMEOUT_MS = 30_000;
/** Harvest items, blueprints and drops: a little of each (B8's generator, at a small scale). */
const PIPELINE: Scale = { label: 'pipeline', harvestItems: 40, pending: 12, blueprints: 24, withoutDrops: 4, jobLogs: 0, finishedJobs: 0 };
const MODEL = 'gpt-4o-mini';
const WORKER = 'memodrops-scheduler-6d5f8b7c9-x2lqp';

type Kind = 'HTML' | 'JS' | 'CSS' | 'JSON' | 'other';
const KINDS: Kind[] = ['HTML', 'JS', 'CSS', 'JSON', 'other'];
type FileBytes = { path: string; kind: Kind; encoding: string; wire: number; body: number; decoded: number };
type Load = {
  wallMs: number;
  /** The page's own clock, from navigation start: the DOM complete, the frame that paints it. */
  domMs: number;
  frameMs: number;
  htmlMs: number;
  modulesMs: number;
  firstApiMs: number;
  lastApiMs: number;
  loadAvg: number;
};
type Round = { loadBefore: number; waitedS: number; gaveUp: boolean; loadAfter: number };
type Target = { size: Size; base: string; failedRunId: number; seedS: number; loads: Load[]; failures: string[]; problems: string[]; bytes: FileBytes[] };

// ---------------------------------------------------------------------------------------------
// The database and the service

async function prepare(url: string, size: Size): Promise<Target> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  // Nothing listens there: the estimate route needs model settings, and no call is ever made.
  const noModel = `http://127.0.0.1:${await freePort()}/v1`;
  const service = killOnCleanup(spawnNode('src/main.ts', {
    env: {
      DATABASE_URL: url, PORT: String(port), HOST: '127.0.0.1', ROLE: 'api', LOG_LEVEL: 'warn', LOG_FORMAT: 'json',
      OPENAI_API_KEY: 'sk-bench-dummy-key-not-used', OPENAI_BASE_URL: noModel, OPENAI_MODEL: MODEL, LLM_DAILY_BUDGET_USD: '5',
    },
    tailChars: 20_000,
    onLine: (line) => process.stderr.write(`[service ${size.label}] ${line.slice(0, 300)}\n`),
  }));
  onCleanup(async () => void (await stopGracefully(service, 15_000)));
  await service.waitForHealth(base, 120_000);

  const client = new pg.Client({ connectionString: url, application_name: 'bench-console-render' });
  client.on('error', (error) => note(`bench connection: ${error.message}`));
  await client.connect();
  onCleanup(() => client.end().catch(() => {}));
  const t0 = performance.now();
  const failedRunId = await seed(client, size, base);
  const seedS = (performance.now() - t0) / 1000;
  note(`${size.label}: seeded and vacuumed in ${fmt(seedS, 0)} s`);
  return { size, base, failedRunId, seedS, loads: [], failures: [], problems: [], bytes: [] };
}

/** u(k): a uniform number in [0, 1) from row `row` and salt k (as bench/data-at-scale-seed.ts). */
const u = (k: number, row = 'i') => `((hashint8(${row}::bigint * 16 + ${k}) & 2147483647)::float8 / 2147483648.0)`;

/** Seeds everything the pages show; returns the id of the failed run whose detail is photographed. */
async function seed(client: pg.Client, size: Size, base: string): Promise<number> {
  const [extract, drops] = JOB_QUEUES;
  const step = (what: string, total: number) => (done: number) => note(`${size.label}: ${what} ${done} / ${total}`);

  // Harvest items, blueprints, drops: B8's generator at a small scale, then the statuses it does not
  // make (errors, items a running run holds), the prompts' versions and costs, dates of the last weeks.
  await seedHarvestItems(client, PIPELINE, step('harvest_items', PIPELINE.harvestItems));
  await seedBlueprints(client, PIPELINE, step('exam_blueprints', PIPELINE.blueprints));
  await seedDrops(client, PIPELINE, step('drops', dropsOf(PIPELINE)));
  await client.query(`update harvest_items set created_at = now() - (41 - id) * interval '21 hours', updated_at = now() - (41 - id) * interval '21 hours' + interval '2 hours'`);
  await client.query(`update harvest_items set status = 'BLUEPRINT_ERROR', error_message = case when id % 2 = 0 then 'model answer had no topics' else 'LLM error 400: context_length_exceeded: this model''s maximum context length is 128000 tokens' end
    where id between $1 and $2`, [PIPELINE.blueprints + 1, PIPELINE.harvestItems - PIPELINE.pending]);
  await client.query(`update exam_blueprints b set created_at = h.updated_at, drops_generated_at = case when b.drops_generated_at is not null then h.updated_at + interval '3 hours' end,
      prompt_version = case when b.id <= 6 then 'a1b2c3d4e5f6' else $1 end, cost_usd = 0.00061 + b.id * 0.000013
    from harvest_items h where h.id = b.harvest_item_id`, [EXTRACT_PROMPT.version]);
  await client.query(`update drops d set created_at = b.drops_generated_at, model = $1, prompt_version = case when b.id <= 6 then '0f9e8d7c6b5a' else $2 end, cost_usd = 0.000108
    from exam_blueprints b where b.id = d.blueprint_id`, [MODEL, DROPS_PROMPT.version]);

  // The run history: 60 days of both jobs, ids in time order, ending 3 h 30 min ago.
  const bulk = size.jobLogs - 3;
  for (let lo = 1; lo <= bulk; lo += 250_000) {
    const hi = Math.min(bulk, lo + 250_000 - 1);
    await client.query(`
      insert into job_logs (job_name, status, started_at, ended_at, items_processed, items_failed, error_message, metadata, job_id)
      select job, case when failed then 'FAILED' else 'COMPLETED' end, started, started + duration_ms * interval '1 millisecond',
             case when failed then 0 else items end, case when failed then 0 else items_failed end,
             case when failed then (array['timed out after 900 s', 'interrupted: worker lost', 'LLM error 503: The server is overloaded or not ready yet.'])[1 + (hashint8(i * 16 + 7) & 2147483647) % 3]
                  when items_failed > 0 then items_failed || ' of ' || (items + items_failed) || ' ' || noun || ' failed: model answer was not valid JSON (' || items_failed || ')' end,
             jsonb_build_object('job_id', job_id, 'trigger', trig, 'attempt', 1, 'duration_ms', duration_ms, 'worker', $6::text) ||
               case when failed then '{"will_retry": true}'::jsonb else '{}'::jsonb end,
             job_id
      from (
        select i, job, noun, started, failed, trig, md5('run-' || i)::uuid::text as job_id,
               case when job = $3::text then round(15000 + ${u(2)} * 60000) else round(45000 + power(${u(2)}, 3) * 400000) end::int as duration_ms,
               case when job = $3::text then 1 + floor(${u(3)} * 10) else 10 + floor(${u(3)} * 40) end::int as items,
               case when ${u(4)} < 0.05 then 1 + floor(${u(5)} * 3) else 0 end::int as items_failed
        from (
          select i, (array[$3::text, $4::text])[1 + i % 2] as job, (array['harvest items', 'topics'])[1 + i % 2] as noun,
                 ${u(1)} < 0.035 as failed, case when ${u(6)} < 0.06 then 'manual' else 'cron' end as trig,
                 now() - interval '${HISTORY_DAYS} days' + ((i - 1)::float8 / $5::int) * (interval '${HISTORY_DAYS} days' - interval '3 hours 30 minutes') as started
          from generate_series($1::int, $2::int) as i
        ) n
      ) s`, [lo, hi, extract, drops, bulk, WORKER]);
    step('job_logs', size.jobLogs)(hi);
  }

  // A run that failed on a setting 3 hours ago (every item refused alike: not retried, dead-lettered,
  // its items listed), its pg-boss job, its dead letter and the alert it raised.
  const failedJobId = '6f1c2a9e-4b7d-4e0a-9c3f-2d8e5b1a7c40';
  const refusal = "LLM error 400: Invalid schema for response_format 'exam_blueprint': In context=(), 'additionalProperties' is required to be supplied and to be false.";
  const failedItems = [31, 32, 33];
  const failedError = `3 of 3 harvest items failed: ${refusal} (3): the model server refuses the requests, not the items; check OPENAI_MODEL (it must support Structured Outputs) and OPENAI_BASE_URL`;
  const failedLlm = { model: MODEL, calls: 3, prompt_tokens: 7_482, cached_prompt_tokens: 0, completion_tokens: 0, total_tokens: 7_482, cost_usd: 0.0011223 };
  const { rows: [failed] } = await client.query<{ id: number; ended_at: Date }>(`
    insert into job_logs (job_name, status, started_at, ended_at, items_processed, items_failed, error_message, metadata, job_id)
    values ($1, 'FAILED', now() - interval '3 hours', now() - interval '3 hours' + interval '4210 milliseconds', 0, 3, $2, $3, $4)
    returning id, ended_at`,
  [extract, failedError, {
    job_id: failedJobId, trigger: 'cron', attempt: 1, worker: WORKER, items_claimed: 3, will_retry: false, dead_lettered: true,
    configuration_error: { variables: ['OPENAI_MODEL', 'OPENAI_BASE_URL'] },
    failures: failedItems.map((id) => ({ item: { harvest_item_id: id }, reason: refusal })), failures_total: 3, duration_ms: 4210, llm: failedLlm,
  }, failedJobId]);
  await client.query(`
    insert into pgboss.job (id, name, data, state, policy, retry_limit, retry_count, created_on, start_after, started_on, completed_on, output)
    select $1::uuid, q.name, '{"trigger":"cron"}', 'failed', q.policy, 3, 0, now() - interval '3 hours', now() - interval '3 hours', now() - interval '3 hours', $2, $3
    from pgboss.queue q where q.name = $4`, [failedJobId, failed!.ended_at, { message: failedError, configuration_error: true }, extract]);
  await client.query(`
    insert into pgboss.job (name, data, state, policy, created_on, start_after, source_name, source_id, source_created_on, source_retry_count, source_output, source_root_id)
    select q.name, '{"trigger":"cron"}', 'created', q.policy, $2, $2, $3, $4::uuid, now() - interval '3 hours', 0, $5, $4::uuid
    from pgboss.queue q where q.name = $1`, [deadLetterQueueOf(extract!), failed!.ended_at, extract, failedJobId, { message: failedError, configuration_error: true }]);
  const message = alertMessage({ kind: 'dead_lettered', job: extract!, logId: failed!.id, jobId: failedJobId, error: failedError, occurredAt: failed!.ended_at }, base);
  const { rows: [alert] } = await client.query<{ id: number }>(`
    insert into alerts (kind, job_name, log_id, job_id, error, occurred_at, payload, delivery_job_id, status, attempts, last_attempt_at, delivered_at, created_at)
    values ('dead_lettered', $1, $2, $3, $4, $5, $6, gen_random_uuid()::text, 'delivered', 1, $5, $5, $5) returning id`,
  [extract, failed!.id, failedJobId, failedError, failed!.ended_at, message]);
  await client.query(`insert into alert_state (job_name, kind, open, opened_at, alert_id) values ($1, 'dead_lettered', true, $2, $3)`, [extract, failed!.ended_at, alert!.id]);

  // generate-drops' latest run, 25 minutes ago: two topics of 48 failed.
  const dropFailures = [
    { item: { blueprint_id: 22, topic_code: 'DADM-03' }, reason: 'LLM error 500: The server had an error while processing your request.' },
    { item: { blueprint_id: 23, topic_code: 'RLOG-07' }, reason: 'model answer was not valid JSON: Unexpected end of JSON input' },
  ];
  await client.query(`
    insert into job_logs (job_name, status, started_at, ended_at, items_processed, items_failed, error_message, metadata, job_id)
    values ($1, 'COMPLETED', now() - interval '25 minutes', now() - interval '25 minutes' + interval '212 seconds', 46, 2, $2, $3, $4)`,
  [drops, '2 of 48 topics failed: LLM error 500: The server had an error while processing your request. (1); model answer was not valid JSON: Unexpected end of JSON input (1)', {
    job_id: '0b7e4c1d-2f3a-4c5b-8d6e-7f8091a2b3c4', trigger: 'cron', attempt: 1, worker: WORKER, blueprints_claimed: 5, failures: dropFailures, failures_total: 2, duration_ms: 212_310,
    llm: { model: MODEL, calls: 49, prompt_tokens: 17_395, cached_prompt_tokens: 6_144, completion_tokens: 44_870, total_tokens: 62_265, cost_usd: 0.0291 },
  }, '0b7e4c1d-2f3a-4c5b-8d6e-7f8091a2b3c4']);

  // extract-blueprints running now (started by hand a minute ago, holding two items); the next
  // generate-drops run waiting. Their pg-boss jobs as B8 writes them: heartbeat off and a day's
  // expiry, so the supervisor leaves the active one alone.
  const runningJobId = '9d2e4f60-1a3b-4c5d-8e7f-0a1b2c3d4e5f';
  const { rows: [running] } = await client.query<{ id: number }>(`
    insert into job_logs (job_name, status, started_at, metadata, job_id) values ($1, 'STARTED', now() - interval '1 minute', $2, $3) returning id`,
  [extract, { job_id: runningJobId, trigger: 'manual', attempt: 1, worker: WORKER }, runningJobId]);
  await client.query(`update harvest_items set status = 'PROCESSING', claimed_by_log_id = $1, updated_at = now() - interval '1 minute' where id in (34, 35)`, [running!.id]);
  await client.query(`
    insert into pgboss.job (id, name, data, state, policy, retry_limit, created_on, start_after, started_on, heartbeat_seconds, expire_seconds)
    select $1::uuid, q.name, '{"trigger":"manual"}', 'active', q.policy, 3, now() - interval '1 minute', now() - interval '1 minute', now() - interval '1 minute', null, 86400
    from pgboss.queue q where q.name = $2`, [runningJobId, extract]);
  await client.query(`
    insert into pgboss.job (name, data, state, policy, retry_limit, created_on, start_after)
    select q.name, '{"trigger":"manual"}', 'created', q.policy, 3, now() - interval '10 seconds', now() - interval '10 seconds'
    from pgboss.queue q where q.name = $1`, [drops]);

  // The LLM ledger: 14 days of both jobs (more drops calls than extraction calls, a day-to-day
  // spread), a few retries and errors, priced as gpt-4o-mini; and the failed run's three refusals.
  await client.query(`
    insert into llm_calls (at, job_name, item, model, prompt_version, prompt_tokens, cached_prompt_tokens, completion_tokens, latency_ms, outcome, http_status, cost_usd)
    select at, job, item, $1, pv, pt, cpt, ct, latency, outcome, case outcome when 'ok' then 200 when 'retry' then 429 else 500 end,
           case when outcome = 'ok' then round(((pt - cpt) * 0.15 + cpt * 0.075 + ct * 0.6) / 1e6, 8) else 0 end
    from (
      select j.job, j.pv, now() - (d + ${u(1, 'd * 100000 + k')}) * interval '1 day' as at,
             case when j.job = $2 then jsonb_build_object('harvest_item_id', 1 + k % 40) else jsonb_build_object('blueprint_id', 1 + k % 24, 'topic_code', 'PORT-0' || k % 10) end as item,
             case when ${u(2, 'd * 100000 + k')} < 0.97 then 'ok' when ${u(2, 'd * 100000 + k')} < 0.99 then 'retry' else 'error' end as outcome,
             (case when j.job = $2 then 1800 + ${u(3, 'd * 100000 + k')} * 2500 else 350 + ${u(3, 'd * 100000 + k')} * 200 end)::int as pt,
             (case when j.job = $3 and ${u(4, 'd * 100000 + k')} < 0.4 then 256 else 0 end)::int as cpt,
             (case when j.job = $2 then 300 + ${u(5, 'd * 100000 + k')} * 500 else 700 + ${u(5, 'd * 100000 + k')} * 600 end)::int as ct,
             (800 + ${u(6, 'd * 100000 + k')} * 5000)::int as latency
      from generate_series(0, 13) as d,
           (values ($2::text, 30, $4::text), ($3::text, 220, $5::text)) as j(job, per_day, pv),
           generate_series(1, (j.per_day * (0.4 + 1.2 * ${u(7, 'd')}))::int) as k
    ) s`, [MODEL, extract, drops, EXTRACT_PROMPT.version, DROPS_PROMPT.version]);
  await client.query(`
    insert into llm_calls (at, log_id, job_name, item, model, prompt_version, prompt_tokens, completion_tokens, latency_ms, outcome, http_status, cost_usd)
    select now() - interval '3 hours' + k * interval '1 second', $1, $2, jsonb_build_object('harvest_item_id', 30 + k), $3, $4, 2494, 0, 310, 'error', 400, 0.0003741
    from generate_series(1, 3) as k`, [failed!.id, extract, MODEL, EXTRACT_PROMPT.version]);

  // Daily budgets, through the API as an operator sets them (the global one is LLM_DAILY_BUDGET_USD).
  for (const [job, usd] of [[extract, 0.5], [drops, 3]] as const) {
    const res = await fetch(`${base}/api/jobs/schedules/${job}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ daily_budget_usd: usd }) });
    if (!res.ok) throw new Error(`PUT /api/jobs/schedules/${job}: ${res.status} ${await res.text()}`);
  }
  for (const table of ['harvest_items', 'exam_blueprints', 'drops', 'job_logs', 'llm_calls', 'alerts', 'alert_state', 'pgboss.job_common', 'pgboss.queue']) await client.query(`vacuum (analyze) ${table}`);
  return failed!.id;
}

// ---------------------------------------------------------------------------------------------
// Loads

/** Polls the 1-minute load average every 10 s until it is below QUIET_LOAD; gives up after 10 minutes. */
async function waitForQuiet(what: string): Promise<{ load: number; waitedS: number; gaveUp: boolean }> {
  const t0 = performance.now();
  for (;;) {
    const load = loadavg()[0]!;
    const waitedMs = performance.now() - t0;
    if (load < QUIET_LOAD) return { load, waitedS: waitedMs / 1000, gaveUp: false };
    if (waitedMs >= QUIET_MAX_MS) {
      note(`${what}: load average still ${fmt(load, 2)} after 10 minutes; measuring anyway`);
      return { load, waitedS: waitedMs / 1000, gaveUp: true };
    }
    note(`${what}: load average ${fmt(load, 2)} ≥ ${QUIET_LOAD}, waiting`);
    await sleep(QUIET_POLL_MS);
  }
}

type Rendered = { dom: number; frame: number };

/**
 * Installed before the page's scripts (plain JS: the bench is typed without the DOM library):
 * resolves `window.__fullRender` at the first animation frame after the DOM shows both job cards
 * with their next runs and last run, and the "Updated" note.
 */
const watchOverview = (jobs: readonly string[]) => `(() => {
  const jobs = ${JSON.stringify(jobs)};
  let done;
  window.__fullRender = new Promise((resolve) => (done = resolve));
  const full = () => {
    for (const job of jobs) {
      const card = document.querySelector('article[data-job="' + job + '"]');
      if (!card || !card.querySelector('.next-runs li') || !card.querySelector('.last-run a')) return false;
    }
    return [...document.querySelectorAll('p.live')].some((p) => p.offsetParent !== null && (p.textContent || '').includes('Updated'));
  };
  const observer = new MutationObserver(() => {
    if (!full()) return;
    observer.disconnect();
    const dom = performance.now();
    requestAnimationFrame(() => done({ dom, frame: performance.now() }));
  });
  observer.observe(document, { childList: true, subtree: true, characterData: true });
})();`;

/** The page's resource timing, from navigation start: the HTML, the last module, the first API request and the last API answer. */
const PAGE_TIMING = `(() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const resources = performance.getEntriesByType('resource');
  const of = (part) => resources.filter((r) => new URL(r.name).pathname.startsWith(part));
  const api = of('/api/');
  return {
    htmlMs: nav.responseEnd,
    modulesMs: Math.max(0, ...of('/console/').filter((r) => /\.(js|css)$/.test(r.name)).map((r) => r.responseEnd)),
    firstApiMs: Math.min(...api.map((r) => r.startTime)),
    lastApiMs: Math.max(...api.map((r) => r.responseEnd)),
  };
})()`;

const withTimeout = <T>(promise: Promise<T>, ms: number, what: string) => {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
};

/** Opens the overview in a fresh context and waits for its full render; resolves with the page (its context still open). */
async function openOverview(browser: Browser, target: Target, onRequest?: (request: Request) => void) {
  const watched = await watchedPage(browser, { viewport: VIEWPORT });
  const { page } = watched;
  const failedResponses: string[] = [];
  page.on('response', (response) => void (response.status() >= 400 && failedResponses.push(`${response.status()} ${new URL(response.url()).pathname}`)));
  if (onRequest) page.on('request', onRequest);
  await page.addInitScript({ content: watchOverview(JOB_QUEUES) });
  const loadAvg = loadavg()[0]!;
  const t0 = performance.now();
  try {
    await page.goto(`${target.base}/`, { waitUntil: 'commit' });
    const marks = await withTimeout(page.evaluate<Rendered>('window.__fullRender'), RENDER_TIMEOUT_MS, 'full render');
    const wallMs = performance.now() - t0;
    return { ...watched, failedResponses, marks, wallMs, loadAvg, error: null };
  } catch (error) {
    const shown = await page.locator('#app').innerText().catch(() => '(no #app)');
    return { ...watched, failedResponses, marks: null, wallMs: Number.NaN, loadAvg, error: `${(error as Error).message}; the page shows: ${shown.replace(/\s+/g, ' ').slice(0, 300)}` };
  }
}

async function timedLoad(browser: Browser, target: Target): Promise<void> {
  const opened = await openOverview(browser, target);
  try {
    target.problems.push(...opened.problems, ...opened.failedResponses);
    if (!opened.marks) {
      target.failures.push(opened.error!);
      note(`${target.size.label}: load failed: ${opened.error}`);
      return;
    }
    const timing = await opened.page.evaluate<{ htmlMs: number; modulesMs: number; firstApiMs: number; lastApiMs: number }>(PAGE_TIMING);
    target.loads.push({ wallMs: opened.wallMs, domMs: opened.marks.dom, frameMs: opened.marks.frame, loadAvg: opened.loadAvg, ...timing });
  } finally {
    await opened.context.close();
  }
}

const kindOf = (path: string, resourceType: string): Kind =>
  resourceType === 'document' ? 'HTML' : path.endsWith('.js') ? 'JS' : path.endsWith('.css') ? 'CSS' : path.startsWith('/api/') ? 'JSON' : 'other';

/** One more load, not timed: every response up to the full render, its wire and decoded size. */
async function measureBytes(browser: Browser, target: Target): Promise<FileBytes[]> {
  const requests: Request[] = [];
  const opened = await openOverview(browser, target, (request) => requests.push(request));
  try {
    if (!opened.marks) throw new Error(`${target.size.label}: the overview did not render for the bytes load: ${opened.error}`);
    // What was asked for by the full render; the next poll is 4 s away.
    const asked = requests.splice(0);
    const files: FileBytes[] = [];
    for (const request of asked) {
      const response = await withTimeout(request.response(), 10_000, `response of ${request.url()}`);
      if (!response) continue;
      await response.finished();
      const sizes = await request.sizes();
      const body = await response.body();
      const path = new URL(request.url()).pathname;
      files.push({ path, kind: kindOf(path, request.resourceType()), encoding: (await response.headerValue('content-encoding')) ?? 'none', wire: sizes.responseHeadersSize + sizes.responseBodySize, body: sizes.responseBodySize, decoded: body.length });
    }
    return files;
  } finally {
    await opened.context.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Screenshots

async function screenshots(browser: Browser, target: Target): Promise<Array<{ file: string; problems: string[] }>> {
  const shots: Array<{ file: string; problems: string[] }> = [];
  await mkdir(join(ROOT, 'docs'), { recursive: true });
  const shoot = async (file: string, hash: string, ready: (page: Page) => Promise<unknown>) => {
    const { page, context, problems } = await watchedPage(browser, { viewport: VIEWPORT });
    try {
      await page.goto(`${target.base}/${hash}`);
      await ready(page);
      await page.locator('p.live', { hasText: 'Updated' }).first().waitFor();
      // Charts draw after their effect; fonts settle.
      await sleep(500);
      await page.screenshot({ path: join(ROOT, file) });
      shots.push({ file, problems: [...problems] });
      note(`saved ${file}`);
    } finally {
      await context.close();
    }
  };
  await shoot('docs/console-overview.png', '', (page) => page.locator('article[data-job] .next-runs li').nth(5).waitFor());
  await shoot('docs/console-run.png', `#/runs/${target.failedRunId}`, (page) => page.locator('#run-title').waitFor());
  await shoot('docs/console-costs.png', '#/costs', async (page) => {
    await page.locator('.chart canvas').nth(1).waitFor({ timeout: 30_000 });
    await page.locator('tr[data-estimate]').first().waitFor({ timeout: 30_000 });
  });
  return shots;
}

// ---------------------------------------------------------------------------------------------
// The other pages, once each at every size: do they load, how long until their data shows

type Visit = { size: string; page: string; ms: number; slowest: string; slowestMs: number; loadAvg: number; problems: string[]; error: string | null };
/** Loads of each page per size; the first is followed by one 4 s refresh. */
const VISITS = sized(1, 3);

const PAGES: Array<{ name: string; hash: (t: Target) => string; ready: (page: Page) => Promise<unknown> }> = [
  {
    name: 'runs (list and charts)',
    hash: () => '#/runs',
    ready: async (page) => {
      await page.locator('table.runs tbody tr').first().waitFor({ timeout: RENDER_TIMEOUT_MS });
      await page.locator('figure.chart').nth(2).waitFor({ timeout: RENDER_TIMEOUT_MS });
    },
  },
  { name: 'run detail', hash: (t) => `#/runs/${t.failedRunId}`, ready: (page) => page.locator('#run-title').waitFor({ timeout: RENDER_TIMEOUT_MS }) },
  { name: 'queue', hash: () => '#/queue', ready: (page) => page.locator('table.queue').waitFor({ timeout: RENDER_TIMEOUT_MS }) },
  { name: 'pipeline', hash: () => '#/pipeline', ready: (page) => page.locator('table.blueprints tbody tr').first().waitFor({ timeout: RENDER_TIMEOUT_MS }) },
  { name: 'costs', hash: () => '#/costs', ready: (page) => page.locator('tr[data-estimate]').first().waitFor({ timeout: RENDER_TIMEOUT_MS }) },
  { name: 'schedule', hash: () => '#/schedule/extract-blueprints', ready: (page) => page.locator('p.live', { hasText: 'Updated' }).first().waitFor({ timeout: RENDER_TIMEOUT_MS }) },
];

/** The slowest API request of the page so far, by its own resource timing. */
const SLOWEST_API = `(() => {
  const api = performance.getEntriesByType('resource').filter((r) => new URL(r.name).pathname.startsWith('/api/'));
  const slowest = api.reduce((a, b) => (b.duration > a.duration ? b : a), { name: '', duration: 0 });
  return { path: slowest.name ? new URL(slowest.name).pathname : '', ms: slowest.duration };
})()`;

/** Each page VISITS times per size, each in a fresh context: goto → its data on screen (locator polling: ±30 ms), its slowest API request, any console error. */
async function visitPages(browser: Browser, targets: Target[]): Promise<Visit[]> {
  const visits: Visit[] = [];
  for (const spec of PAGES) {
    for (let n = 0; n < VISITS; n++) {
      for (const target of targets) {
        const { page, context, problems } = await watchedPage(browser, { viewport: VIEWPORT });
        const failed: string[] = [];
        page.on('response', (response) => void (response.status() >= 400 && failed.push(`${response.status()} ${new URL(response.url()).pathname}`)));
        const loadAvg = loadavg()[0]!;
        const t0 = performance.now();
        let error: string | null = null;
        try {
          await page.goto(`${target.base}/${spec.hash(target)}`, { waitUntil: 'commit' });
          await spec.ready(page);
          await page.locator('p.live', { hasText: 'Updated' }).first().waitFor({ timeout: RENDER_TIMEOUT_MS });
        } catch (caught) {
          const shown = await page.locator('#main').innerText().catch(() => '(no #main)');
          error = `${(caught as Error).message.split('\n')[0]}; the page shows: ${shown.replace(/\s+/g, ' ').slice(0, 200)}`;
        }
        const ms = performance.now() - t0;
        const slowest = await page.evaluate<{ path: string; ms: number }>(SLOWEST_API);
        if (n === 0) {
          // A second poll (4 s) shows whether a refresh fails where the first load did not.
          await sleep(4_500);
          // For a look, not for the docs: every page at every size, in the temp dir.
          if (SCREENSHOTS) await page.screenshot({ path: join(tmpdir(), `console-bench-${target.size.jobLogs}-${spec.name.split(' ')[0]}.png`), fullPage: true }).catch(() => {});
        }
        visits.push({ size: target.size.label, page: spec.name, ms, slowest: slowest.path, slowestMs: slowest.ms, loadAvg, problems: [...problems, ...failed], error });
        await context.close();
      }
    }
  }
  return visits;
}

// ---------------------------------------------------------------------------------------------
// Report

const kb = (bytes: number) => (bytes / 1024).toFixed(1);

function report(targets: Target[], rounds: Round[], visits: Visit[], shots: Array<{ file: string; problems: string[] }>, loadAtStart: number, wallS: number): void {
  const largest = targets.at(-1)!;
  console.log(`### B9. Console render (${targets.map((t) => t.size.label).join(' and ')} \`job_logs\` rows)\n`);
  console.log(
    `${machineLine()} · Chromium ${CHROMIUM_PATH} (headless) · ${QUICK ? '**quick mode: not the figures to quote** · ' : ''}load average ${fmt(loadAtStart, 2)} at the start, ${fmt(loadavg()[0]!, 2)} at the end (2 cores, shared) · wall time ${fmt(wallS, 0)} s\n`,
  );
  for (const t of targets) console.log(`- ${t.size.label}: ${t.size.jobLogs.toLocaleString('en-US')} \`job_logs\` rows over ${HISTORY_DAYS} days; seeded and vacuumed in ${fmt(t.seedS, 0)} s.`);
  console.log(`- ${LOADS} loads per size (after ${WARMUP} untimed), each in a fresh browser context (nothing cached), ${VIEWPORT.width}×${VIEWPORT.height}, in ${ROUNDS} round(s), the sizes alternating load by load. Rounds: ${rounds.map((r, i) => `${i + 1}: load average ${fmt(r.loadBefore, 2)} at the start${r.gaveUp ? ' (**still ≥ 1.5 after 10 minutes of waiting**)' : r.waitedS >= 1 ? ` (after waiting ${fmt(r.waitedS, 0)} s)` : ''}, ${fmt(r.loadAfter, 2)} at the end`).join('; ')}.\n`);

  const loadRange = (loads: Load[]) => `${fmt(Math.min(...loads.map((l) => l.loadAvg)), 2)}–${fmt(Math.max(...loads.map((l) => l.loadAvg)), 2)}`;
  console.log('Time to the first full render (`page.goto` → both job cards with next runs and last run, and "Updated", painted):\n');
  console.log(markdownTable(
    ['database', 'loads', 'p50 ms', 'p95 ms', 'max ms', 'failed', 'load average during the loads', `p95 ≤ ${TARGET_P95_MS} ms`],
    targets.map((t) => {
      const wall = t.loads.map((l) => l.wallMs);
      return [`${t.size.label} \`job_logs\``, String(t.loads.length), fmt(percentile(wall, 50), 0), fmt(percentile(wall, 95), 0), fmt(max(wall), 0), String(t.failures.length), t.loads.length ? loadRange(t.loads) : '—', percentile(wall, 95) <= TARGET_P95_MS && t.failures.length === 0 ? 'met' : '**missed**'];
    }),
  ));
  if (targets.length > 1) {
    const [a, b] = [targets[0]!, largest].map((t) => t.loads.map((l) => l.wallMs));
    console.log(`\n${largest.size.label} / ${targets[0]!.size.label}: p50 ${ratio(percentile(b!, 50), percentile(a!, 50))}, p95 ${ratio(percentile(b!, 95), percentile(a!, 95))}, max ${ratio(max(b!), max(a!))}.`);
  }
  console.log('\nWhere the time goes (medians; the page\'s own clock, from navigation start):\n');
  console.log(markdownTable(
    ['database', 'HTML received', 'modules received (last)', 'first API request', 'last API answer', 'DOM complete', 'painted (frame)', 'goto → seen by the bench'],
    targets.map((t) => {
      const m = (key: keyof Load) => fmt(median(t.loads.map((l) => l[key])), 0);
      return [t.size.label, m('htmlMs'), m('modulesMs'), m('firstApiMs'), m('lastApiMs'), m('domMs'), m('frameMs'), m('wallMs')];
    }),
  ));
  console.log('\nPer round (p50 / p95 / max ms):\n');
  const perRound = Math.ceil(LOADS / ROUNDS);
  console.log(markdownTable(['round', ...targets.map((t) => t.size.label)], rounds.map((_, r) => [String(r + 1), ...targets.map((t) => {
    const wall = t.loads.slice(r * perRound, (r + 1) * perRound).map((l) => l.wallMs);
    return `${fmt(percentile(wall, 50), 0)} / ${fmt(percentile(wall, 95), 0)} / ${fmt(max(wall), 0)}`;
  })])));

  console.log('\nBytes of one load of the overview, up to its full render (wire: headers + body as sent; body: as sent, gzip where compressed; decoded: after decompression):\n');
  const rows: string[][] = [];
  for (const t of targets) {
    for (const kind of [...KINDS, 'all'] as const) {
      const files = t.bytes.filter((f) => kind === 'all' || f.kind === kind);
      if (files.length === 0) continue;
      const sum = (key: 'wire' | 'body' | 'decoded') => files.reduce((s, f) => s + f[key], 0);
      const encodings = [...new Set(files.map((f) => f.encoding))].join(', ');
      rows.push([t.size.label, kind === 'all' ? '**all**' : kind, String(files.length), kb(sum('wire')), kb(sum('body')), kb(sum('decoded')), encodings]);
    }
  }
  console.log(markdownTable(['database', 'kind', 'files', 'wire KB', 'body KB', 'decoded KB', 'encoding'], rows));
  const jsCss = largest.bytes.filter((f) => f.kind === 'JS' || f.kind === 'CSS');
  const jsCssBody = jsCss.reduce((s, f) => s + f.body, 0);
  console.log(`\nJS + CSS (${largest.size.label}): ${jsCss.length} files, ${kb(jsCssBody)} KB as sent (body), ${kb(jsCss.reduce((s, f) => s + f.wire, 0))} KB with headers, ${kb(jsCss.reduce((s, f) => s + f.decoded, 0))} KB decoded. Target ≤ ${kb(TARGET_JS_CSS_BYTES)} KB gzipped: **${jsCssBody <= TARGET_JS_CSS_BYTES ? 'met' : 'missed'}**.\n`);
  console.log(`Largest files (${largest.size.label}, by decoded size):\n`);
  console.log(markdownTable(['file', 'kind', 'encoding', 'body KB', 'decoded KB'], [...largest.bytes].sort((a, b) => b.decoded - a.decoded).slice(0, 10).map((f) => [`\`${f.path}\``, f.kind, f.encoding, kb(f.body), kb(f.decoded)])));
  console.log(`\nEvery request of the load: ${largest.bytes.map((f) => `\`${f.path}\``).join(', ')}.\n`);

  console.log(`The other pages, ${VISITS} load(s) each per size in fresh contexts (goto → their data on screen, polled by locators, ±30 ms; the first load followed by one 4 s refresh); load average ${fmt(Math.min(...visits.map((v) => v.loadAvg)), 2)}–${fmt(Math.max(...visits.map((v) => v.loadAvg)), 2)}:\n`);
  console.log(markdownTable(['page', ...targets.map((t) => `${t.size.label}: ms (${VISITS > 1 ? 'median, max' : 'one load'})`), ...targets.map((t) => `${t.size.label}: slowest API request (the first load's), ms (median)`), 'console errors / failed requests / did not load'], PAGES.map((spec) => {
    const of = visits.filter((v) => v.page === spec.name);
    const bySize = (t: Target) => of.filter((v) => v.size === t.size.label);
    const trouble = of.flatMap((v) => [...(v.error ? [`${v.size}: ${v.error}`] : []), ...[...new Set(v.problems)].map((p) => `${v.size}: ${p.slice(0, 160)}`)]);
    return [
      spec.name,
      ...targets.map((t) => (VISITS > 1 ? `${fmt(median(bySize(t).map((v) => v.ms)), 0)}, ${fmt(max(bySize(t).map((v) => v.ms)), 0)}` : fmt(bySize(t)[0]?.ms ?? Number.NaN, 0))),
      ...targets.map((t) => `\`${bySize(t)[0]?.slowest ?? ''}\` ${fmt(median(bySize(t).map((v) => v.slowestMs)), 0)}`),
      trouble.length ? [...new Set(trouble)].map((x) => `\`${x}\``).join('; ') : 'none',
    ];
  })));
  console.log('');

  const wall = largest.loads.map((l) => l.wallMs);
  console.log(`- Target p95 ≤ ${TARGET_P95_MS} ms at ${largest.size.label}: **${percentile(wall, 95) <= TARGET_P95_MS && largest.failures.length === 0 ? 'met' : 'missed'}** (${fmt(percentile(wall, 95), 0)} ms).`);
  console.log(`- Target JS + CSS ≤ 200 KB gzipped: **${jsCssBody <= TARGET_JS_CSS_BYTES ? 'met' : 'missed'}** (${kb(jsCssBody)} KB).`);
  for (const t of targets) {
    const distinct = [...new Set(t.problems)];
    console.log(`- ${t.size.label}: ${t.failures.length ? `**${t.failures.length} load(s) did not render**: ${[...new Set(t.failures)].join('; ')}; ` : 'every load rendered; '}${distinct.length ? `**console errors or failed requests** (${t.problems.length}): ${distinct.map((p) => `\`${p.slice(0, 200)}\``).join('; ')}` : 'no console error, no failed request'}.`);
  }
  for (const shot of shots) console.log(`- Saved \`${shot.file}\`${shot.problems.length ? ` (console: ${shot.problems.map((p) => `\`${p.slice(0, 200)}\``).join('; ')})` : ''}.`);
}

// ---------------------------------------------------------------------------------------------
// Last, so that every constant above is initialised when it runs.

await main(async () => {
  if (!hasChromium) throw new Error(`no Chromium at ${CHROMIUM_PATH}: set CHROMIUM_PATH or apt-get install -y chromium`);
  const started = performance.now();
  const loadAtStart = loadavg()[0]!;
  const postgres = await startPostgres('console-render');
  const targets: Target[] = [];
  for (const size of SIZES) targets.push(await prepare(await postgres.createDatabase(`bench_console_${size.jobLogs}`), size));

  const browser = await launchChromium();
  onCleanup(() => browser.close());
  // Untimed: the service reads its console files on first request. Their console errors still count.
  for (const target of targets) {
    for (let i = 0; i < WARMUP; i++) await timedLoad(browser, target);
    target.loads.splice(0);
    target.failures.splice(0);
  }

  const rounds: Round[] = [];
  const perRound = Math.ceil(LOADS / ROUNDS);
  for (let r = 0; r < ROUNDS; r++) {
    const quiet = await waitForQuiet(`round ${r + 1} of ${ROUNDS}`);
    for (let i = 0; i < perRound && targets[0]!.loads.length + targets[0]!.failures.length < LOADS; i++) {
      for (const target of (r * perRound + i) % 2 ? [...targets].reverse() : targets) await timedLoad(browser, target);
    }
    rounds.push({ loadBefore: quiet.load, waitedS: quiet.waitedS, gaveUp: quiet.gaveUp, loadAfter: loadavg()[0]! });
    note(`round ${r + 1}: ${targets.map((t) => `${t.size.label} p50 ${fmt(median(t.loads.slice(-perRound).map((l) => l.wallMs)), 0)} ms`).join(', ')}`);
  }
  for (const target of targets) target.bytes = await measureBytes(browser, target);
  await waitForQuiet('the other pages');
  const visits = await visitPages(browser, targets);
  const shots = SCREENSHOTS ? await screenshots(browser, targets.at(-1)!) : [];
  report(targets, rounds, visits, shots, loadAtStart, (performance.now() - started) / 1000);
});
