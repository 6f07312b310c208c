import { Writable } from 'node:stream';
import { createRegistry, JOBS, type Registry } from '../../src/jobs/registry.ts';
import { parseEnv, type Env } from '../../src/env.ts';
import { createLogger } from '../../src/logger.ts';
import { startService, type Service } from '../../src/service.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../../testkit/fake-openai.ts';
import { waitFor } from '../../testkit/poll.ts';
import { createContractCheck } from './http.ts';
import { createTestDatabase, type TestDatabase } from './postgres.ts';

export type TestService = {
  service: Service;
  env: Env;
  database: TestDatabase;
  llm: FakeOpenAI;
  /** Every log line the service wrote, parsed. */
  logs: Array<Record<string, unknown>>;
  /** Real HTTP against the listening server; every response is checked against the API contract (OpenAPI document). */
  http(path: string, init?: RequestInit): Promise<Response>;
  stop(): Promise<void>;
};

/** The service's own jobs with no retries: a run that fails is a dead letter at once. */
export const jobsWithoutRetries = (): Registry => createRegistry(JOBS.map((job) => ({ ...job, queue: { ...job.queue, retryLimit: 0 } })));

export type TestServiceOptions = {
  /** A database to run on instead of a new one; it is not dropped on stop. */
  database?: TestDatabase;
  /** A fake OpenAI server to use instead of a new one; it is not closed on stop. */
  llm?: FakeOpenAI;
  /** The jobs to run, instead of the service's own registry. */
  registry?: Registry;
};

/**
 * The whole service, in-process, on a database of its own and a fake OpenAI server over HTTP.
 * `envOverrides` are environment variables as strings, parsed by the real env schema.
 */
export async function startTestService(envOverrides: Record<string, string | undefined> = {}, options: TestServiceOptions = {}): Promise<TestService> {
  const database = options.database ?? (await createTestDatabase());
  const llm = options.llm ?? (await startFakeOpenAI());
  const env = parseEnv({
    DATABASE_URL: database.url,
    PORT: '0',
    OPENAI_API_KEY: 'sk-test-key-0123456789',
    OPENAI_BASE_URL: llm.url,
    OPENAI_MAX_RETRIES: '0',
    SCHEDULER_TIMEZONE: 'UTC',
    SCHEDULE_SYNC_SECONDS: '1',
    // Tests trigger many runs a minute; the rate limit has tests of its own.
    RUN_RATE_LIMIT_PER_MINUTE: '10000',
    LOG_LEVEL: 'debug',
    ...envOverrides,
  });
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line));
      done();
    },
  });
  const service = await startService(env, createLogger(env.LOG_LEVEL, sink), options.registry);
  const contract = createContractCheck(service.url);
  let stopped: Promise<void> | undefined;
  return {
    service,
    env,
    database,
    llm,
    logs,
    http: async (path, init) => {
      const url = new URL(path, service.url);
      const res = await fetch(url, init);
      // Every response is checked against the service's OpenAPI document (test/support/http.ts).
      await contract.check(init?.method ?? 'GET', url, res);
      return res;
    },
    stop: () =>
      (stopped ??= (async () => {
        await service.stop();
        if (!options.llm) await llm.close();
        if (!options.database) await database.drop();
        if (contract.violations.length) throw new Error(`responses that break the API contract:\n${contract.violations.join('\n')}`);
      })()),
  };
}

/** Polls `check` until it returns a truthy value or the time runs out (see testkit/poll.ts). */
export function eventually<T>(check: () => Promise<T | undefined | null | false>, { timeoutMs = 15_000, intervalMs = 100 } = {}): Promise<T> {
  return waitFor('condition', check, timeoutMs, intervalMs);
}
