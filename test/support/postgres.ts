import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { inject } from 'vitest';
import { withClient } from '../../src/db/with-client.ts';
import { withDatabase } from '../../testkit/postgres.ts';

const TEMPLATE_DATABASE = 'template_memodrops';

export type TestDatabase = {
  /** Connection URL of a fresh, migrated database of its own. */
  url: string;
  /** Drops the database, ending any connection still open to it. */
  drop(): Promise<void>;
};

/** Admin URL (database `postgres`) of the embedded server started by test/global-setup.ts. */
export function pgAdminUrl(): string {
  return inject('pgAdminUrl');
}

/** Creates a uniquely named database cloned from the migrated template. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = pgAdminUrl();
  const name = `t_${randomBytes(8).toString('hex')}`;

  await withClient(adminUrl, async (client) => {
    const sql = `create database ${client.escapeIdentifier(name)} template ${client.escapeIdentifier(TEMPLATE_DATABASE)}`;
    for (let attempt = 1; ; attempt++) {
      try {
        await client.query(sql);
        return;
      } catch (error) {
        // 55006: another file is cloning the template at this very moment.
        if ((error as { code?: string }).code !== '55006' || attempt >= 20) throw error;
        await sleep(50 * attempt + Math.floor(Math.random() * 50));
      }
    }
  });

  let dropped = false;
  return {
    url: withDatabase(adminUrl, name),
    async drop() {
      if (dropped) return;
      dropped = true;
      await withClient(adminUrl, (client) =>
        client.query(`drop database if exists ${client.escapeIdentifier(name)} with (force)`),
      );
    },
  };
}
