import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { DatabaseInUseError, restoreBaseBackup, UnusableBackupError } from '../db/restore.ts';
import { parseEnv } from '../env.ts';
import { CONFIGURATION_EXIT_CODE } from '../errors.ts';
import { createLogger } from '../logger.ts';
import { runCommand } from './command.ts';

/**
 * `npm run db:restore FILE`: puts a db:backup archive in place as DATA_DIR/postgres while the service
 * is stopped. Exit codes: 0 restored, 1 refused (the database is running) or failed, 2 bad usage,
 * configuration or archive. Nothing is changed unless it exits 0.
 */
async function main(argv: string[]): Promise<number> {
  if (argv.length !== 1 || argv[0]!.startsWith('-')) {
    console.error('usage: db:restore FILE   (an archive written by db:backup; the service must be stopped)');
    return CONFIGURATION_EXIT_CODE;
  }
  const env = parseEnv();
  if (env.DATABASE_URL) {
    console.error('db:restore restores the embedded PostgreSQL only, and DATABASE_URL is set. Restore that server with the tools of your own backups (pg_restore, or your base backup procedure).');
    return CONFIGURATION_EXIT_CODE;
  }
  const archive = resolve(argv[0]!);
  if (!(await stat(archive).catch(() => null))?.isFile()) {
    console.error(`db:restore: ${archive} is not a file`);
    return CONFIGURATION_EXIT_CODE;
  }
  const logger = createLogger(env.LOG_LEVEL, process.stderr);
  try {
    const { manifest, pgDir, movedAside } = await restoreBaseBackup({ archive, dataDir: env.DATA_DIR, port: env.EMBEDDED_PG_PORT, logger });
    console.log(`restored the backup of ${manifest.created_at} into ${pgDir}`);
    console.log(movedAside ? `the data directory and password it replaced are kept in ${movedAside} (delete it once you are satisfied)` : 'there was no data directory before');
    console.log('start the service as usual (npm start): on its first start PostgreSQL replays the WAL in the backup, then the service runs on the restored data');
    return 0;
  } catch (error) {
    if (error instanceof DatabaseInUseError) {
      console.error(`db:restore refused: ${error.message}. Nothing was changed.`);
      return 1;
    }
    if (error instanceof UnusableBackupError) {
      console.error(`db:restore: ${error.message}. Nothing was changed.`);
      return CONFIGURATION_EXIT_CODE;
    }
    throw error;
  }
}

await runCommand('db:restore', () => main(process.argv.slice(2)));
