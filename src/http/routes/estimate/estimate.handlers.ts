import type { RouteHandler } from '@hono/zod-openapi';
import type { Db } from '../../../db/client.ts';
import { estimateJob, NotEstimableError, type EstimateSettings } from '../../../jobs/estimate.ts';
import type { Registry } from '../../../jobs/registry.ts';
import { knownJobOf } from '../../known-job.ts';
import type * as routes from './estimate.routes.ts';

export type EstimateRouteDeps = { db: Db; registry: Registry; estimate: EstimateSettings };

export function estimateHandlers({ db, registry, estimate }: EstimateRouteDeps) {
  const knownJob = knownJobOf(registry);

  const get: RouteHandler<typeof routes.estimate> = async (c) => {
    const name = knownJob(c.req.valid('param').jobName);
    try {
      return c.json(await estimateJob({ db, ...estimate }, name, { all: c.req.valid('query').all === 'true' }), 200);
    } catch (error) {
      if (error instanceof NotEstimableError) return c.json({ error: error.message }, 404);
      throw error;
    }
  };

  return { get };
}
