import type { RouteHandler } from '@hono/zod-openapi';
import type { Db } from '../../../db/client.ts';
import { createRunStatsReader } from '../../../db/run-stats-cache.ts';
import type { Registry } from '../../../jobs/registry.ts';
import { knownJobOf } from '../../known-job.ts';
import type * as routes from './stats.routes.ts';

export type StatsRouteDeps = { db: Db; registry: Registry; defaultTimeZone: string };

export function statsHandlers({ db, registry, defaultTimeZone }: StatsRouteDeps) {
  const knownJob = knownJobOf(registry);
  const stats = createRunStatsReader(db);

  const get: RouteHandler<typeof routes.stats> = async (c) => {
    const { from, to, job } = c.req.valid('query');
    const jobName = job === undefined ? undefined : knownJob(job);
    return c.json(await stats.report({ from, to, timeZone: defaultTimeZone, jobName }), 200);
  };

  return { get };
}
