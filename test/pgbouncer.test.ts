import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runMigrations } from '../src/db/migrate.ts';
import { withClient } from '../src/db/with-client.ts';
import { probeListenNotify } from '../src/db/listen-notify.ts';
import { ConfigurationError } from '../src/errors.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../testkit/fake-openai.ts';
import { findPgBouncer, pgBouncerVersion, startPgBouncer, type PgBouncer, type PoolMode } from '../testkit/pgbouncer.ts';
import { closedLog, createItem, itemKeyOf, keyedItem, trigger } from './support/pipeline.ts';
import { createTestDatabase, pgAdminUrl, type TestDatabase } from './support/postgres.ts';
import { eventually, startTestService, type TestService } from './support/service.ts';

/**
 * The service with DATABASE_URL pointing at a real PgBouncer (the Debian package), in session and
 * in transaction pooling mode, in front of the test run's PostgreSQL. README "Behind PgBouncer".
 */

const binary = findPgBouncer();
if (!binary) console.warn('test/pgbouncer.test.ts skipped: pgbouncer is not installed (Debian: apt-get install -y pgbouncer; .ci/run installs it)');

type Json = any;
const MODES: PoolMode[] = ['session', 'transaction'];

/** A fresh database reached through `bouncer`; dropped (directly) afterwards. */
async function databaseBehind(bouncer: PgBouncer): Promise<{ direct: TestDatabase; through: TestDatabase }> {
  const direct = await createTestDatabase();
  return { direct, through: { url: bouncer.url(direct.url), drop: () => direct.drop() } };
}

describe.skipIf(!binary)('behind PgBouncer', () => {
  const bouncers = {} as Record<PoolMode, PgBouncer>;
  const services = {} as Record<PoolMode, TestService>;
  const databases: TestDatabase[] = [];
  let llm: FakeOpenAI;

  beforeAll(async () => {
    console.log(`${await pgBouncerVersion()} (${binary})`);
    llm = await startFakeOpenAI();
    llm.respond((req) =>
      req.responseFormatName === 'exam_blueprint'
        ? { content: { exam_name: `Concurso ${itemKeyOf(req)}`, organization: null, topics: [{ code: 'T1', name: 'Tema', discipline: 'Geral' }] } }
        : { content: { drops: [{ title: 'Crase', content: 'Crase antes de palavras femininas.' }] } },
    );
    // Session mode gives each client connection a server connection of its own for as long as it
    // lasts, so its pool must hold every connection of the service; transaction mode shares a few.
    bouncers.session = await startPgBouncer({ serverUrl: pgAdminUrl(), mode: 'session', poolSize: 40 });
    bouncers.transaction = await startPgBouncer({ serverUrl: pgAdminUrl(), mode: 'transaction', poolSize: 4 });
    const start = async (mode: PoolMode) => {
      const { direct: db, through } = await databaseBehind(bouncers[mode]);
      databases.push(db);
      // Transaction pooling cannot carry LISTEN/NOTIFY (the startup check refuses it, below).
      services[mode] = await startTestService(mode === 'transaction' ? { USE_LISTEN_NOTIFY: 'false' } : {}, { database: through, llm });
    };
    await Promise.all(MODES.map(start));
  });

  afterAll(async () => {
    await Promise.all(Object.values(services).map((t) => t.stop()));
    await Promise.all(databases.map((d) => d.drop()));
    await Promise.all(Object.values(bouncers).map((b) => b.stop()));
    await llm?.close();
  });

  it('transaction pooling with USE_LISTEN_NOTIFY=true: startup refuses, naming the variables to change', async () => {
    const { direct: db, through } = await databaseBehind(bouncers.transaction);
    try {
      const error = await startTestService({}, { database: through, llm }).then(
        (t) => t.stop().then(() => undefined),
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConfigurationError);
      expect((error as ConfigurationError).variables).toEqual(['USE_LISTEN_NOTIFY', 'DATABASE_URL']);
      expect((error as Error).message).toMatch(/never reached a LISTEN/);
      expect((error as Error).message).toMatch(/USE_LISTEN_NOTIFY=false/);
      // The password is never printed.
      expect((error as Error).message).not.toContain(decodeURIComponent(new URL(through.url).password));
      // Refused before anything was created: no migrations ran.
      const tables = await withClient(db.url, async (c) => (await c.query(`select count(*)::int as n from pg_tables where schemaname = 'pgboss'`)).rows[0].n);
      expect(tables).toBe(0);
    } finally {
      await db.drop();
    }
  });

  it('the LISTEN/NOTIFY probe: delivered directly and through session pooling, not through transaction pooling', async () => {
    const db = databases[0]!;
    expect((await probeListenNotify(db.url)).delivered).toBe(true);
    expect((await probeListenNotify(bouncers.session.url(db.url))).delivered).toBe(true);
    expect((await probeListenNotify(bouncers.transaction.url(db.url), 2_000)).delivered).toBe(false);
  });

  describe.each(MODES)('%s pooling', (mode) => {
    it('the service starts and its API answers', async () => {
      const t = services[mode];
      expect((await t.http('/healthz')).status).toBe(200);
      const res = await t.http('/api/jobs/status');
      expect(res.status).toBe(200);
      const status: Json = await res.json();
      expect(status.schedules.map((s: Json) => s.job_name).sort()).toEqual(['extract-blueprints', 'generate-drops']);
      // Nothing pg-boss complained about (a failed listener, a lost connection, a pool running dry).
      expect(t.logs.filter((line) => String(line.msg).startsWith('pg-boss')).map((line) => line.msg)).toEqual([]);
    });

    it('a manual run completes', async () => {
      const t = services[mode];
      const key = `manual-${mode}`;
      const item = await createItem(t, keyedItem(key));
      const jobId = await trigger(t, 'extract-blueprints');
      const log = await closedLog(t, jobId);
      expect(log.status).toBe('COMPLETED');
      expect(log.items_processed).toBe(1);
      const res = await t.http(`/api/harvest-items?status=BLUEPRINT_DONE`);
      const done: Json = await res.json();
      expect(done.map((i: Json) => i.id)).toContain(item.id);

      // An Idempotency-Key request writes its key and creates the job in one transaction.
      const request = () => t.http('/api/jobs/run/generate-drops', { method: 'POST', headers: { 'idempotency-key': `key-${mode}` } });
      const first: Json = await (await request()).json();
      const again: Json = await (await request()).json();
      expect(again).toMatchObject({ jobId: first.jobId, replayed: true });
      expect((await closedLog(t, first.jobId)).status).toBe('COMPLETED');
    });

    it('a schedule edit through the API reaches pg-boss, and so does one made in the table', async () => {
      const t = services[mode];
      const res = await t.http('/api/jobs/schedules/generate-drops', {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ cron_expression: '15 3 * * *' }),
      });
      expect(res.status).toBe(200);
      const cronOf = async (name: string) => (await t.service.boss.getSchedules()).find((s) => s.name === name)?.cron;
      expect(await cronOf('generate-drops')).toBe('15 3 * * *');

      await t.service.database.pool.query(`update job_schedule set cron_expression = '45 4 * * *' where job_name = 'generate-drops'`);
      await eventually(async () => (await cronOf('generate-drops')) === '45 4 * * *');
    });
  });

  it('a cron occurrence starts a run in both modes', { timeout: 100_000 }, async () => {
    // Each waits for the boundary its own edit reports as next_run_at, however close.
    const boundaries = await Promise.all(
      MODES.map(async (mode) => {
        const t = services[mode];
        await createItem(t, keyedItem(`cron-${mode}`));
        const res = await t.http('/api/jobs/schedules/extract-blueprints', {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ cron_expression: '* * * * *' }),
        });
        expect(res.status).toBe(200);
        return new Date(((await res.json()) as Json).next_run_at).getTime();
      }),
    );
    const logs = await Promise.all(
      MODES.map((mode, i) =>
        eventually(
          async () => {
            const { rows } = await services[mode].service.database.pool.query(
              `select * from job_logs where job_name = 'extract-blueprints' and metadata->>'trigger' = 'cron' and status <> 'STARTED' and started_at >= $1`,
              [new Date(boundaries[i]!)],
            );
            return rows[0];
          },
          { timeoutMs: boundaries[i]! - Date.now() + 20_000, intervalMs: 200 },
        ),
      ),
    );
    for (const [i, mode] of MODES.entries()) {
      const log = logs[i];
      console.log(`${mode} pooling: cron run started ${log.started_at.getTime() - boundaries[i]!} ms after the minute`);
      expect(log.status).toBe('COMPLETED');
      expect(log.items_processed).toBe(1);
    }
  });

  it('transaction pooling: instances migrating at once all start, and no advisory lock is left behind', async () => {
    // A fresh, empty database: the migrations really run, from three pools at once.
    const admin = pgAdminUrl();
    const name = `t_${randomBytes(8).toString('hex')}`;
    await withClient(admin, (c) => c.query(`create database ${name}`));
    const url = new URL(admin);
    url.pathname = `/${name}`;
    const pools = Array.from({ length: 3 }, () => new pg.Pool({ connectionString: bouncers.transaction.url(url.toString()), max: 3 }));
    try {
      // Other traffic on the same PgBouncer pool, as other instances would make.
      let busy = true;
      const traffic = Promise.all(
        pools.map(async (pool) => {
          while (busy) await pool.query('select pg_sleep(0.005)');
        }),
      );
      const migrated = Promise.allSettled(pools.map((pool) => runMigrations(pool)));
      const outcome = await Promise.race([migrated, sleep(20_000).then(() => 'stuck' as const)]);
      busy = false;
      await traffic;
      expect(outcome).not.toBe('stuck');
      expect((outcome as PromiseSettledResult<void>[]).map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok'))).toEqual(['ok', 'ok', 'ok']);
      const held = await withClient(url.toString(), async (c) => (await c.query(`select count(*)::int as n from pg_locks where locktype = 'advisory'`)).rows[0].n);
      expect(held).toBe(0);
      const applied = await withClient(url.toString(), async (c) => (await c.query('select count(*)::int as n from drizzle.__drizzle_migrations')).rows[0].n);
      const template = await withClient(databases[0]!.url, async (c) => (await c.query('select count(*)::int as n from drizzle.__drizzle_migrations')).rows[0].n);
      expect(applied).toBe(template);
    } finally {
      await Promise.all(pools.map((pool) => pool.end().catch(() => {})));
      await withClient(admin, (c) => c.query(`drop database if exists ${name} with (force)`));
    }
  });
});
