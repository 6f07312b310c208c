import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../src/db/embedded.ts';
import { runMigrations } from '../src/db/migrate.ts';
import { withClient } from '../src/db/with-client.ts';
import { createLogger } from '../src/logger.ts';
import { freePort } from '../testkit/ports.ts';
import { withDatabase } from '../testkit/postgres.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin URL (database `postgres`) of the embedded server the test run shares. */
    pgAdminUrl: string;
  }
}

/** The migrated database every test database is cloned from. */
export const TEMPLATE_DATABASE = 'template_memodrops';

/**
 * Starts one embedded PostgreSQL for the whole run, migrates a template database once, and hands
 * the admin URL to the tests; each test file clones the template (see test/support/postgres.ts).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dataDir = await mkdtemp(join(tmpdir(), 'memodrops-test-pg-'));
  // When the tests run as root, the server runs as the `postgres` OS user and must traverse this dir.
  await chmod(dataDir, 0o755);

  let server: Awaited<ReturnType<typeof startEmbeddedPostgres>> | undefined;
  try {
    server = await startEmbeddedPostgres({ dataDir, port: await freePort(), logger: createLogger('warn') });
    const adminUrl = withDatabase(server.url, 'postgres');

    await withClient(adminUrl, (admin) => admin.query(`create database ${admin.escapeIdentifier(TEMPLATE_DATABASE)}`));

    const pool = new pg.Pool({ connectionString: withDatabase(server.url, TEMPLATE_DATABASE), max: 1 });
    try {
      await runMigrations(pool);
    } finally {
      await pool.end();
    }

    project.provide('pgAdminUrl', adminUrl);
  } catch (error) {
    await server?.stop().catch(() => {});
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }

  return async () => {
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
}
