import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createTestDatabase } from './support/postgres.ts';
import type { TestDatabase } from './support/postgres.ts';

const TABLES = ['job_schedule', 'job_logs', 'harvest_items', 'exam_blueprints', 'drops', 'drop_cache'];

describe('test database harness', () => {
  let a: TestDatabase;
  let b: TestDatabase;
  let poolA: pg.Pool;
  let poolB: pg.Pool;

  beforeAll(async () => {
    [a, b] = await Promise.all([createTestDatabase(), createTestDatabase()]);
    poolA = new pg.Pool({ connectionString: a.url });
    poolB = new pg.Pool({ connectionString: b.url });
  });
  afterAll(async () => {
    await Promise.all([poolA?.end(), poolB?.end()]);
    await Promise.all([a?.drop(), b?.drop()]);
  });

  it('clones the migrated schema', async () => {
    const { rows } = await poolA.query<{ table_name: string }>(
      `select table_name from information_schema.tables where table_schema = 'public'`,
    );
    expect(rows.map((r) => r.table_name)).toEqual(expect.arrayContaining(TABLES));
  });

  it('keeps test databases isolated', async () => {
    expect(a.url).not.toBe(b.url);
    await poolA.query(`insert into job_logs (job_name, status) values ('isolation-probe', 'STARTED')`);
    const count = async (pool: pg.Pool) =>
      (await pool.query(`select count(*)::int as n from job_logs where job_name = 'isolation-probe'`)).rows[0].n;
    expect(await count(poolA)).toBe(1);
    expect(await count(poolB)).toBe(0);
  });
});
