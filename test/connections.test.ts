import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { EnvError, parseEnv } from '../src/env.ts';
import { closedLog, itemKeyOf, trigger } from './support/pipeline.ts';
import { pgAdminUrl } from './support/postgres.ts';
import { eventually, startTestService, type TestService } from './support/service.ts';

/** How many PostgreSQL connections an instance holds: DB_POOL_MAX, PGBOSS_POOL_MAX, the LISTEN connection. README "Connections". */

type Counts = { ours: number; boss: number; listener: number };

/** Counts the instance's connections to `database` every 50 ms, from a connection of the test's own. */
function watchConnections(database: string) {
  const samples: Counts[] = [];
  let stopped = false;
  const client = new pg.Client({ connectionString: pgAdminUrl(), application_name: 'test-connections' });
  const loop = (async () => {
    await client.connect();
    while (!stopped) {
      const { rows } = await client.query<{ app: string; query: string }>(
        `select application_name as app, query from pg_stat_activity where datname = $1 and application_name like 'memodrops-scheduler%'`,
        [database],
      );
      const counts: Counts = { ours: 0, boss: 0, listener: 0 };
      for (const { app, query } of rows) {
        if (app === 'memodrops-scheduler') counts.ours += 1;
        else if (/^LISTEN |pg_listening_channels/.test(query.trim())) counts.listener += 1;
        else counts.boss += 1;
      }
      samples.push(counts);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await client.end();
  })();
  const most = (key: keyof Counts) => Math.max(0, ...samples.map((s) => s[key]));
  return {
    samples,
    async stop() {
      stopped = true;
      await loop;
      return { ours: most('ours'), boss: most('boss'), listener: most('listener'), total: Math.max(0, ...samples.map((s) => s.ours + s.boss + s.listener)) };
    },
  };
}

const databaseOf = (t: TestService) => new URL(t.database.url).pathname.slice(1);

describe('pool sizes', () => {
  let t: TestService | undefined;
  afterEach(async () => {
    await t?.stop();
    t = undefined;
  });

  it('DB_POOL_MAX and PGBOSS_POOL_MAX default to 10 and refuse values below 2, naming the variable', () => {
    expect(parseEnv({})).toMatchObject({ DB_POOL_MAX: 10, PGBOSS_POOL_MAX: 10 });
    expect(parseEnv({ DB_POOL_MAX: '3', PGBOSS_POOL_MAX: '2' })).toMatchObject({ DB_POOL_MAX: 3, PGBOSS_POOL_MAX: 2 });
    expect(() => parseEnv({ DB_POOL_MAX: '1' })).toThrow(/DB_POOL_MAX: must be a whole number from 2 to 1000/);
    expect(() => parseEnv({ PGBOSS_POOL_MAX: 'ten' })).toThrow(/PGBOSS_POOL_MAX: must be a whole number from 2 to 1000/);
    try {
      parseEnv({ DB_POOL_MAX: '0', PGBOSS_POOL_MAX: '1.5' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(EnvError);
      expect((error as EnvError).variables).toEqual(['DB_POOL_MAX', 'PGBOSS_POOL_MAX']);
    }
  });

  it('under a run and HTTP load, an instance stays within DB_POOL_MAX + PGBOSS_POOL_MAX + 1 and still does its work', async () => {
    t = await startTestService({ DB_POOL_MAX: '2', PGBOSS_POOL_MAX: '2', LLM_CONCURRENCY: '8', EXTRACT_BATCH_SIZE: '40' });
    const service = t;
    service.llm.respond(async (req) => {
      await new Promise((resolve) => setTimeout(resolve, 30));
      return { content: { exam_name: `Concurso ${itemKeyOf(req)}`, organization: null, topics: [{ code: 'T1', name: 'Tema', discipline: 'Geral' }] } };
    });
    await service.service.database.pool.query(
      `insert into harvest_items (title, content) select 'Edital ' || i, 'Edital [[item:k' || i || ']]' from generate_series(1, 40) i`,
    );
    const watch = watchConnections(databaseOf(service));
    const jobId = await trigger(service, 'extract-blueprints');
    // 20 clients asking for the status while the run goes: more than the pool's 2 connections.
    let running = true;
    const statuses: number[] = [];
    const clients = Array.from({ length: 20 }, async () => {
      while (running) statuses.push((await service.http('/api/jobs/status')).status);
    });
    const log = await closedLog(service, jobId, { timeoutMs: 30_000 });
    running = false;
    await Promise.all(clients);
    const most = await watch.stop();

    expect(log.status).toBe('COMPLETED');
    expect(log.items_processed).toBe(40);
    expect(statuses.length).toBeGreaterThan(20);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(most.ours).toBeLessThanOrEqual(2);
    expect(most.boss).toBeLessThanOrEqual(2);
    expect(most.listener).toBe(1);
    expect(most.total).toBeLessThanOrEqual(5);
    // The load did press on the cap: the pool was full at some point.
    expect(most.ours).toBe(2);
  });

  it('ROLE=api holds no LISTEN connection (it sends notifications; only workers listen); ROLE=all holds one', async () => {
    t = await startTestService({ ROLE: 'api' });
    const api = watchConnections(databaseOf(t));
    expect((await t.http('/api/jobs/status')).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await api.stop()).listener).toBe(0);
    await t.stop();

    t = await startTestService({ ROLE: 'all' });
    const all = watchConnections(databaseOf(t));
    await eventually(async () => all.samples.some((s) => s.listener === 1));
    expect((await all.stop()).listener).toBe(1);
  });
});
