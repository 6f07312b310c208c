import type { RouteHandler } from '@hono/zod-openapi';
import { createDeadLetters, DeadLetterNotFoundError, RunAlreadyWaitingError } from '../../../boss/dead-letters.ts';
import type { AppDeps } from '../../app.ts';
import { knownJobOf } from '../../known-job.ts';
import type * as routes from './dead-letters.routes.ts';

export function deadLetterHandlers(deps: AppDeps) {
  const knownJob = knownJobOf(deps.registry);
  const deadLetters = createDeadLetters(deps);

  const list: RouteHandler<typeof routes.list> = async (c) => {
    const { jobName, limit, offset } = c.req.valid('query');
    const letters = await deadLetters.list(jobName === undefined ? undefined : [knownJob(jobName)]);
    return c.json(letters.slice(offset, offset + limit), 200);
  };

  const retry: RouteHandler<typeof routes.retry> = async (c) => {
    const { id } = c.req.valid('param');
    try {
      const { jobName, jobId } = await deadLetters.retry(id);
      return c.json({ message: `Dead letter ${id} sent back to job ${jobName}`, jobName, id, jobId }, 202);
    } catch (error) {
      if (error instanceof DeadLetterNotFoundError) return c.json({ error: error.message }, 404);
      if (error instanceof RunAlreadyWaitingError) return c.json({ error: error.message, jobName: error.jobName, id, jobId: error.waitingJobId }, 409);
      throw error;
    }
  };

  return { list, retry };
}
