import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../testkit/poll.ts';
import { freePort } from '../testkit/ports.ts';
import { copyStep, dockerignore, durationMs, parseDockerfile, type Dockerfile } from './support/dockerfile.ts';
import { parseJsonLines } from './support/faults.ts';
import { stopLeftoverPostgres } from './support/leftovers.ts';

/**
 * The image without an engine: the Dockerfile's own COPY, RUN, USER, ENV, HEALTHCHECK and CMD,
 * replayed into a fresh directory standing in for the image's filesystem. A folder the image forgets
 * to copy, or a runtime dependency left in devDependencies, breaks the service started from it.
 */

const run = promisify(execFile);
const CONTEXT = fileURLToPath(new URL('..', import.meta.url));
const dockerfile: Dockerfile = parseDockerfile(await readFile(join(CONTEXT, 'Dockerfile'), 'utf8'));
/** The official node images' `node` user. */
const IMAGE_USERS: Record<string, number> = { node: 1000 };
const API_TOKEN = 'container-test-token-0123456789';

let root: string; // the image's filesystem, rebased
let ids: { uid: number; gid: number } | undefined; // undefined: we are not root and run as ourselves
let service: ChildProcess | undefined;
let pgDir: string | undefined;

/** Environment of a process in the container: the image's ENV, nothing of ours but a PATH to our Node 22. */
function containerEnv(overrides: Record<string, string>): Record<string, string> {
  return { PATH: `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`, ...dockerfile.env, ...overrides };
}

/** The uid/gid USER names, making sure the user has a passwd entry (initdb refuses a uid without one). */
async function imageUser(): Promise<{ uid: number; gid: number } | undefined> {
  const uid = IMAGE_USERS[dockerfile.user ?? ''];
  if (uid === undefined) throw new Error(`USER ${dockerfile.user ?? '(none)'}: the image must run as its non-root node user`);
  if (process.getuid?.() !== 0) return undefined; // already not root
  if (!(await run('getent', ['passwd', String(uid)]).then(() => true, () => false))) {
    console.warn(`container test: creating user ${dockerfile.user} (uid ${uid}), as the node image has it`);
    const group = await run('getent', ['group', String(uid)]).then(() => ['--gid', String(uid)], () => ['--user-group']);
    await run('useradd', ['--uid', String(uid), ...group, '--no-create-home', '--shell', '/usr/sbin/nologin', dockerfile.user!]);
  }
  return { uid, gid: Number((await run('id', ['-g', String(uid)])).stdout.trim()) };
}

/** One RUN line, command by command; anything the test cannot reproduce faithfully is an error. */
async function runStep(command: string): Promise<void> {
  for (const part of command.split('&&').map((c) => c.trim())) {
    const argv = part.split(/\s+/);
    if (argv[0] === 'npm' && argv[1] === 'ci') {
      // The machine's npm, with the image's ENV (NODE_ENV=production) and none of an enclosing npm's settings.
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_'))) as Record<string, string>;
      await run('npm', argv.slice(1), { cwd: join(root, dockerfile.workdir), env: { ...env, ...dockerfile.env }, timeout: 240_000, maxBuffer: 16 << 20 });
    } else if (part === 'npm cache clean --force') {
      // Only shrinks the image; here it would empty the machine's shared npm cache.
    } else if (argv[0] === 'mkdir' && argv[1] === '-p') {
      for (const dir of argv.slice(2)) await mkdir(join(root, dir), { recursive: true });
    } else if (argv[0] === 'chown' && argv.length === 3) {
      if (ids && argv[1] === `${dockerfile.user}:${dockerfile.user}`) await chown(join(root, argv[2]!), ids.uid, ids.gid);
      else if (ids) throw new Error(`RUN ${part}: only chown to the USER is reproduced`);
    } else {
      throw new Error(`RUN ${part}: test/container.test.ts does not know how to reproduce this; teach it`);
    }
  }
}

function tcpRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(false)));
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

beforeAll(async () => {
  ids = await imageUser();
  root = await mkdtemp(join(tmpdir(), 'memodrops-image-'));
  await chmod(root, 0o755); // like /, readable by the image's user; the app stays root-owned, as COPY leaves it
  const ignored = dockerignore(await readFile(join(CONTEXT, '.dockerignore'), 'utf8').catch(() => ''));
  for (const step of dockerfile.steps) {
    if (step.kind === 'COPY') await copyStep(CONTEXT, root, step.sources, step.dest, ignored);
    else await runStep(step.command);
  }
}, 300_000);

afterAll(async () => {
  if (service && service.exitCode === null && service.signalCode === null) service.kill('SIGKILL');
  if (pgDir) await stopLeftoverPostgres(pgDir);
  if (root) await rm(root, { recursive: true, force: true });
});

describe('the Docker image, replayed from the Dockerfile without an engine', () => {
  it('is pinned to the Node that runs the tests (≥ 22.18 runs the TypeScript sources), with exec-form CMD and HEALTHCHECK', () => {
    expect(dockerfile.from).toBe(`node:${process.versions.node}-bookworm-slim`);
    // Shell form would put /bin/sh in front of node, and `docker stop` would never reach the service.
    expect(dockerfile.cmd).toEqual(['node', 'src/main.ts']);
    expect(dockerfile.healthcheck?.cmd[0]).toBe('node');
    expect(dockerfile.expose).toEqual([dockerfile.env.PORT]);
    expect(dockerfile.volumes).toEqual([dockerfile.env.DATA_DIR]);
  });

  it('runs as the non-root node user with HOST=0.0.0.0 and an API_TOKEN, passes its HEALTHCHECK, and stops cleanly on SIGTERM', async () => {
    const [port, pgPort] = [await freePort(), await freePort()];
    // The volume: a directory of the image user's own, as `RUN mkdir -p /data && chown node:node /data` leaves it.
    const volume = dockerfile.env.DATA_DIR ?? '(DATA_DIR unset)';
    const dataDir = join(root, volume);
    expect(existsSync(dataDir), `the Dockerfile creates ${volume}`).toBe(true);
    pgDir = join(dataDir, 'postgres');
    const env = containerEnv({ DATA_DIR: dataDir, PORT: String(port), EMBEDDED_PG_PORT: String(pgPort), API_TOKEN });
    expect(env).toMatchObject({ HOST: '0.0.0.0', NODE_ENV: 'production' });

    const started = Date.now();
    const [command = 'CMD missing', ...args] = dockerfile.cmd ?? [];
    const child = spawn(command, args, { cwd: join(root, dockerfile.workdir), env, ...ids });
    service = child;
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));

    const startPeriod = durationMs(dockerfile.healthcheck!.options['start-period'] ?? '0s');
    await waitFor('the service to be ready', () => output.includes('job scheduler ready') || child.exitCode !== null, Math.max(startPeriod, 60_000), 100);
    expect(output, 'the service did not start').toContain('job scheduler ready');
    expect(Date.now() - started, 'ready within the HEALTHCHECK start period').toBeLessThan(startPeriod);
    expect(output).toContain('"role":"all","auth":true');
    // The database files belong to the image's user: what a bind-mounted host directory must allow.
    if (ids) expect((await stat(pgDir)).uid).toBe(ids.uid);

    // HEALTHCHECK exactly as written, as the image's user, within its own timeout.
    const [hcCommand = 'HEALTHCHECK missing', ...hcArgs] = dockerfile.healthcheck?.cmd ?? [];
    const timeout = durationMs(dockerfile.healthcheck!.options.timeout ?? '30s');
    const health = await run(hcCommand, hcArgs, { env, timeout, ...ids }).then(() => 0, (error) => error.code ?? 'failed');
    expect(health, output).toBe(0);

    // Reachable on the public address it binds, and only with the token.
    const status = (token?: string) =>
      fetch(`http://127.0.0.1:${port}/api/jobs/status`, { headers: token ? { authorization: `Bearer ${token}` } : {} }).then(async (r) => ({ code: r.status, body: (await r.json()) as { schedules: Array<{ job_name: string }> } }));
    expect((await status()).code).toBe(401);
    const ok = await status(API_TOKEN);
    expect(ok.code).toBe(200);
    expect(ok.body.schedules.map((s) => s.job_name).sort()).toEqual(['extract-blueprints', 'generate-drops']);

    child.kill('SIGTERM'); // what `docker stop` sends to the CMD process
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running after 40 s'), 40_000))]);
    expect(code, output).toBe(0);
    expect(parseJsonLines(output).map((l) => l.msg)).toEqual(expect.arrayContaining(['embedded PostgreSQL stopped', 'stopped']));
    expect(await tcpRefused(pgPort)).toBe(true);
    expect(existsSync(join(pgDir, 'postmaster.pid'))).toBe(false);
  }, 120_000);
});
