import { eq } from 'drizzle-orm';
import { Hono, type MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { z } from 'zod';
import type { JobPayload } from '../../jobs/job.ts';
import { type SchedulesDeps, ScheduleInputError, updateSchedule } from '../../boss/schedules.ts';
import { countRuns, latestRun, latestRuns, listRuns } from '../../db/job-logs.ts';
import { jobSchedule, MISSED_POLICIES } from '../../db/schema.ts';
import { knownJobOf } from '../known-job.ts';
import { createRunRequests, IDEMPOTENCY_KEY } from '../../boss/run-requests.ts';
import { noBody, PaginationSchema, text, validate } from '../validation.ts';

/** The design document's seven control routes, under /api/jobs. */

const SchedulePatchSchema = z
  .strictObject({
    cron_expression: text().max(200, 'cron_expression is too long').optional(),
    is_active: z.boolean('is_active must be true or false').optional(),
    timezone: text().max(100, 'timezone is too long').optional(),
    missed_policy: z.enum(MISSED_POLICIES, `missed_policy must be one of: ${MISSED_POLICIES.join(', ')}`).optional(),
  })
  .refine((patch) => Object.keys(patch).length > 0, 'give at least one of cron_expression, is_active, timezone, missed_policy');

// No length limit: any name that is not a registered job is a 404, whatever its length.
const LogsQuerySchema = PaginationSchema.extend({ jobName: text().optional() });

const pass: MiddlewareHandler = (_c, next) => next();

/** `runLimit`: the rate limit of manual runs (none when absent). */
export function jobsRoutes(deps: SchedulesDeps & { runLimit?: MiddlewareHandler }): Hono {
  const { db, boss, registry } = deps;
  const app = new Hono();
  const knownJob = knownJobOf(registry);
  const runRequests = createRunRequests(deps);
  app.get('/schedules', async (c) => c.json(await db.select().from(jobSchedule).orderBy(jobSchedule.id)));

  app.get('/schedules/:jobName', async (c) => {
    const name = knownJob(c.req.param('jobName'));
    const [row] = await db.select().from(jobSchedule).where(eq(jobSchedule.job_name, name));
    if (!row) throw new HTTPException(404, { message: `no schedule for job "${name}"` });
    return c.json(row);
  });

  app.put('/schedules/:jobName', validate('json', SchedulePatchSchema), async (c) => {
    const name = knownJob(c.req.param('jobName'));
    try {
      return c.json(await updateSchedule(deps, name, c.req.valid('json')));
    } catch (error) {
      if (error instanceof ScheduleInputError) throw new HTTPException(400, { message: error.message });
      throw error;
    }
  });

  app.post('/run/:jobName', deps.runLimit ?? pass, noBody(), async (c) => {
    const name = knownJob(c.req.param('jobName'));
    const key = c.req.header('idempotency-key');
    if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) throw new HTTPException(400, { message: 'Idempotency-Key must be 1 to 200 printable ASCII characters' });
    const payload: JobPayload = { trigger: 'manual' };
    const { jobId, replayed } = await runRequests.send(name, payload, key);
    if (!jobId) {
      // The queue policy allows one waiting run per job; point at the one already waiting.
      const [waiting] = await boss.findJobs(name, { queued: true, limit: 1 });
      return c.json({ error: `job ${name} already has a run waiting to start`, jobName: name, jobId: waiting?.id ?? null }, 409);
    }
    if (replayed) return c.json({ message: `Job ${name} was already enqueued with this Idempotency-Key`, jobName: name, jobId, replayed: true }, 202);
    return c.json({ message: `Job ${name} enqueued`, jobName: name, jobId }, 202);
  });

  app.get('/logs', validate('query', LogsQuerySchema), async (c) => {
    const { jobName, limit, offset } = c.req.valid('query');
    return c.json(await listRuns(db, { jobName: jobName === undefined ? undefined : knownJob(jobName), limit, offset }));
  });

  app.get('/logs/:jobName/latest', async (c) => {
    const name = knownJob(c.req.param('jobName'));
    const row = await latestRun(db, name);
    if (!row) throw new HTTPException(404, { message: `job ${name} has not run yet` });
    return c.json(row);
  });

  app.get('/status', async (c) => {
    const names = [...registry.keys()];
    const [schedules, latest, logCount] = await Promise.all([db.select().from(jobSchedule).orderBy(jobSchedule.id), latestRuns(db, names), countRuns(db)]);
    return c.json({ schedules, latestLogs: latest, totalLogs: logCount.total, totalLogsEstimated: logCount.estimated });
  });

  return app;
}
