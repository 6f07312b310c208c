import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pgCtl, startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { createLogger } from '../../src/logger.ts';
import type { FakeReply, FakeRequest } from '../../testkit/fake-openai.ts';
import { freePort } from '../../testkit/ports.ts';
import { itemKeyOf } from './pipeline.ts';
import { startServiceProcess, type RunningService } from '../../testkit/processes.ts';

/** Helpers for fault-injection tests: real service processes, killed and stopped for real. */

// ---------------------------------------------------------------------------------------------
// Service processes

export type ServiceProcess = RunningService & {
  pid: number;
  /** http://127.0.0.1:<port> ('' for ROLE=worker). */
  url: string;
  port: number;
  /** Every JSON log line written so far, parsed. */
  logs(): Array<Record<string, any>>;
  alive(): boolean;
  /** Sends a signal; resolves with the exit code (null when killed by a signal) and how long it took. */
  signal(sig: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number | null; ms: number }>;
};

/**
 * Starts service processes and remembers them, so `killAll()` (in a finally/afterAll) never leaves one
 * behind, whatever the test did.
 */
export class ServiceProcesses {
  private readonly started: ServiceProcess[] = [];

  async start(env: Record<string, string>, timeoutMs = 60_000): Promise<ServiceProcess> {
    const port = env.PORT ? Number(env.PORT) : await freePort();
    const running = await startServiceProcess({ PORT: String(port), ...env }, timeoutMs);
    const { child } = running;
    let exitCode: number | null | undefined;
    running.exited.then((code) => (exitCode = code));
    const proc: ServiceProcess = {
      ...running,
      pid: child.pid!,
      port,
      url: env.ROLE === 'worker' ? '' : `http://127.0.0.1:${port}`,
      logs: () => parseJsonLines(running.output()),
      alive: () => exitCode === undefined && child.exitCode === null && child.signalCode === null,
      async signal(sig, waitMs = 30_000) {
        const started = Date.now();
        child.kill(sig);
        const code = await Promise.race([
          running.exited,
          new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`pid ${child.pid} did not exit within ${waitMs} ms of ${sig}`)), waitMs).unref()),
        ]);
        return { code, ms: Date.now() - started };
      },
    };
    this.started.push(proc);
    return proc;
  }

  /** SIGKILLs every process still running and waits for each to be gone. */
  async killAll(): Promise<void> {
    await Promise.all(
      this.started.splice(0).map(async (proc) => {
        if (!proc.alive()) return;
        proc.child.kill('SIGKILL');
        await proc.exited;
      }),
    );
  }
}

export function parseJsonLines(text: string): Array<Record<string, any>> {
  const lines: Array<Record<string, any>> = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line));
    } catch {
      // a line cut in the middle by a kill
    }
  }
  return lines;
}

/** The environment of a service process on `databaseUrl` talking to the fake LLM at `llmUrl`. */
export function serviceEnv(databaseUrl: string, llmUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    OPENAI_API_KEY: 'sk-test-0123456789',
    OPENAI_BASE_URL: llmUrl,
    OPENAI_MAX_RETRIES: '0',
    SCHEDULER_TIMEZONE: 'UTC',
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
    ...extra,
  };
}

// ---------------------------------------------------------------------------------------------
// HTTP and SQL from the outside

export type TimedResponse = { status: number; body: any; ms: number; contentType: string };

/** A request that never waits longer than `timeoutMs` (a hang is an error naming the URL). */
export async function timedFetch(url: string, init: RequestInit = {}, timeoutMs = 10_000): Promise<TimedResponse> {
  const started = Date.now();
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    throw new Error(`${init.method ?? 'GET'} ${url} failed after ${Date.now() - started} ms: ${(error as Error).message}`, { cause: error });
  }
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: the text is kept
  }
  return { status: res.status, body, ms: Date.now() - started, contentType: res.headers.get('content-type') ?? '' };
}

/** Triggers a manual run through the API; returns the pg-boss job id. */
export async function triggerRun(baseUrl: string, job = 'extract-blueprints'): Promise<string> {
  const res = await timedFetch(`${baseUrl}/api/jobs/run/${job}`, { method: 'POST' });
  if (res.status !== 202) throw new Error(`run of ${job} not accepted: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.jobId;
}

export type Sql = { q<T = any>(text: string, values?: unknown[]): Promise<T[]>; close(): Promise<void> };

/** A small pool of our own on the database the services use. */
export function sqlClient(url: string): Sql {
  const pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 3_000 });
  pool.on('error', () => {}); // the server may be stopped under us on purpose
  return {
    q: async (text, values) => (await pool.query(text, values)).rows,
    close: () => pool.end(),
  };
}

/** Inserts PENDING harvest items carrying `[[item:<key>]]` markers; returns their ids by key. */
export async function addItems(sql: Sql, keys: string[]): Promise<Record<string, number>> {
  const ids: Record<string, number> = {};
  for (const key of keys) {
    const [row] = await sql.q(`insert into harvest_items (title, content) values ($1, $2) returning id`, [`Edital ${key}`, `Edital ${key} [[item:${key}]]`]);
    ids[key] = row.id;
  }
  return ids;
}

/** A valid blueprint for the item a request is about. */
export const blueprintFor = (req: FakeRequest): FakeReply => ({
  content: { exam_name: `Concurso ${itemKeyOf(req) ?? '?'}`, organization: null, topics: [{ code: 'T1', name: 'Tema', discipline: 'Geral' }] },
});

/** How many LLM requests each item got. */
export function requestsPerItem(requests: FakeRequest[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const req of requests) {
    const key = itemKeyOf(req) ?? '?';
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

// ---------------------------------------------------------------------------------------------
// A PostgreSQL of our own, to stop and start under a running service

export type DedicatedPostgres = {
  /** URL of the `memodrops` database. */
  url: string;
  port: number;
  dataDir: string;
  /** `pg_ctl stop -m fast -w`: clients are disconnected, the server is gone when this resolves. */
  stop(): Promise<void>;
  /** Starts the server again on the same data directory and port (the way the service does). */
  start(): Promise<void>;
  /** Stops the server (if running) and removes its data directory. */
  destroy(): Promise<void>;
};

export async function startDedicatedPostgres(): Promise<DedicatedPostgres> {
  const dataDir = await mkdtemp(join(tmpdir(), 'memodrops-faults-pg-'));
  // When the tests run as root, the server runs as the `postgres` OS user and must traverse this dir.
  await chmod(dataDir, 0o755);
  const port = await freePort();
  const logger = createLogger('silent');
  const pgDir = join(dataDir, 'postgres');
  let url: string;
  try {
    url = (await startEmbeddedPostgres({ dataDir, port, logger })).url;
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    url,
    port,
    dataDir,
    stop: () => pgCtl(pgDir, ['stop', '-m', 'fast', '-w', '-t', '30'], { timeoutMs: 60_000 }),
    async start() {
      await startEmbeddedPostgres({ dataDir, port, logger });
    },
    async destroy() {
      await pgCtl(pgDir, ['stop', '-m', 'immediate', '-w', '-t', '30'], { timeoutMs: 60_000 }).catch(() => {}); // already stopped
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
