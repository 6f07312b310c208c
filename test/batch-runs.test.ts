import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobDefinition } from '../src/jobs/job.ts';
import { createRegistry } from '../src/jobs/registry.ts';
import type { Json } from './support/http.ts';
import { eventually, startTestService, type TestService } from './support/service.ts';

/**
 * A job with `worker.batchSize` > 1 (many short runs): each run still gets a job_logs row of its own,
 * a failing run fails alone and is retried, and the batch's runs go side by side.
 */

const JOB = 'batch-probe';
const RUNS = 30;

describe('runs fetched in batches', () => {
  let t: TestService;
  let calls = 0;
  let active = 0;
  let maxActive = 0;

  const job: JobDefinition = {
    name: JOB,
    description: 'short runs fetched ten at a time',
    defaultCron: '0 0 1 1 *',
    queue: { policy: 'standard', retryLimit: 1, retryDelay: 0 },
    worker: { batchSize: 10 },
    async handler() {
      calls += 1;
      const call = calls;
      active += 1;
      maxActive = Math.max(maxActive, active);
      try {
        await new Promise((resolve) => setTimeout(resolve, 20));
        // The fifth run to start fails once; pg-boss retries it.
        if (call === 5) throw new Error('probe failure on call 5');
        return { itemsProcessed: 1, itemsFailed: 0 };
      } finally {
        active -= 1;
      }
    },
  };

  beforeAll(async () => {
    t = await startTestService({}, { registry: createRegistry([job]) });
  });
  afterAll(() => t?.stop());

  it('logs every run on its own row, fails and retries only the run that failed, and runs a batch side by side', async () => {
    const jobIds: string[] = [];
    for (let i = 0; i < RUNS; i++) {
      const res = await t.http(`/api/jobs/run/${JOB}`, { method: 'POST' });
      expect(res.status).toBe(202);
      jobIds.push(((await res.json()) as Json).jobId);
    }

    const logs = await eventually(async () => {
      const { rows } = await t.service.database.pool.query(`select * from job_logs where job_name = $1 order by id`, [JOB]);
      return rows.filter((r) => r.status === 'COMPLETED').length === RUNS && rows.every((r) => r.status !== 'STARTED') ? rows : undefined;
    });

    // 30 runs completed, one per job; the failed attempt has its own FAILED row, then a second attempt.
    const failed = logs.filter((r) => r.status === 'FAILED');
    expect(failed).toHaveLength(1);
    expect(failed[0].error_message).toBe('probe failure on call 5');
    expect(failed[0].metadata).toMatchObject({ attempt: 1, will_retry: true, trigger: 'manual' });
    const completed = logs.filter((r) => r.status === 'COMPLETED');
    expect(new Set(completed.map((r) => r.metadata.job_id))).toEqual(new Set(jobIds));
    expect(completed.find((r) => r.metadata.job_id === failed[0].metadata.job_id)?.metadata.attempt).toBe(2);
    expect(completed.every((r) => r.items_processed === 1 && r.ended_at !== null)).toBe(true);
    // A job that never asks for the model client logs its duration and no LLM usage.
    expect(logs.every((r) => typeof r.metadata.duration_ms === 'number' && !('llm' in r.metadata))).toBe(true);
    expect(calls).toBe(RUNS + 1);

    // pg-boss agrees: every job completed, none left failed.
    const states = await Promise.all(jobIds.map(async (id) => (await t.service.boss.findJobs(JOB, { id }))[0]?.state));
    expect(states.every((s) => s === 'completed')).toBe(true);

    // The runs of a batch go side by side, and the schedule row knows the job ran.
    expect(maxActive).toBeGreaterThan(1);
    const schedule = (await (await t.http(`/api/jobs/schedules/${JOB}`)).json()) as Json;
    expect(schedule.last_run_at).not.toBeNull();

    // Logs grow with batches, not runs: one info line per batch, the failure on a line of its own.
    const batchLines = t.logs.filter((l) => l.level === 30 && /^\d+ runs of batch-probe: \d+ completed, \d+ failed$/.test(String(l.msg)));
    expect(batchLines.length).toBeGreaterThan(0);
    // A fetch that found a single run logs it the way a one-at-a-time job does.
    const singleRuns = t.logs.filter((l) => l.level === 30 && String(l.msg).startsWith('starting job batch-probe')).length;
    expect(batchLines.reduce((sum, l) => sum + Number(l.runs), 0) + singleRuns).toBe(RUNS + 1);
    expect(singleRuns).toBeLessThan(RUNS / 2);
    expect(t.logs.find((l) => l.level === 50 && l.msg === 'job batch-probe failed: probe failure on call 5 (will retry)')).toMatchObject({ logId: failed[0].id });
  });
});
