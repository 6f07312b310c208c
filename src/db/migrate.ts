import { fileURLToPath } from 'node:url';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import type pg from 'pg';

const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../drizzle', import.meta.url));
// Any constant works; it only has to be the same for every instance.
const MIGRATION_LOCK = 1_904_221_019;

/**
 * Applies drizzle-kit's migrations. Instances starting together take turns on an advisory lock,
 * so the second one finds the work done instead of racing the first.
 *
 * The lock is a transaction lock, and the check and the migrations run in that one transaction:
 * behind a PgBouncer in transaction pooling mode a session lock would be taken on one server
 * connection and released (or not) on another, so instances raced anyway and the lock could stay
 * held by an idle server connection. This is drizzle's own migrator (same table, same rule: apply
 * what is newer than the last applied migration), run inside our transaction.
 */
export async function runMigrations(pool: pg.Pool): Promise<void> {
  const migrations = readMigrationFiles({ migrationsFolder: MIGRATIONS_FOLDER });
  const client = await pool.connect();
  let failed = false;
  try {
    await client.query('begin');
    await client.query('select pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query('create schema if not exists drizzle');
    await client.query('create table if not exists drizzle.__drizzle_migrations (id serial primary key, hash text not null, created_at bigint)');
    const { rows } = await client.query<{ created_at: string }>('select created_at from drizzle.__drizzle_migrations order by created_at desc limit 1');
    const last = rows[0] ? Number(rows[0].created_at) : undefined;
    for (const migration of migrations) {
      if (last !== undefined && migration.folderMillis <= last) continue;
      for (const statement of migration.sql) await client.query(statement);
      await client.query('insert into drizzle.__drizzle_migrations (hash, created_at) values ($1, $2)', [migration.hash, migration.folderMillis]);
    }
    await client.query('commit');
  } catch (error) {
    failed = true;
    await client.query('rollback').catch(() => {});
    throw error;
  } finally {
    // A connection whose transaction failed is not handed out again.
    client.release(failed);
  }
}
