import { extractBlueprintsJob } from './extract-blueprints.ts';
import { generateDropsJob } from './generate-drops.ts';
import type { JobDefinition } from './job.ts';

/** Every job the service knows. A name here is a pg-boss queue name and a job_schedule key. */
export const JOBS: readonly JobDefinition[] = [extractBlueprintsJob, generateDropsJob];

export type Registry = ReadonlyMap<string, JobDefinition>;

export function createRegistry(jobs: readonly JobDefinition[] = JOBS): Registry {
  return new Map(jobs.map((job) => [job.name, job]));
}
