import type { RouteHandler } from '@hono/zod-openapi';
import { listSchedules, ScheduleInputError, scheduleOf, updateSchedule } from '../../../boss/schedules.ts';
import type { AppDeps } from '../../app.ts';
import { knownJobOf } from '../../known-job.ts';
import type * as routes from './schedules.routes.ts';

export function scheduleHandlers(deps: AppDeps) {
  const knownJob = knownJobOf(deps.registry);

  const list: RouteHandler<typeof routes.list> = async (c) => c.json(await listSchedules(deps.db), 200);

  const get: RouteHandler<typeof routes.get> = async (c) => {
    const name = knownJob(c.req.valid('param').jobName);
    const row = await scheduleOf(deps.db, name);
    if (!row) return c.json({ error: `no schedule for job "${name}"` }, 404);
    return c.json(row, 200);
  };

  const update: RouteHandler<typeof routes.update> = async (c) => {
    const name = knownJob(c.req.valid('param').jobName);
    try {
      return c.json(await updateSchedule(deps, name, c.req.valid('json')), 200);
    } catch (error) {
      if (error instanceof ScheduleInputError) return c.json({ error: error.message }, 400);
      throw error;
    }
  };

  return { list, get, update };
}
