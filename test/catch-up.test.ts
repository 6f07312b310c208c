import { describe, expect, it } from 'vitest';
import { CATCH_UP_AFTER_MS } from '../src/boss/cron-occurrence.ts';
import { createLogger } from '../src/logger.ts';
import { createDstGapFiller } from '../src/boss/dst-gaps.ts';
import type { JobLogRow } from '../src/db/schema.ts';
import { call } from './support/http.ts';
import { createTestDatabase } from './support/postgres.ts';
import { eventually, startTestService, type TestService } from './support/service.ts';

/**
 * Real downtime across an occurrence: the service is stopped before a schedule's minute comes and
 * started again once pg-boss's due window for it has passed. `missed_policy: once` must then run
 * it exactly once, its log naming the missed occurrence; `skip` must not run it at all.
 */

const JOB = 'extract-blueprints';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const runsOf = async (t: TestService): Promise<JobLogRow[]> => (await call(t, `/api/jobs/logs?jobName=${JOB}&limit=100`)).body;

/** Stops a fresh service before `occurrence`, waits past the catch-up threshold, starts it again. */
async function downtimeAcross(policy: 'once' | 'skip', occurrence: Date) {
  const database = await createTestDatabase();
  const first = await startTestService({}, { database });
  const cron = `${occurrence.getUTCMinutes()} ${occurrence.getUTCHours()} * * *`;
  const put = await call(first, `/api/jobs/schedules/${JOB}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ cron_expression: cron, timezone: 'UTC', missed_policy: policy }) });
  expect(put.status, JSON.stringify(put.body)).toBe(200);
  // pg-boss's cron pass runs every second here, so it has recorded passes before the stop.
  await sleep(2_000);
  await first.stop();
  expect(Date.now(), 'the service stopped before the occurrence').toBeLessThan(occurrence.getTime());
  await sleep(occurrence.getTime() + CATCH_UP_AFTER_MS + 5_000 - Date.now());
  const second = await startTestService({}, { database, llm: first.llm });
  return { second, database, llm: first.llm };
}

describe('missed occurrences after real downtime', () => {
  it('missed_policy once runs the missed occurrence exactly once, as a catch-up of it; skip runs nothing', async () => {
    // The next whole minute at least 15 s away: the first services start, take the edit and stop before it.
    const occurrence = new Date(Math.ceil((Date.now() + 15_000) / 60_000) * 60_000);
    const [once, skip] = await Promise.all([downtimeAcross('once', occurrence), downtimeAcross('skip', occurrence)]);
    try {
      const [run] = await eventually(async () => {
        const runs = (await runsOf(once.second)).filter((r) => r.status !== 'STARTED');
        return runs.length > 0 && runs;
      }, { timeoutMs: 30_000 });
      expect(run!.metadata).toMatchObject({ trigger: 'cron', occurrence: occurrence.toISOString(), catch_up: true });
      expect(once.second.logs.some((line) => String(line.msg).includes(`catch-up run for the missed ${occurrence.toISOString()} occurrence`))).toBe(true);

      // Both have had the same time since restart; a second run or any run of `skip` would show by now.
      await sleep(5_000);
      expect(await runsOf(once.second)).toHaveLength(1);
      expect(await runsOf(skip.second)).toEqual([]);
    } finally {
      for (const { second, database, llm } of [once, skip]) {
        await second.stop();
        await database.drop();
        await llm.close().catch(() => {});
      }
    }
  }, 240_000);
});

describe('the DST gap filler on a real pg-boss', () => {
  it('sends the run a spring-forward change shifts (pg-boss would not), once across instances; it runs with its occurrence in the log', async () => {
    const t = await startTestService();
    try {
      const put = await call(t, `/api/jobs/schedules/${JOB}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ cron_expression: '30 2 * * *', timezone: 'America/New_York' }) });
      expect(put.status).toBe(200);
      const logger = createLogger('silent');
      // Two instances' fillers looking at the same moment, 20 s after 03:30 EDT on 2027-03-14.
      const now = new Date('2027-03-14T07:30:20Z');
      const first = await createDstGapFiller({ boss: t.service.boss, logger }).fill(now);
      const second = await createDstGapFiller({ boss: t.service.boss, logger }).fill(now);
      expect(first).toHaveLength(1);
      expect(second).toEqual([]);
      // Any other moment of an ordinary day sends nothing.
      expect(await createDstGapFiller({ boss: t.service.boss, logger }).fill(new Date('2027-03-15T06:30:20Z'))).toEqual([]);

      const log = await eventually(async () => (await runsOf(t)).find((r) => r.job_id === first[0] && r.status !== 'STARTED'));
      expect(log.status).toBe('COMPLETED');
      expect(log.metadata).toMatchObject({ trigger: 'cron', occurrence: '2027-03-14T07:30:00.000Z' });
      expect(log.metadata.catch_up).toBeUndefined();
    } finally {
      await t.stop();
    }
  });
});
