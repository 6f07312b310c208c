import { EnvSchema } from '../src/env.ts';

/** Every variable the service reads (src/env.ts), so a new one can never leak from our environment. */
const SERVICE_VARIABLES = new Set(Object.keys(EnvSchema.in.shape));

/** The OpenAI SDK reads OPENAI_* (organisation, project, log level...) from the environment by itself. */
const SDK_VARIABLES = /^OPENAI_/;

/**
 * What the runner around us set: an enclosing `npm test` or `npm run bench` leaves npm_* (and NODE),
 * which would configure an npm the child runs, and the benchmarks' BENCH_* switches are theirs alone.
 */
const RUNNER_VARIABLES = /^(npm_|NODE$|BENCH_)/;

export type ChildEnvOptions = {
  /** Takes node_modules/.bin off PATH, so `npm start` finds node the way it does from a fresh shell. */
  stripLocalBin?: boolean;
};

/**
 * Environment for a process a test or benchmark starts: ours without anything that would configure
 * the service (every variable src/env.ts reads, and OPENAI_*) or an npm it runs (npm_*, NODE), nor
 * the benchmarks' BENCH_* switches; plus `overrides`.
 */
export function childEnv(overrides: Record<string, string>, { stripLocalBin = false }: ChildEnvOptions = {}): Record<string, string> {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      (entry): entry is [string, string] =>
        entry[1] !== undefined && !SERVICE_VARIABLES.has(entry[0]) && !SDK_VARIABLES.test(entry[0]) && !RUNNER_VARIABLES.test(entry[0]),
    ),
  );
  if (stripLocalBin && env.PATH) env.PATH = env.PATH.split(':').filter((dir) => !dir.includes('node_modules/.bin')).join(':');
  return { ...env, ...overrides };
}
