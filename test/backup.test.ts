import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { walSegmentRange } from '../src/db/backup.ts';
import { childEnv } from '../testkit/env.ts';
import { freePort } from '../testkit/ports.ts';
import { runScript, startServiceProcess, type RunningService } from '../testkit/processes.ts';

/** What a user of the restored service would see, minus columns the service rewrites at startup. */
async function snapshot(client: pg.Client) {
  const rows = async (sql: string) => (await client.query(sql)).rows;
  return {
    schedules: await rows(`select job_name, cron_expression, timezone, is_active, missed_policy from job_schedule order by job_name`),
    logs: await rows(`select id, job_name, status, items_processed, items_failed, error_message, metadata from job_logs where job_name <> 'probe' order by id`),
    items: await rows(`select id, title, content, status from harvest_items where title not like 'probe %' order by id`),
    blueprints: await rows(`select id, harvest_item_id, exam_name, topics from exam_blueprints order by id`),
    drops: await rows(`select id, blueprint_id, topic_code, title, content, position from drops order by id`),
  };
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/** Runs a script and sends it `signal` as soon as its stderr shows `marker`. */
function interruptWhen(script: string, args: string[], env: Record<string, string>, marker: string, signal: NodeJS.Signals): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, ...args], { env: childEnv(env) });
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (d) => {
      stderr += d;
      if (!sent && stderr.includes(marker)) sent = child.kill(signal);
    });
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

async function connectTo(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

it('names the WAL segments between two, across a log id boundary', () => {
  const sixteenMb = 16 * 1024 * 1024;
  expect(walSegmentRange('000000010000000000000002', '000000010000000000000002', sixteenMb)).toEqual(['000000010000000000000002']);
  expect(walSegmentRange('0000000100000000000000FE', '000000010000000100000001', sixteenMb)).toEqual([
    '0000000100000000000000FE',
    '0000000100000000000000FF',
    '000000010000000100000000',
    '000000010000000100000001',
  ]);
});

it('npm run db:backup with DATABASE_URL refuses (exit 2) and points to pg_dump', async () => {
  const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn('npm', ['run', '--silent', 'db:backup'], { env: childEnv({ DATABASE_URL: 'postgres://u:p@127.0.0.1:1/x' }) });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stderr }));
  });
  expect(result.code).toBe(2);
  expect(result.stderr).toContain('DATABASE_URL');
  expect(result.stderr).toMatch(/pg_dump/);
  expect(result.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
});

describe('db:backup and db:restore of the embedded PostgreSQL (real processes)', () => {
  let dataDir: string;
  let env: Record<string, string>;
  let pgPort: number;
  let apiPort: number;
  let service: RunningService | undefined;
  const api = (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${apiPort}${path}`, init);
  const json = (body: unknown) => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const dbUrl = async () => `postgres://postgres:${encodeURIComponent((await readFile(join(dataDir, 'postgres-password'), 'utf8')).trim())}@127.0.0.1:${pgPort}/memodrops`;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'memodrops-backup-'));
    // Run as root, the server runs as the postgres OS user and must traverse this directory.
    await chmod(dataDir, 0o755);
    pgPort = await freePort();
    apiPort = await freePort();
    env = { DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(pgPort), PORT: String(apiPort) };
  });
  afterAll(async () => {
    if (service && service.child.exitCode === null) {
      service.child.kill('SIGTERM');
      await service.exited;
    }
    await rm(dataDir, { recursive: true, force: true });
  });

  it('backs up while the service runs and writes, refuses to restore under it, and restores exactly the backup', async () => {
    const timings: Record<string, number> = {};
    const time = async <T>(label: string, fn: () => Promise<T>) => {
      const started = Date.now();
      try {
        return await fn();
      } finally {
        timings[label] = Date.now() - started;
      }
    };
    service = await time('first start (initdb)', () => startServiceProcess(env, 120_000));
    let client = await connectTo(await dbUrl());
    const boss = new PgBoss({ connectionString: await dbUrl(), supervise: false, schedule: false, migrate: false });
    boss.on('error', () => {});
    await boss.start();

    // Data of every kind the service keeps: through the API where it has a route, else in SQL.
    expect((await api('/api/jobs/schedules/generate-drops', { method: 'PUT', ...json({ cron_expression: '30 2 * * *', timezone: 'America/Sao_Paulo' }) })).status).toBe(200);
    for (const title of ['Edital TRT 2', 'Edital TRF 3']) {
      expect((await api('/api/harvest-items', { method: 'POST', ...json({ title, content: 'Conteúdo programático: crase' }) })).status).toBe(201);
    }
    await client.query(`insert into job_logs (job_name, status, ended_at, items_processed, metadata) values
      ('extract-blueprints', 'COMPLETED', now(), 1, '{"trigger":"manual"}'), ('generate-drops', 'FAILED', now(), 0, '{"trigger":"cron"}')`);
    const { rows: [blueprint] } = await client.query(`insert into exam_blueprints (harvest_item_id, exam_name, organization, topics, raw_output, model)
      select id, 'TRT 2ª Região', 'FCC', '[{"code":"PORT-01","name":"Crase","discipline":"Português"}]', '{}', 'gpt-4o-mini' from harvest_items order by id limit 1 returning id`);
    await client.query(`insert into drops (blueprint_id, topic_code, title, content, position) values ($1, 'PORT-01', 'Crase I', 'a + a', 1), ($1, 'PORT-01', 'Crase II', 'à', 2)`, [blueprint.id]);
    // A run waiting for later, as pg-boss keeps it.
    const pendingId = await boss.send('generate-drops', { trigger: 'manual' }, { startAfter: 3600 });
    expect(pendingId).toBeTruthy();
    const [pendingBefore] = await boss.findJobs('generate-drops', { id: pendingId! });

    // Writes during the backup: each transaction puts one row in two tables, so a restore that is
    // not a consistent point in time shows as a row in one table without its twin, or a gap.
    const writer = await connectTo(await dbUrl());
    const committed: number[] = [];
    let writing = true;
    const writes = (async () => {
      for (let n = 1; writing; n++) {
        await writer.query('begin');
        await writer.query(`insert into harvest_items (title, content) values ($1, 'probe')`, [`probe ${n}`]);
        await writer.query(`insert into job_logs (job_name, status, metadata) values ('probe', 'COMPLETED', $1)`, [{ n }]);
        await writer.query('commit');
        committed.push(n);
        await sleep(5);
      }
    })();
    while (committed.length < 5) await sleep(10);
    const committedBeforeBackup = committed.length;
    const backup = await time('db:backup while running', () => runScript('src/cli/backup.ts', [], env, 120_000));
    const committedAfterBackup = committed.length;
    writing = false;
    await writes;
    await writer.end();

    expect(backup.code, backup.stderr).toBe(0);
    const file = backup.stdout.trim();
    expect(file).toMatch(new RegExp(`^${dataDir}/backups/memodrops-\\d{4}-\\d\\d-\\d\\dT\\d\\d-\\d\\d-\\d\\dZ\\.tar\\.gz$`));
    expect(existsSync(file)).toBe(true);
    expect(backup.stderr).not.toContain('embedded PostgreSQL started'); // it joined the service's server
    expect(committedAfterBackup).toBeGreaterThan(committedBeforeBackup);
    const atBackup = await snapshot(client);

    // Changes after the backup, which the restore must undo.
    expect((await api('/api/jobs/schedules/extract-blueprints', { method: 'PUT', ...json({ cron_expression: '15 3 * * *' }) })).status).toBe(200);
    expect((await api('/api/harvest-items', { method: 'POST', ...json({ title: 'after the backup', content: 'x' }) })).status).toBe(201);
    await client.query(`insert into job_logs (job_name, status, metadata) values ('extract-blueprints', 'FAILED', '{"after":true}')`);
    await client.query(`delete from drops where position = 2`);
    await boss.cancel('generate-drops', pendingId!);

    // Refused while the service runs, and nothing changes.
    const entriesBefore = (await readdir(dataDir)).sort();
    const refused = await runScript('src/cli/restore.ts', [file], env, 60_000);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/refused: the embedded PostgreSQL is running/);
    expect(refused.stderr).toContain('Nothing was changed');
    expect((await readdir(dataDir)).sort()).toEqual(entriesBefore);
    expect((await api('/healthz')).status).toBe(200);
    expect((await client.query(`select count(*)::int as n from job_logs where metadata->>'after' = 'true'`)).rows[0].n).toBe(1);

    await boss.stop({ graceful: false });
    await client.end();
    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(0);
    expect(await listening(pgPort)).toBe(false);

    // With the service stopped, db:backup starts the database for itself and stops it again.
    const offline = await time('db:backup while stopped', () => runScript('src/cli/backup.ts', [join(dataDir, 'offline.tar.gz')], env, 120_000));
    expect(offline.code, offline.stderr).toBe(0);
    expect(offline.stdout.trim()).toBe(join(dataDir, 'offline.tar.gz'));
    expect(offline.stderr).toContain('embedded PostgreSQL started');
    expect(offline.stderr).toContain('embedded PostgreSQL stopped');
    expect(await listening(pgPort)).toBe(false);

    // Interrupted mid-copy: exit 1, no archive nor leftovers, and the database it started is stopped.
    const interrupted = await interruptWhen('src/cli/backup.ts', [join(dataDir, 'interrupted.tar.gz')], env, 'backup started', 'SIGTERM');
    expect(interrupted.code).toBe(1);
    expect(interrupted.stderr).toContain('interrupted by SIGTERM');
    expect(interrupted.stderr).toContain('embedded PostgreSQL stopped');
    expect((await readdir(dataDir)).filter((name) => name.includes('interrupted') || name.startsWith('.memodrops-backup'))).toEqual([]);
    expect(await listening(pgPort)).toBe(false);

    const restored = await time('db:restore', () => runScript('src/cli/restore.ts', [file], env, 120_000));
    expect(restored.code, restored.stderr).toBe(0);
    const aside = /kept in (\S+)/.exec(restored.stdout)?.[1];
    expect(aside).toMatch(new RegExp(`^${dataDir}/before-restore-`));
    expect((await readdir(aside!)).sort()).toEqual(['postgres', 'postgres-password']);
    expect(restored.stdout).toContain('npm start');

    service = await time('start after restore (WAL replay)', () => startServiceProcess(env, 120_000));
    client = await connectTo(await dbUrl());
    expect(await snapshot(client)).toEqual(atBackup);

    // The writes during the backup: both halves of each transaction or neither, with no gap; all that
    // was committed before the backup began and some of what was committed while it ran (measured:
    // 184 of 305, the rest came after pg_backup_stop).
    const probeItems = (await client.query(`select substr(title, 7)::int as n from harvest_items where title like 'probe %' order by 1`)).rows.map((r) => r.n);
    const probeLogs = (await client.query(`select (metadata->>'n')::int as n from job_logs where job_name = 'probe' order by 1`)).rows.map((r) => r.n);
    expect(probeLogs).toEqual(probeItems);
    expect(probeItems).toEqual(Array.from({ length: probeItems.length }, (_, i) => i + 1));
    expect(probeItems.length).toBeGreaterThan(committedBeforeBackup);
    expect(probeItems.length).toBeLessThanOrEqual(committedAfterBackup);

    // pg-boss's side: the waiting run is back, waiting, and the service sees the schedules as backed up.
    const bossAfter = new PgBoss({ connectionString: await dbUrl(), supervise: false, schedule: false, migrate: false });
    bossAfter.on('error', () => {});
    await bossAfter.start();
    try {
      const [pending] = await bossAfter.findJobs('generate-drops', { id: pendingId! });
      expect(pending).toEqual(pendingBefore);
      expect(pending!.state).toBe('created');
    } finally {
      await bossAfter.stop({ graceful: false });
    }
    const schedules = (await (await api('/api/jobs/schedules')).json()) as Array<{ job_name: string; cron_expression: string }>;
    expect(Object.fromEntries(schedules.map((s) => [s.job_name, s.cron_expression]))).toEqual({ 'extract-blueprints': '0 */6 * * *', 'generate-drops': '30 2 * * *' });
    const drops = (await (await api(`/api/drops?blueprintId=${blueprint.id}`)).json()) as Array<{ title: string }>;
    expect(drops.map((d) => d.title)).toEqual(['Crase I', 'Crase II']);
    await client.end();

    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(0);
    console.log('backup round trip timings (ms):', timings);
  }, 420_000);
});
