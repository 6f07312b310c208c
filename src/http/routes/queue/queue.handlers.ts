import type { RouteHandler } from '@hono/zod-openapi';
import { cancelRun, JobEndedError, JobNotFoundError } from '../../../boss/cancel.ts';
import { listQueue } from '../../../boss/queue.ts';
import type { AppDeps } from '../../app.ts';
import { knownJobOf } from '../../known-job.ts';
import type * as routes from './queue.routes.ts';

export function queueHandlers(deps: AppDeps) {
  const { db, registry } = deps;
  const knownJob = knownJobOf(registry);

  const list: RouteHandler<typeof routes.list> = async (c) => {
    const { jobName, state, limit } = c.req.valid('query');
    const jobNames = jobName === undefined ? [...registry.keys()] : [knownJob(jobName)];
    return c.json(await listQueue(db, { jobNames, states: state === undefined ? undefined : [state], limit }), 200);
  };

  const cancel: RouteHandler<typeof routes.cancel> = async (c) => {
    const { jobId } = c.req.valid('param');
    try {
      return c.json(await cancelRun(deps, jobId), 200);
    } catch (error) {
      if (error instanceof JobNotFoundError) return c.json({ error: error.message }, 404);
      if (error instanceof JobEndedError) return c.json({ error: error.message, state: error.state }, 409);
      throw error;
    }
  };

  return { list, cancel };
}
