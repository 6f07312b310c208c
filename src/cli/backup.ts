import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileTimestamp, takeBaseBackup } from '../db/backup.ts';
import { embeddedPaths } from '../db/embedded.ts';
import { openDatabase } from '../db/open.ts';
import { parseEnv } from '../env.ts';
import { CONFIGURATION_EXIT_CODE } from '../errors.ts';
import { createLogger } from '../logger.ts';
import { runCommand } from './command.ts';

/**
 * `npm run db:backup [FILE|DIR]`: a base backup of the embedded PostgreSQL, taken while the service
 * runs (or with the database started for the occasion and stopped again), written to FILE or to
 * DATA_DIR/backups/memodrops-<time>.tar.gz. Prints the archive's path on stdout; logs go to stderr.
 * Exit codes: 0 written, 1 failed or interrupted (nothing left behind), 2 bad usage or configuration.
 */
async function main(argv: string[]): Promise<number> {
  if (argv.length > 1 || argv[0]?.startsWith('-')) {
    console.error('usage: db:backup [FILE | DIRECTORY]   (default: DATA_DIR/backups/memodrops-<time>.tar.gz)');
    return CONFIGURATION_EXIT_CODE;
  }
  const env = parseEnv();
  if (env.DATABASE_URL) {
    console.error(
      'db:backup backs up the embedded PostgreSQL only, and DATABASE_URL is set. Back up that server with your own ' +
        'pg_dump (e.g. pg_dump -Fc "$DATABASE_URL" -f memodrops.dump) or pg_basebackup, of at least its major version.',
    );
    return CONFIGURATION_EXIT_CODE;
  }
  const file = await target(argv[0], env.DATA_DIR);
  const logger = createLogger(env.LOG_LEVEL, process.stderr);

  // Ctrl-C or SIGTERM abandons the backup, but only after the finally below has stopped the database
  // we may have started: the default handlers would exit on the spot and orphan it.
  const interrupted = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => interrupted.abort(new Error(`interrupted by ${signal}`)));
  }
  const opened = await openDatabase(env, logger);
  try {
    const manifest = await takeBaseBackup({ url: opened.url, dataDir: env.DATA_DIR, file, signal: interrupted.signal, logger });
    logger.info({ file, stop_lsn: manifest.stop_lsn, bytes: (await stat(file)).size }, 'backup written');
    console.log(file);
    return 0;
  } finally {
    await opened.stop();
  }
}

/** FILE as given, a default name inside DIRECTORY, or the default name under DATA_DIR/backups. */
async function target(argument: string | undefined, dataDir: string): Promise<string> {
  const name = `memodrops-${fileTimestamp(new Date())}.tar.gz`;
  if (!argument) return join(embeddedPaths(dataDir).root, 'backups', name);
  const path = resolve(argument);
  return (await stat(path).catch(() => null))?.isDirectory() ? join(path, name) : path;
}

await runCommand('db:backup', () => main(process.argv.slice(2)));
