import { execFile, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { isRoot, postgresUserIds } from '../src/db/embedded.ts';
import { freePort } from './ports.ts';

/**
 * A real PgBouncer (the Debian package's binary) in front of a PostgreSQL, for the tests and
 * bench/pgbouncer.ts. It runs in the foreground as a child of this process, configured from a temp
 * dir, on a free loopback port; every database of the server is reachable through it.
 */

const run = promisify(execFile);

export type PoolMode = 'session' | 'transaction';

export type PgBouncer = {
  port: number;
  mode: PoolMode;
  /** `serverUrl` with PgBouncer's host and port instead (same user, password and database). */
  url(serverUrl: string): string;
  /** What PgBouncer printed so far (its log goes to stderr). */
  log(): string;
  stop(): Promise<void>;
};

export type PgBouncerOptions = {
  /** A URL of the server to put PgBouncer in front of; its user and password go in the auth file. */
  serverUrl: string;
  mode: PoolMode;
  /** Server connections per (database, user) pair. */
  poolSize?: number;
  /** Extra `[pgbouncer]` settings. */
  settings?: Record<string, string | number>;
};

/** The pgbouncer binary, or undefined when it is not installed (Debian puts it in /usr/sbin, off a user's PATH). */
export function findPgBouncer(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/bin'];
  for (const dir of dirs.filter(Boolean)) {
    const candidate = join(dir, 'pgbouncer');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** `pgbouncer --version`'s first line, e.g. "PgBouncer 1.18.0". */
export async function pgBouncerVersion(binary = findPgBouncer()): Promise<string | undefined> {
  if (!binary) return undefined;
  const { stdout } = await run(binary, ['--version']);
  return stdout.split('\n')[0]?.trim();
}

export async function startPgBouncer({ serverUrl, mode, poolSize = 20, settings = {} }: PgBouncerOptions): Promise<PgBouncer> {
  const binary = findPgBouncer();
  if (!binary) throw new Error('pgbouncer is not installed (Debian: apt-get install -y pgbouncer)');
  const server = new URL(serverUrl);
  const user = decodeURIComponent(server.username);
  const password = decodeURIComponent(server.password);
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'memodrops-pgbouncer-'));
  // PgBouncer refuses to run as root; as root we run it as the `postgres` OS user, which must
  // reach the dir and read its files.
  const ids = isRoot() ? await postgresUserIds() : undefined;
  const quote = (s: string) => `"${s.replace(/"/g, '""')}"`;
  const config = {
    listen_addr: '127.0.0.1',
    listen_port: port,
    // No Unix socket: its default directory (/var/run/postgresql) may not exist or be writable.
    unix_socket_dir: '',
    auth_type: 'scram-sha-256',
    auth_file: join(dir, 'userlist.txt'),
    pool_mode: mode,
    default_pool_size: poolSize,
    max_client_conn: 1000,
    admin_users: user,
    // Quiet: only what goes wrong, plus the start line.
    log_connections: 0,
    log_disconnections: 0,
    log_stats: 0,
    ...settings,
  };
  const ini = [
    '[databases]',
    // Any database name the client asks for, on the same server.
    `* = host=${server.hostname} port=${server.port || 5432}`,
    '',
    '[pgbouncer]',
    ...Object.entries(config).map(([key, value]) => `${key} = ${value}`),
    '',
  ].join('\n');
  // The auth file holds the plain password, so PgBouncer can do SCRAM with the server too.
  await writeFile(join(dir, 'userlist.txt'), `${quote(user)} ${quote(password)}\n`, { mode: 0o600 });
  await writeFile(join(dir, 'pgbouncer.ini'), ini, { mode: 0o600 });
  if (ids) {
    await chmod(dir, 0o700);
    for (const file of ['', 'userlist.txt', 'pgbouncer.ini']) await chown(join(dir, file), ids.uid, ids.gid);
  }

  const child = spawn(binary, [join(dir, 'pgbouncer.ini')], { stdio: ['ignore', 'pipe', 'pipe'], ...(ids ?? {}) });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        // SIGINT: PgBouncer's "safe shutdown" closes every connection at once.
        child.kill('SIGINT');
        const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(killer);
      }
      await rm(dir, { recursive: true, force: true });
    })());

  try {
    const deadline = Date.now() + 10_000;
    while (!(await accepts(port))) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`pgbouncer did not start (exit ${child.exitCode}):\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    port,
    mode,
    url(target) {
      const url = new URL(target);
      url.hostname = '127.0.0.1';
      url.port = String(port);
      return url.toString();
    },
    log: () => output,
    stop,
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
