import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { createDeadLetters, DeadLetterNotFoundError, RunAlreadyWaitingError } from '../../boss/dead-letters.ts';
import type { SchedulesDeps } from '../../boss/schedules.ts';
import { knownJobOf } from '../known-job.ts';
import { noBody, PaginationSchema, text, UuidParamSchema, validate } from '../validation.ts';

/** /api/jobs/dead-letters: list the runs whose retries are spent, and send one back to its job. */

const ListSchema = PaginationSchema.extend({ jobName: text().optional() });

export function deadLettersRoutes(deps: SchedulesDeps): Hono {
  const app = new Hono();
  const knownJob = knownJobOf(deps.registry);
  const deadLetters = createDeadLetters(deps);

  app.get('/', validate('query', ListSchema), async (c) => {
    const { jobName, limit, offset } = c.req.valid('query');
    const letters = await deadLetters.list(jobName === undefined ? undefined : [knownJob(jobName)]);
    return c.json(letters.slice(offset, offset + limit));
  });

  app.post('/:id/retry', validate('param', UuidParamSchema), noBody(), async (c) => {
    const { id } = c.req.valid('param');
    try {
      const { jobName, jobId } = await deadLetters.retry(id);
      return c.json({ message: `Dead letter ${id} sent back to job ${jobName}`, jobName, id, jobId }, 202);
    } catch (error) {
      if (error instanceof DeadLetterNotFoundError) throw new HTTPException(404, { message: error.message });
      if (error instanceof RunAlreadyWaitingError) return c.json({ error: error.message, jobName: error.jobName, id, jobId: error.waitingJobId }, 409);
      throw error;
    }
  });

  return app;
}
