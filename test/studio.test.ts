import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { childEnv } from '../testkit/env.ts';
import { freePort } from '../testkit/ports.ts';
import { createTestDatabase } from './support/postgres.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

type Studio = { child: ChildProcess; output: () => { stdout: string; stderr: string }; exited: Promise<number | null> };

/** `node src/cli/studio.ts` as `npm run db:studio` runs it. */
function startStudio(env: Record<string, string>, args: string[]): Studio {
  const child = spawn(process.execPath, ['src/cli/studio.ts', ...args], { cwd: ROOT, env: childEnv(env) });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => ({ stdout, stderr }), exited };
}

async function waitForOutput(studio: Studio, pattern: RegExp, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void studio.exited.then(() => (exited = true));
  while (!pattern.test(studio.output().stdout)) {
    if (exited || Date.now() > deadline) {
      throw new Error(`no ${pattern} (${exited ? 'exited' : 'timed out'}):\n${studio.output().stdout}\n${studio.output().stderr}`);
    }
    await sleep(100);
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/** Runs SQL through Studio's own API, as the hosted UI does. */
async function queryThroughStudio(port: number, sql: string): Promise<unknown> {
  const response = await fetch(`http://127.0.0.1:${port}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'proxy', data: { sql, method: 'all' } }),
  });
  expect(response.status).toBe(200);
  return response.json();
}

/** A fresh embedded data dir, as an operator's first `npm run db:studio` would have. */
async function embeddedEnv(): Promise<{ env: Record<string, string>; pgPort: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'memodrops-studio-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o755); // as root, the server runs as `postgres` and must traverse it
  const pgPort = await freePort();
  return { env: { DATA_DIR: join(dir, 'data'), EMBEDDED_PG_PORT: String(pgPort), LOG_LEVEL: 'info' }, pgPort };
}

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function track(studio: Studio): Studio {
  cleanups.push(() => studio.child.exitCode === null && studio.child.signalCode === null && studio.child.kill('SIGKILL'));
  return studio;
}

describe('npm run db:studio', { timeout: 90_000 }, () => {
  it('serves Studio on the embedded database, prints where, and stops that database on SIGTERM', async () => {
    const { env, pgPort } = await embeddedEnv();
    const port = await freePort();
    const studio = track(startStudio(env, ['--port', String(port)]));
    await waitForOutput(studio, /listening on/);

    const { stdout } = studio.output();
    expect(stdout).toContain(`listening on 127.0.0.1:${port}`);
    expect(stdout).toContain(`https://local.drizzle.studio?port=${port}`);
    expect(stdout).toMatch(/postgres:\/\/postgres:\*{4}@127\.0\.0\.1:\d+\/memodrops/);
    expect(stdout + studio.output().stderr).not.toContain(readFileSync(join(env.DATA_DIR!, 'postgres-password'), 'utf8').trim());
    expect(await queryThroughStudio(port, 'select current_database() as db')).toEqual([{ db: 'memodrops' }]);
    // A data dir the service never started on still shows the service's tables.
    expect(await queryThroughStudio(port, `select count(*)::int as n from job_schedule`)).toEqual([{ n: 0 }]);
    expect(await accepts(pgPort)).toBe(true);

    studio.child.kill('SIGTERM');
    expect(await studio.exited).toBe(0);
    expect(await accepts(port)).toBe(false);
    expect(await accepts(pgPort)).toBe(false);
  });

  it('stops the embedded database when drizzle-kit crashes after starting', async () => {
    const { env, pgPort } = await embeddedEnv();
    const port = await freePort();
    const studio = track(startStudio(env, ['--port', String(port)]));
    await waitForOutput(studio, /listening on/);

    const children = readFileSync(`/proc/${studio.child.pid}/task/${studio.child.pid}/children`, 'utf8').trim().split(/\s+/);
    expect(children).toHaveLength(1);
    process.kill(Number(children[0]), 'SIGKILL');

    expect(await studio.exited).not.toBe(0);
    expect(studio.output().stderr).toContain('drizzle-kit was killed by SIGKILL');
    expect(await accepts(pgPort)).toBe(false);
  });

  it('stops the embedded database and exits non-zero when drizzle-kit fails to start', async () => {
    const { env, pgPort } = await embeddedEnv();
    const studio = track(startStudio(env, ['--port', String(await freePort()), '--config', 'no-such-drizzle.config.ts']));

    expect(await studio.exited).toBe(1);
    expect(studio.output().stderr).toContain('drizzle-kit exited with code 1 before its server was up');
    expect(studio.output().stderr).toContain('embedded PostgreSQL started');
    expect(await accepts(pgPort)).toBe(false);
  });

  it('refuses a Studio port that is already taken, leaving no database running', async () => {
    const { env, pgPort } = await embeddedEnv();
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => taken.close(resolve)));
    const port = (taken.address() as { port: number }).port;

    const studio = track(startStudio(env, [`--port=${port}`]));
    expect(await studio.exited).toBe(2);
    expect(studio.output().stderr).toContain(`cannot listen on 127.0.0.1 port ${port}`);
    expect(studio.output().stderr).toContain('--port N');
    expect(studio.output().stderr).not.toMatch(/^\s+at /m);
    expect(await accepts(pgPort)).toBe(false);
  });

  it('serves Studio on DATABASE_URL and leaves that database alone on SIGINT', async () => {
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    const port = await freePort();
    const studio = track(startStudio({ DATABASE_URL: db.url }, ['--port', String(port)]));
    await waitForOutput(studio, /listening on/);

    const name = new URL(db.url).pathname.slice(1);
    expect(await queryThroughStudio(port, 'select current_database() as db')).toEqual([{ db: name }]);
    expect(studio.output().stdout).not.toContain(new URL(db.url).password);

    studio.child.kill('SIGINT');
    expect(await studio.exited).toBe(0);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.end();
  });
});
