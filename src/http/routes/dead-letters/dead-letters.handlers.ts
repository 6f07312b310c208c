import type { RouteHandler } from '@hono/zod-openapi';
import { createDeadLetters, DeadLetterNotFoundError, RunAlreadyWaitingError, type JobSentBack } from '../../../boss/dead-letters.ts';
import type { AppDeps } from '../../app.ts';
import { knownJobOf } from '../../known-job.ts';
import type * as routes from './dead-letters.routes.ts';

export function deadLetterHandlers(deps: AppDeps) {
  const knownJob = knownJobOf(deps.registry);
  const deadLetters = createDeadLetters(deps);

  const list: RouteHandler<typeof routes.list> = async (c) => {
    const { jobName, error, limit, offset } = c.req.valid('query');
    const letters = await deadLetters.list({ jobNames: jobName === undefined ? undefined : [knownJob(jobName)], error });
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

  const retryMatching: RouteHandler<typeof routes.retryMatching> = async (c) => {
    const { jobName, error } = c.req.valid('json') ?? {};
    const jobs = await deadLetters.retryMatching({ jobNames: jobName === undefined ? undefined : [knownJob(jobName)], error });
    const which = [jobName && `of ${jobName}`, error !== undefined && `whose error contains "${error}"`].filter(Boolean).join(' ');
    if (jobs.length === 0) return c.json({ error: `no dead letter${which ? ` ${which}` : ''}` }, 404);
    if (jobs.every((job) => job.sent === null)) return c.json({ error: `nothing was sent back: ${jobs.map((job) => `${job.jobName}: ${job.reason}`).join('; ')}`, jobs }, 409);
    return c.json({ message: jobs.map(describeSentBack).join('; '), jobs }, 202);
  };

  return { list, retry, retryMatching };
}

function describeSentBack(job: JobSentBack): string {
  const letters = (n: number) => `${n} dead letter${n === 1 ? '' : 's'}`;
  if (job.sent === null) return `${job.jobName}: ${letters(job.left.length)} left (${job.reason})`;
  return `${job.jobName}: ${letters(job.settled.length + 1)} sent back as one run${job.jobId ? ` (${job.jobId})` : ''}`;
}
