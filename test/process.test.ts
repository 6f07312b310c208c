import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childEnv } from '../testkit/env.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../testkit/fake-openai.ts';
import { sleep } from '../testkit/poll.ts';
import { freePort } from '../testkit/ports.ts';
import { createTestDatabase, type TestDatabase } from './support/postgres.ts';
import { runScript, startServiceProcess } from '../testkit/processes.ts';

const blueprint = { exam_name: 'TRT 2ª Região', organization: 'FCC', topics: [{ code: 'PORT-01', name: 'Crase', discipline: 'Língua Portuguesa' }] };

async function addPendingItem(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`insert into harvest_items (title, content) values ('Edital', 'Conteúdo programático: crase')`);
  await client.end();
}

describe('configuration and startup (real process)', () => {
  it('refuses to listen on a public address without API_TOKEN, naming the variables', async () => {
    const result = await runScript('src/main.ts', [], { HOST: '0.0.0.0', DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('HOST');
    expect(result.stderr).toContain('API_TOKEN');
  });

  it('stops at a bad value with a message naming the variable', async () => {
    const result = await runScript('src/main.ts', [], { PORT: 'eighty', SCHEDULER_TIMEZONE: 'Mars/Olympus' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/PORT/);
    expect(result.stderr).toMatch(/SCHEDULER_TIMEZONE: "Mars\/Olympus" is not an IANA time zone/);
  });

  it('a time budget that cannot fit exits 2 with a message naming the variables, no stack trace (service and CLI)', async () => {
    for (const script of [['src/main.ts'], ['src/cli/run-job.ts', 'extract-blueprints']]) {
      const result = await runScript(script[0]!, script.slice(1), { OPENAI_TIMEOUT_SECONDS: '600', DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
      const output = result.stdout + result.stderr;
      expect(result.code, output).toBe(2);
      expect(output).toMatch(/one LLM call may take up to 1860 s .*lower OPENAI_TIMEOUT_SECONDS, OPENAI_MAX_RETRIES or OPENAI_RETRY_AFTER_MAX_SECONDS/);
      expect(output).not.toMatch(/^\s+at /m);
      expect(output).not.toContain('"stack"');
    }
  });

  it('a port already taken exits 2 naming PORT and HOST', async () => {
    const db = await createTestDatabase();
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = taken.address() as AddressInfo;
      const result = await runScript('src/main.ts', [], { DATABASE_URL: db.url, PORT: String(port) });
      expect(result.code, result.stdout + result.stderr).toBe(2);
      expect(result.stdout + result.stderr).toMatch(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE.*: choose another PORT or HOST`));
    } finally {
      taken.close();
      await db.drop();
    }
  });

  it('logs what the scheduler does at startup, masks the password, and exits 0 on SIGTERM', async () => {
    const db = await createTestDatabase();
    try {
      const service = await startServiceProcess({ DATABASE_URL: db.url, PORT: String(await freePort()) });
      const log = service.output();
      expect(log).toContain('initialising job scheduler');
      expect(log).toContain('found 2 scheduled jobs');
      expect(log).toContain('scheduling job extract-blueprints with cron 0 */6 * * *');
      expect(log).toContain('scheduling job generate-drops with cron 0 0 * * *');
      expect(log).toMatch(/job scheduler ready: API on http:\/\/127\.0\.0\.1:\d+/);
      const password = new URL(db.url).password;
      expect(log).toContain(':****@');
      expect(log).not.toContain(password);
      service.child.kill('SIGTERM');
      expect(await service.exited).toBe(0);
      expect(service.output()).toContain('stopped');
    } finally {
      await db.drop();
    }
  });
});

describe('CLI runs (npm run job:*)', () => {
  let llm: FakeOpenAI;
  let db: TestDatabase;
  beforeAll(async () => {
    llm = await startFakeOpenAI();
    llm.respond(() => ({ content: blueprint }));
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await llm?.close();
    await db?.drop();
  });

  it('exits 0 after a COMPLETED run, logged with trigger cli, and prints a one-line summary', async () => {
    await addPendingItem(db.url);
    const result = await runScript('src/cli/run-job.ts', ['extract-blueprints'], { DATABASE_URL: db.url, OPENAI_API_KEY: 'sk-test-0123456789', OPENAI_BASE_URL: llm.url });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim().split('\n')).toHaveLength(1);
    expect(result.stdout).toMatch(/^extract-blueprints COMPLETED — 1 succeeded, 0 failed/);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const { rows } = await client.query(`select status, metadata from job_logs where job_name = 'extract-blueprints' order by id desc limit 1`);
    await client.end();
    expect(rows[0].status).toBe('COMPLETED');
    expect(rows[0].metadata.trigger).toBe('cli');
  });

  it('on a terminal, shows a progress bar of the items while it runs, then the same summary line', async (ctx) => {
    // `script` (util-linux) gives the CLI a pseudo-terminal, as an operator's shell does.
    const script = await new Promise<boolean>((resolve) => execFile('script', ['--version'], (error) => resolve(!error)));
    if (!script) ctx.skip('the `script` command (util-linux) is not installed: no pseudo-terminal to test the bar on');
    for (let i = 0; i < 3; i++) await addPendingItem(db.url);
    llm.respond(async () => {
      await sleep(150); // long enough for the bar to draw between items
      return { content: blueprint };
    });
    const env = childEnv({ DATABASE_URL: db.url, OPENAI_API_KEY: 'sk-test-0123456789', OPENAI_BASE_URL: llm.url, LLM_CONCURRENCY: '1', COLUMNS: '120' });
    const terminal = await new Promise<{ code: number | null; text: string }>((resolve) => {
      execFile('script', ['-qefc', `${process.execPath} src/cli/run-job.ts extract-blueprints`, '/dev/null'], { env, timeout: 60_000 }, (error, stdout) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, text: stdout }),
      );
    });
    llm.respond(() => ({ content: blueprint }));
    expect(terminal.code, terminal.text).toBe(0);
    const frames = [...terminal.text.matchAll(/(\d)\/3 harvest items · 0 failed/g)].map((m) => Number(m[1]));
    expect(frames, terminal.text).toContain(0);
    expect(frames.some((done) => done > 0 && done < 3), terminal.text).toBe(true);
    expect(terminal.text).toMatch(/extract-blueprints COMPLETED — 3 succeeded, 0 failed/);
  });

  it('exits 2 when the run FAILED on a setting (no API key), says what to set, and leaves the item PENDING', async () => {
    await addPendingItem(db.url);
    const result = await runScript('src/cli/run-job.ts', ['extract-blueprints'], { DATABASE_URL: db.url });
    expect(result.code).toBe(2);
    expect(result.stdout).toMatch(/^extract-blueprints FAILED: OPENAI_API_KEY is not set: set it in the environment/);
    expect(result.stdout).toMatch(/, run here\)$/m);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const { rows } = await client.query(`select status from harvest_items order by id desc limit 1`);
    await client.end();
    expect(rows[0].status).toBe('PENDING');
  });

  it('with a service running, says the service runs it with its own settings, and it does (the shell has no key)', async () => {
    await addPendingItem(db.url);
    const service = await startServiceProcess({ DATABASE_URL: db.url, PORT: String(await freePort()), OPENAI_API_KEY: 'sk-service-key-0123456789', OPENAI_BASE_URL: llm.url });
    try {
      const servicePid = service.child.pid;
      const requestsBefore = llm.requests.length;
      const result = await runScript('src/cli/run-job.ts', ['extract-blueprints'], { DATABASE_URL: db.url, OPENAI_API_KEY: '' });
      expect(result.code, result.stdout + result.stderr).toBe(0);
      expect(result.stderr).toMatch(new RegExp(`a running service will run this \\(memodrops-scheduler/all on [^ ]+ \\(pid ${servicePid}\\)\\); its batch size, model and API key apply, not this shell's`));
      expect(result.stdout).toMatch(new RegExp(`^extract-blueprints COMPLETED — \\d+ succeeded, 0 failed .*, run by [^ ]+:${servicePid}\\)$`, 'm'));
      // The model was called, with the service's key.
      const keys = llm.requests.slice(requestsBefore).map((r) => r.headers.authorization);
      expect(keys.length).toBeGreaterThan(0);
      expect(new Set(keys)).toEqual(new Set(['Bearer sk-service-key-0123456789']));
    } finally {
      service.child.kill('SIGTERM');
      expect(await service.exited).toBe(0);
    }
  }, 120_000);

  it('exits 2 with usage for an unknown job', async () => {
    const result = await runScript('src/cli/run-job.ts', ['drop-tables'], { DATABASE_URL: db.url });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('usage: run-job <extract-blueprints|generate-drops>');
  });
});

describe('embedded default (no DATABASE_URL)', () => {
  let dataDir: string;
  let llm: FakeOpenAI;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'memodrops-embedded-'));
    await chmod(dataDir, 0o755);
    llm = await startFakeOpenAI();
    llm.respond(() => ({ content: blueprint }));
  });
  afterAll(async () => {
    await llm?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('a CLI run uses the service database whether or not the service runs, and never stops it under the service', async () => {
    const pgPort = String(await freePort());
    const common = { DATA_DIR: dataDir, EMBEDDED_PG_PORT: pgPort, OPENAI_API_KEY: 'sk-test-0123456789', OPENAI_BASE_URL: llm.url };

    // Service not running: the CLI starts the embedded database, runs, and stops it again.
    const alone = await runScript('src/cli/run-job.ts', ['extract-blueprints'], common, 120_000);
    expect(alone.code, alone.stderr).toBe(0);
    expect(alone.stderr).toContain('embedded PostgreSQL started');
    expect(alone.stderr).toContain('embedded PostgreSQL stopped');

    // Service running: the CLI joins its database and leaves it running.
    const apiPort = await freePort();
    const service = await startServiceProcess({ ...common, PORT: String(apiPort) }, 120_000);
    try {
      const joined = await runScript('src/cli/run-job.ts', ['generate-drops'], common);
      expect(joined.code, joined.stderr).toBe(0);
      expect(joined.stderr).not.toContain('embedded PostgreSQL started');
      const logs = (await (await fetch(`http://127.0.0.1:${apiPort}/api/jobs/logs`)).json()) as Array<{ job_name: string; metadata: { trigger: string } }>;
      // Both CLI runs are in the service's database: the first was made before the service started.
      expect(logs.map((l: { job_name: string; metadata: { trigger: string } }) => `${l.job_name}:${l.metadata.trigger}`).sort()).toEqual(['extract-blueprints:cli', 'generate-drops:cli']);
      expect((await fetch(`http://127.0.0.1:${apiPort}/healthz`)).status).toBe(200);
    } finally {
      service.child.kill('SIGTERM');
      expect(await service.exited).toBe(0);
    }
    expect(service.output()).toContain('embedded PostgreSQL stopped');
  }, 180_000);
});
