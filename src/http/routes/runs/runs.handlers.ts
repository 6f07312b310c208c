import type { RouteHandler } from '@hono/zod-openapi';
import { withDescription } from '../../../boss/cron-words.ts';
import { createRunRequests } from '../../../boss/run-requests.ts';
import { countRuns, latestRun, latestRuns, listRuns, runById } from '../../../db/job-logs.ts';
import type { JobPayload } from '../../../jobs/job.ts';
import { budgetsOf } from '../../../jobs/budget-status.ts';
import { schedulesWithSpend } from '../../../db/llm-spend.ts';
import type { AppDeps } from '../../app.ts';
import { knownJobOf } from '../../known-job.ts';
import { negotiateLanguage } from '../../lib/language.ts';
import type * as routes from './runs.routes.ts';

export function runHandlers(deps: AppDeps) {
  const { db, registry } = deps;
  const knownJob = knownJobOf(registry);
  const runRequests = createRunRequests(deps);

  const run: RouteHandler<typeof routes.run> = async (c) => {
    const name = knownJob(c.req.valid('param').jobName);
    const payload: JobPayload = { trigger: 'manual' };
    const { jobId, replayed } = await runRequests.send(name, payload, c.req.valid('header')['idempotency-key']);
    // The queue policy allows one waiting run per job; point at the one already waiting.
    if (!jobId) return c.json({ error: `job ${name} already has a run waiting to start`, jobName: name, jobId: await runRequests.waiting(name) }, 409);
    if (replayed) return c.json({ message: `Job ${name} was already enqueued with this Idempotency-Key`, jobName: name, jobId, replayed: true as const }, 202);
    return c.json({ message: `Job ${name} enqueued`, jobName: name, jobId }, 202);
  };

  const list: RouteHandler<typeof routes.list> = async (c) => {
    const { jobName, status, trigger, before, limit, offset = 0 } = c.req.valid('query');
    const rows = await listRuns(db, { jobName: jobName === undefined ? undefined : knownJob(jobName), status, trigger, before, limit, offset });
    if (!rows) return c.json({ error: `before: no log with id ${before}` }, 404);
    return c.json(rows, 200);
  };

  const get: RouteHandler<typeof routes.get> = async (c) => {
    const { id } = c.req.valid('param');
    const row = await runById(db, id);
    if (!row) return c.json({ error: `no run with id ${id}` }, 404);
    return c.json(row, 200);
  };

  const latest: RouteHandler<typeof routes.latest> = async (c) => {
    const name = knownJob(c.req.valid('param').jobName);
    const row = await latestRun(db, name);
    if (!row) return c.json({ error: `job ${name} has not run yet` }, 404);
    return c.json(row, 200);
  };

  const status: RouteHandler<typeof routes.status> = async (c) => {
    const [{ schedules, spends }, latestLogs, logCount] = await Promise.all([schedulesWithSpend(db, deps.defaultTimeZone), latestRuns(db, [...registry.keys()]), countRuns(db)]);
    const budgets = budgetsOf(spends, deps.globalDailyBudgetUsd ?? null);
    const language = negotiateLanguage(c);
    return c.json({ budgets, schedules: schedules.map((row) => withDescription(row, language)), latestLogs, totalLogs: logCount.total, totalLogsEstimated: logCount.estimated }, 200);
  };

  return { run, list, get, latest, status };
}
