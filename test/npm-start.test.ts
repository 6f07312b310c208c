import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { childEnv } from '../testkit/env.ts';
import { waitFor } from '../testkit/poll.ts';
import { freePort } from '../testkit/ports.ts';
import { stopLeftoverPostgres } from './support/leftovers.ts';
import { parseJsonLines } from './support/faults.ts';

/**
 * The README's start command under a process supervisor: the supervisor signals the process it
 * started (npm), and the service behind it must stop as it does when signalled directly.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));

type NpmStart = {
  npm: ChildProcess;
  dataDir: string;
  port: number;
  pgPort: number;
  output(): string;
  /** npm's exit code (null when a signal ended it). */
  exited: Promise<number | null>;
};

const started: NpmStart[] = [];

/** `npm start` (the machine's npm, from PATH) in its own process group, as a supervisor runs it. */
async function npmStart(): Promise<NpmStart> {
  const dataDir = await mkdtemp(join(tmpdir(), 'memodrops-npm-start-'));
  // When the tests run as root, the embedded server runs as the `postgres` OS user and must traverse it.
  await chmod(dataDir, 0o755);
  const [port, pgPort] = [await freePort(), await freePort()];
  // The npm_* variables of an enclosing `npm test` would configure this npm too.
  const env = Object.fromEntries(Object.entries(childEnv({})).filter(([key]) => !key.startsWith('npm_')));
  const npm = spawn('npm', ['start'], {
    cwd: ROOT,
    detached: true,
    env: { ...env, DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(pgPort), PORT: String(port), LOG_FORMAT: 'json' },
  });
  let output = '';
  npm.stdout!.on('data', (d) => (output += d));
  npm.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((done) => npm.on('exit', (code) => done(code)));
  const run: NpmStart = { npm, dataDir, port, pgPort, output: () => output, exited };
  started.push(run);
  await waitFor('npm start to log "job scheduler ready"', () => output.includes('job scheduler ready') || npm.exitCode !== null, 90_000, 100);
  if (!output.includes('job scheduler ready')) throw new Error(`npm start exited with ${npm.exitCode} before it was ready:\n${output}`);
  return run;
}

/** Pids of every process (npm, its shell, node, PostgreSQL) that carries this run's DATA_DIR. */
async function processesOf(dataDir: string): Promise<Array<{ pid: number; cmdline: string }>> {
  const found = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = (await readFile(`/proc/${entry}/environ`, 'utf8')).split('\0');
      if (!environ.includes(`DATA_DIR=${dataDir}`)) continue;
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0').join(' ').trim();
      found.push({ pid: Number(entry), cmdline });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

/** The service's own process: node running src/main.ts (not npm, not a shell). */
async function servicePid(dataDir: string): Promise<number> {
  const node = (await processesOf(dataDir)).filter((p) => /(^|\/)node src\/main\.ts$/.test(p.cmdline));
  if (node.length !== 1) throw new Error(`expected one node src/main.ts, found ${JSON.stringify(node)}`);
  return node[0]!.pid;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves to the error code of a TCP connection attempt ('connected' when something accepts it). */
function tcpProbe(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(2_000);
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve('timeout');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

/**
 * What an operator checks after stopping the service: nothing of it is left running. `npmCode` is
 * what a supervisor sees (after Ctrl-C the shell's view of npm does not matter).
 */
async function expectStoppedCleanly(run: NpmStart, nodePid: number, npmCode: number | 'any' = 0): Promise<void> {
  const npmExit = await Promise.race([run.exited, new Promise<'still running'>((r) => setTimeout(() => r('still running'), 40_000))]);
  await waitFor('the node process to exit', () => !isAlive(nodePid), 40_000, 200).catch(() => {});
  const healthz = await fetch(`http://127.0.0.1:${run.port}/healthz`, { signal: AbortSignal.timeout(2_000) }).then(
    (res) => `answered ${res.status}`,
    (error) => String(error.cause?.code ?? error),
  );
  const messages = parseJsonLines(run.output()).map((line) => line.msg);
  expect({
    npmCode: npmCode === 'any' && npmExit !== 'still running' ? 'any' : npmExit,
    nodeAlive: isAlive(nodePid),
    healthz,
    postgres: await tcpProbe(run.pgPort),
    stopped: messages.includes('stopped'),
    embeddedStopped: messages.includes('embedded PostgreSQL stopped'),
    leftovers: await processesOf(run.dataDir),
  }, run.output()).toEqual({
    npmCode,
    nodeAlive: false,
    healthz: 'ECONNREFUSED',
    postgres: 'ECONNREFUSED',
    stopped: true,
    embeddedStopped: true,
    leftovers: [],
  });
  expect(messages).not.toContain(expect.stringMatching(/again: exiting now/));
}

afterEach(async () => {
  for (const run of started.splice(0)) {
    for (const { pid } of await processesOf(run.dataDir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await stopLeftoverPostgres(join(run.dataDir, 'postgres'));
    await rm(run.dataDir, { recursive: true, force: true });
  }
});

describe('npm start under a process supervisor (real npm, node and embedded PostgreSQL)', () => {
  it('SIGTERM to npm alone stops the service gracefully: node exits 0, the port and the embedded database close', async () => {
    const run = await npmStart();
    const nodePid = await servicePid(run.dataDir);
    expect(nodePid).not.toBe(run.npm.pid);

    process.kill(run.npm.pid!, 'SIGTERM'); // npm only, not its process group
    await expectStoppedCleanly(run, nodePid);
    expect(existsSync(join(run.dataDir, 'postgres', 'postmaster.pid'))).toBe(false);
  }, 150_000);

  it('Ctrl-C in a terminal (SIGINT to the whole process group) still stops gracefully, not as a forced second signal', async () => {
    const run = await npmStart();
    const nodePid = await servicePid(run.dataDir);

    // The terminal signals every process of the foreground group, and npm forwards its copy to node.
    process.kill(-run.npm.pid!, 'SIGINT');
    await expectStoppedCleanly(run, nodePid, 'any');
  }, 150_000);
});
