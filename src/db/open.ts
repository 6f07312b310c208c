import type { Env } from '../env.ts';
import type { Logger } from '../logger.ts';
import { startEmbeddedPostgres } from './embedded.ts';

export type OpenedDatabase = { url: string; embedded: boolean; stop(): Promise<void> };

/** DATABASE_URL when given; otherwise the embedded PostgreSQL under DATA_DIR (started or joined). */
export async function openDatabase(env: Pick<Env, 'DATABASE_URL' | 'DATA_DIR' | 'EMBEDDED_PG_PORT'>, logger: Logger): Promise<OpenedDatabase> {
  if (env.DATABASE_URL) return { url: env.DATABASE_URL, embedded: false, stop: async () => {} };
  const embedded = await startEmbeddedPostgres({ dataDir: env.DATA_DIR, port: env.EMBEDDED_PG_PORT, logger });
  return { url: embedded.url, embedded: true, stop: () => embedded.stop() };
}
