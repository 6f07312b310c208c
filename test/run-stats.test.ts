import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, expectError, type Json } from './support/http.ts';
import { startTestService, type TestService } from './support/service.ts';

/**
 * GET /api/jobs/stats over job_logs rows inserted as the runner writes them: runs per day of
 * SCHEDULER_TIMEZONE (America/Sao_Paulo, UTC-3 all year) and job, percentiles, the range rules.
 */

type Run = { job: string; status: 'COMPLETED' | 'FAILED' | 'STARTED'; at: string; ms?: number; processed?: number; failed?: number };

const RUNS: Run[] = [
  // Local day 2026-03-01 in São Paulo.
  { job: 'extract-blueprints', status: 'COMPLETED', at: '2026-03-01T12:00:00Z', ms: 1_000, processed: 5, failed: 1 },
  { job: 'extract-blueprints', status: 'COMPLETED', at: '2026-03-01T13:00:00Z', ms: 3_250, processed: 3 },
  { job: 'extract-blueprints', status: 'FAILED', at: '2026-03-01T23:30:00Z', ms: 10_000, failed: 2 }, // 20:30 local, same day
  { job: 'extract-blueprints', status: 'COMPLETED', at: '2026-03-02T01:30:00Z', ms: 2_000, processed: 4 }, // 22:30 local: still Mar 1, not Mar 2 as in UTC
  { job: 'generate-drops', status: 'COMPLETED', at: '2026-03-01T15:00:00Z', ms: 40_123.4, processed: 10 },
  // Local day 2026-03-02.
  { job: 'extract-blueprints', status: 'STARTED', at: '2026-03-02T03:30:00Z' }, // 00:30 local, still running
  { job: 'generate-drops', status: 'STARTED', at: '2026-03-02T10:00:00Z' },
  // 2026-03-03 has no runs. Local day 2026-03-04; its last run starts just before `to`.
  { job: 'generate-drops', status: 'FAILED', at: '2026-03-04T12:00:00Z', ms: 700, failed: 3 },
  { job: 'generate-drops', status: 'COMPLETED', at: '2026-03-05T02:59:59Z', ms: 900, processed: 1 },
  // Outside [from, to): 23:59:59 local on Feb 28, and the exclusive end.
  { job: 'extract-blueprints', status: 'COMPLETED', at: '2026-03-01T02:59:59Z', ms: 99_999, processed: 99 },
  { job: 'generate-drops', status: 'COMPLETED', at: '2026-03-05T03:00:00Z', ms: 99_999, processed: 99 },
];
// Local midnights in São Paulo: [Mar 1, Mar 5).
const FROM = '2026-03-01T03:00:00Z';
const TO = '2026-03-05T03:00:00Z';
const RANGE = `from=${FROM}&to=${TO}`;

/** PostgreSQL's percentile_cont: linear interpolation between the closest ranks. */
function percentileCont(values: number[], fraction: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const position = fraction * (sorted.length - 1);
  const below = Math.floor(position);
  const above = Math.ceil(position);
  return sorted[below]! + (sorted[above]! - sorted[below]!) * (position - below);
}

/** What the route should say for these runs, computed from RUNS themselves. */
function expectedDay(day: string, job: string, runs: Run[]): Json {
  const durations = runs.flatMap((r) => (r.ms === undefined ? [] : [r.ms]));
  const ms = (fraction: number) => {
    const value = percentileCont(durations, fraction);
    return value === null ? null : Math.round(value);
  };
  return {
    day,
    job_name: job,
    runs: { completed: runs.filter((r) => r.status === 'COMPLETED').length, failed: runs.filter((r) => r.status === 'FAILED').length, started: runs.filter((r) => r.status === 'STARTED').length },
    duration_ms: { p50: ms(0.5), p95: ms(0.95) },
    items_processed: runs.reduce((sum, r) => sum + (r.processed ?? 0), 0),
    items_failed: runs.reduce((sum, r) => sum + (r.failed ?? 0), 0),
  };
}

const runsOf = (job: string, ...ats: string[]) => RUNS.filter((r) => r.job === job && ats.includes(r.at));

describe('GET /api/jobs/stats', () => {
  let t: TestService;
  const insert = (run: Run) =>
    t.service.database.pool.query(
      `insert into job_logs (job_name, status, started_at, ended_at, items_processed, items_failed, metadata)
       values ($1, $2, $3::timestamptz, $3::timestamptz + make_interval(secs => $4::float8 / 1000), $5, $6, '{"trigger":"cron"}')`,
      [run.job, run.status, run.at, run.ms ?? null, run.processed ?? 0, run.failed ?? 0],
    );

  beforeAll(async () => {
    // ROLE=api: no reaper to close the STARTED rows, no retention to delete old ones, no cron runs.
    t = await startTestService({ SCHEDULER_TIMEZONE: 'America/Sao_Paulo', ROLE: 'api', JOB_LOGS_RETENTION_DAYS: '0' });
    for (const run of RUNS) await insert(run);
  });
  afterAll(() => t?.stop());

  it('counts runs per local day and job, ordered by day then job, with duration percentiles and item sums', async () => {
    const { status, body } = await call(t, `/api/jobs/stats?${RANGE}`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ timezone: 'America/Sao_Paulo', from: '2026-03-01T03:00:00.000Z', to: '2026-03-05T03:00:00.000Z' });
    expect(body.days).toEqual([
      expectedDay('2026-03-01', 'extract-blueprints', runsOf('extract-blueprints', '2026-03-01T12:00:00Z', '2026-03-01T13:00:00Z', '2026-03-01T23:30:00Z', '2026-03-02T01:30:00Z')),
      expectedDay('2026-03-01', 'generate-drops', runsOf('generate-drops', '2026-03-01T15:00:00Z')),
      expectedDay('2026-03-02', 'extract-blueprints', runsOf('extract-blueprints', '2026-03-02T03:30:00Z')),
      expectedDay('2026-03-02', 'generate-drops', runsOf('generate-drops', '2026-03-02T10:00:00Z')),
      expectedDay('2026-03-04', 'generate-drops', runsOf('generate-drops', '2026-03-04T12:00:00Z', '2026-03-05T02:59:59Z')),
    ]);
    // Spelled out once, so a wrong helper cannot hide a wrong route.
    expect(body.days[0]).toMatchObject({ runs: { completed: 3, failed: 1, started: 0 }, items_processed: 12, items_failed: 3 });
    expect(body.days[0].duration_ms.p50).toBe(Math.round((2_000 + 3_250) / 2));
    // A day whose runs are all still running has no durations.
    expect(body.days[2]).toMatchObject({ runs: { completed: 0, failed: 0, started: 1 }, duration_ms: { p50: null, p95: null } });
  });

  it('narrows to one job', async () => {
    const { status, body } = await call(t, `/api/jobs/stats?${RANGE}&job=generate-drops`);
    expect(status).toBe(200);
    expect(body.days.map((d: Json) => [d.day, d.job_name])).toEqual([['2026-03-01', 'generate-drops'], ['2026-03-02', 'generate-drops'], ['2026-03-04', 'generate-drops']]);
  });

  it('answers an empty list for a range without runs', async () => {
    const { status, body } = await call(t, '/api/jobs/stats?from=2025-01-01T00:00:00Z&to=2025-02-01T00:00:00Z');
    expect(status).toBe(200);
    expect(body.days).toEqual([]);
  });

  it('takes instants with an offset, and the range may be exactly 92 days', async () => {
    const offset = await call(t, `/api/jobs/stats?from=${encodeURIComponent('2026-03-01T00:00:00-03:00')}&to=${encodeURIComponent('2026-03-02T00:00:00-03:00')}`);
    expect(offset.body.from).toBe('2026-03-01T03:00:00.000Z');
    expect(offset.body.days.map((d: Json) => d.day)).toEqual(['2026-03-01', '2026-03-01']);
    const longest = await call(t, '/api/jobs/stats?from=2026-01-01T00:00:00Z&to=2026-04-03T00:00:00Z');
    expect(longest.status).toBe(200);
    expect(longest.body.days.length).toBeGreaterThan(0);
  });

  it('defaults to the 14 days before now, or before `to`', async () => {
    const startedAt = new Date(Date.now() - 3_600_000);
    await insert({ job: 'extract-blueprints', status: 'COMPLETED', at: startedAt.toISOString(), ms: 1_500, processed: 2 });
    const { status, body } = await call(t, '/api/jobs/stats');
    expect(status).toBe(200);
    expect(Date.parse(body.to) - Date.parse(body.from)).toBe(14 * 24 * 3_600_000);
    expect(Math.abs(Date.parse(body.to) - Date.now())).toBeLessThan(60_000);
    const today = new Intl.DateTimeFormat('en-CA', { timeZone: 'America/Sao_Paulo' }).format(startedAt);
    expect(body.days).toEqual([{ day: today, job_name: 'extract-blueprints', runs: { completed: 1, failed: 0, started: 0 }, duration_ms: { p50: 1_500, p95: 1_500 }, items_processed: 2, items_failed: 0 }]);

    const before = await call(t, `/api/jobs/stats?to=${TO}`);
    expect(before.body.from).toBe('2026-02-19T03:00:00.000Z');
    expect(before.body.days).toHaveLength(6); // the five above, and Feb 28's run
  });

  it('refuses malformed instants, to not after from, and a range over 92 days, naming the problem', async () => {
    expectError(await call(t, '/api/jobs/stats?from=yesterday'), 400, /from: from must be an ISO 8601 instant/);
    expectError(await call(t, '/api/jobs/stats?to=2026-03-01T00:00:00'), 400, /to: to must be an ISO 8601 instant/);
    expectError(await call(t, `/api/jobs/stats?from=${TO}&to=${FROM}`), 400, /to: .*must be later than from/);
    expectError(await call(t, `/api/jobs/stats?from=${FROM}&to=${FROM}`), 400, /must be later than from/);
    expectError(await call(t, '/api/jobs/stats?from=2099-01-01T00:00:00Z'), 400, /to \(default: now\) must be later than from/);
    expectError(await call(t, '/api/jobs/stats?from=2026-01-01T00:00:00Z&to=2026-04-03T00:00:01Z'), 400, /at most 92 days apart \(they are 93\)/);
    expectError(await call(t, '/api/jobs/stats?from=2020-01-01T00:00:00Z'), 400, /at most 92 days apart/);
    expectError(await call(t, '/api/jobs/stats?job=a%00b'), 400, /job: must not contain NUL/);
  });

  it('answers 404 for an unknown job, naming the known ones', async () => {
    expectError(await call(t, `/api/jobs/stats?${RANGE}&job=send-newsletter`), 404, /unknown job "send-newsletter"; known jobs: extract-blueprints, generate-drops/);
  });

  it('is in the OpenAPI document, behind the bearer token like the other GET routes', async () => {
    const doc = (await call(t, '/openapi.json')).body;
    const op = doc.paths['/api/jobs/stats']?.get;
    expect(op).toMatchObject({ operationId: 'runStats', security: [{ bearerAuth: [] }] });
    expect(Object.keys(op.responses).sort()).toEqual(['200', '400', '401', '404', '500', '503']);
    expect(op.parameters.map((p: Json) => p.name).sort()).toEqual(['from', 'job', 'to']);
    expect(op.description).toMatch(/SCHEDULER_TIMEZONE/);
    expect((await call(t, '/api')).body.links.stats).toBe('/api/jobs/stats');
  });
});
