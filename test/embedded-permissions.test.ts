import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../testkit/ports.ts';
import { runScript, startServiceProcess } from '../testkit/processes.ts';

// Only root hands the embedded server to the `postgres` OS user; anyone else runs it as themselves.
const asRootWithPostgresUser = process.getuid?.() === 0 && hasUser('postgres');

function hasUser(name: string): boolean {
  try {
    execFileSync('id', ['-u', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** A private directory, as `mktemp -d` makes it (mode 700, owned by root). */
async function privateDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'memodrops-private-'));
  dirs.push(dir);
  return dir;
}

function expectConfigurationExit(result: { code: number | null; stdout: string; stderr: string }): string {
  const output = result.stdout + result.stderr;
  expect(result.code, output).toBe(2);
  expect(output).toContain('OS user `postgres` because the service runs as root');
  expect(output).not.toMatch(/^\s+at /m); // no stack trace
  expect(output).not.toContain('"stack"');
  return output;
}

describe.skipIf(!asRootWithPostgresUser)('embedded PostgreSQL under root (skipped unless run as root with a `postgres` OS user)', () => {
  it('exits 2 naming the directory the postgres user cannot reach, and what to do', async () => {
    const dir = await privateDir();
    const pgPort = await freePort();
    const result = await runScript('src/main.ts', [], { DATA_DIR: join(dir, 'data'), EMBEDDED_PG_PORT: String(pgPort), LOG_FORMAT: 'json' });

    const output = expectConfigurationExit(result);
    expect(output).toContain(`cannot reach ${dir}:`);
    expect(output).toContain(`chmod o+x ${dir}`);
    expect(output).toContain('DATA_DIR');
  });

  it('exits 2 when an existing cluster directory is not the postgres user\'s', async () => {
    const dir = await privateDir();
    await chmod(dir, 0o755);
    // As if copied in by root: the server, running as postgres, could not open it.
    const pgDir = join(dir, 'data', 'postgres');
    await mkdir(join(dir, 'data'), { mode: 0o755 });
    await mkdir(pgDir, { mode: 0o700 });
    await writeFile(join(pgDir, 'PG_VERSION'), '18\n');
    const result = await runScript('src/main.ts', [], { DATA_DIR: join(dir, 'data'), EMBEDDED_PG_PORT: String(await freePort()), LOG_FORMAT: 'json' });

    const output = expectConfigurationExit(result);
    expect(output).toContain(`cannot write to ${pgDir}`);
    expect(output).toContain(`chown -R postgres: ${pgDir}`);
  });

  it('starts once the advice is followed (chmod o+x on that directory)', { timeout: 90_000 }, async () => {
    const dir = await privateDir();
    await chmod(dir, 0o701); // search only: enough for the postgres user to reach DATA_DIR
    const service = await startServiceProcess({
      DATA_DIR: join(dir, 'data'),
      EMBEDDED_PG_PORT: String(await freePort()),
      PORT: String(await freePort()),
      LOG_FORMAT: 'json',
    });
    service.child.kill('SIGTERM');
    expect(await service.exited).toBe(0);
    expect(service.output()).toContain('embedded PostgreSQL stopped');
  });
});
