import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import * as schema from './schema.ts';

export type Db = NodePgDatabase<typeof schema>;

/** A transaction of Db, as `db.transaction(async (tx) => …)` passes it. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

export type Database = { pool: pg.Pool; db: Db; close(): Promise<void> };

/** A pool for our own tables. pg-boss keeps a pool of its own. */
export function createDb(url: string, { max = 10, applicationName = 'memodrops-scheduler', onError = (_error: Error) => {} } = {}): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    application_name: applicationName,
    // Fail fast when the database is away instead of hanging a request or a job.
    connectionTimeoutMillis: 5_000,
  });
  // An idle connection dropped by the server (restart, failover) must not crash the process;
  // the pool replaces it on the next query.
  pool.on('error', onError);
  let closed: Promise<void> | undefined;
  return {
    pool,
    db: drizzle(pool, { schema }),
    close: () => (closed ??= pool.end()),
  };
}
