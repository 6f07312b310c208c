import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from './support/service.ts';

describe('service smoke', () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService();
  });
  afterAll(() => t?.stop());

  it('starts, seeds the two schedules and answers /healthz', async () => {
    const health = await t.http('/healthz');
    expect(health.status).toBe(200);
    const schedules = (await (await t.http("/api/jobs/schedules")).json()) as Array<{ job_name: string }>;
    expect(schedules.map((s: { job_name: string }) => s.job_name)).toEqual(['extract-blueprints', 'generate-drops']);
    const inBoss = await t.service.boss.getSchedules();
    expect(inBoss.map((s) => [s.name, s.cron]).sort()).toEqual([['extract-blueprints', '0 */6 * * *'], ['generate-drops', '0 0 * * *']]);
  });
});
