import { EnvSchema } from '../src/env.ts';

/** Every variable the service reads (src/env.ts), so a new one can never leak from our environment. */
const SERVICE_VARIABLES = new Set(Object.keys(EnvSchema.in.shape));

/** The OpenAI SDK reads OPENAI_* (organisation, project, log level...) from the environment by itself. */
const SDK_VARIABLES = /^OPENAI_/;

export type ChildEnvOptions = {
  /** More variables to leave out (the benchmarks drop their BENCH_* switches and npm's own). */
  drop?: RegExp;
  /** Takes node_modules/.bin off PATH, so `npm start` finds node the way it does from a fresh shell. */
  stripLocalBin?: boolean;
};

/**
 * Environment for a service process a test or benchmark starts: ours without anything that would
 * configure the service (every variable src/env.ts reads, and OPENAI_*), plus `overrides`.
 */
export function childEnv(overrides: Record<string, string>, { drop, stripLocalBin = false }: ChildEnvOptions = {}): Record<string, string> {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      (entry): entry is [string, string] =>
        entry[1] !== undefined && !SERVICE_VARIABLES.has(entry[0]) && !SDK_VARIABLES.test(entry[0]) && !drop?.test(entry[0]),
    ),
  );
  if (stripLocalBin && env.PATH) env.PATH = env.PATH.split(':').filter((dir) => !dir.includes('node_modules/.bin')).join(':');
  return { ...env, ...overrides };
}
