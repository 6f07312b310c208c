import { createDb, type Db } from '../db/client.ts';
import { runMigrations } from '../db/migrate.ts';
import { openDatabase } from '../db/open.ts';
import { parseEnv } from '../env.ts';
import { createLogger } from '../logger.ts';

/**
 * Runs `work` on the service's database (DATABASE_URL, or the embedded one, joined or started for
 * the command and stopped afterwards), migrated first: what a one-shot repair command needs.
 */
export async function withDatabase<T>(work: (db: Db) => Promise<T>): Promise<T> {
  const env = parseEnv();
  const opened = await openDatabase(env, createLogger(env.LOG_LEVEL, process.stderr));
  const database = createDb(opened.url, { max: 2, applicationName: 'memodrops-scheduler:cli' });
  try {
    await runMigrations(database.pool);
    return await work(database.db);
  } finally {
    await database.close();
    await opened.stop();
  }
}
