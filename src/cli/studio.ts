import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createDb } from '../db/client.ts';
import { runMigrations } from '../db/migrate.ts';
import { openDatabase } from '../db/open.ts';
import { isLoopbackHost, parseEnv } from '../env.ts';
import { ConfigurationError } from '../errors.ts';
import { createLogger, maskUrl } from '../logger.ts';
import { runCommand } from './command.ts';

/**
 * `npm run db:studio [-- --port N --host H ...]`: Drizzle Studio on the service's database, the
 * embedded one included. drizzle-kit serves a local API server; the UI is the hosted page
 * https://local.drizzle.studio, which the browser loads and which talks to that server. Whatever way
 * this ends (signal, drizzle-kit crashing, an error of ours), the embedded database it started is
 * stopped. Exit codes: 0 stopped by a signal, 1 drizzle-kit failed, 2 bad usage or configuration.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// drizzle-kit's own defaults; the hosted page assumes them unless its URL says otherwise.
const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_PORT = 4983;
const USAGE = 'usage: npm run db:studio [-- --port N] [--host H] [--verbose]';

export type StudioArgs = { host: string; port: number; help: boolean; rest: string[] };

/** Takes --host/--port (`--port 5000` or `--port=5000`) for ourselves; the rest goes to drizzle-kit. */
export function parseStudioArgs(argv: string[]): StudioArgs {
  const args: StudioArgs = { host: DEFAULT_HOST, port: DEFAULT_PORT, help: false, rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const match = /^--(host|port)(?:=(.*))?$/.exec(argv[i]!);
    if (!match) {
      if (argv[i] === '--help' || argv[i] === '-h') args.help = true;
      else args.rest.push(argv[i]!);
      continue;
    }
    const value = match[2] ?? argv[++i];
    if (!value) throw new ConfigurationError(`--${match[1]} needs a value\n${USAGE}`, [`--${match[1]}`]);
    if (match[1] === 'host') args.host = value;
    else if (/^\d+$/.test(value) && Number(value) >= 1 && Number(value) <= 65_535) args.port = Number(value);
    else throw new ConfigurationError(`--port must be a whole number from 1 to 65535 (got "${value}")`, ['--port']);
  }
  return args;
}

/** The URL the operator opens: the hosted UI, told where our server is when not at its default. */
export function studioPageUrl(host: string, port: number): string {
  const query = new URLSearchParams();
  if (port !== DEFAULT_PORT) query.set('port', String(port));
  if (host !== DEFAULT_HOST) query.set('host', host);
  return `https://local.drizzle.studio${query.size ? `?${query}` : ''}`;
}

function drizzleKitBin(): string {
  // drizzle-kit's package "exports" hide bin.cjs, so find its folder through its main entry.
  let dir;
  try {
    dir = dirname(createRequire(import.meta.url).resolve('drizzle-kit'));
  } catch {
    throw new Error('drizzle-kit is not installed (it is a development dependency): run `npm ci`');
  }
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  const { bin } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  return join(dir, bin['drizzle-kit']!);
}

function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, host, () => probe.close(() => resolve(true)));
  });
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

async function main(argv: string[]): Promise<number> {
  const args = parseStudioArgs(argv);
  if (args.help) return (console.log(USAGE), 0);
  const env = parseEnv();
  const { host, port } = args;
  const bin = drizzleKitBin();
  // Checked before the database starts: drizzle-kit would only crash with a stack trace.
  if (!(await canListen(host, port))) {
    throw new ConfigurationError(
      `cannot listen on ${host} port ${port} (in use, or not an address of this machine): choose another with \`npm run db:studio -- --port N\``,
      ['--port', '--host'],
    );
  }

  // Installed before the database starts, so a signal at any point still ends in opened.stop().
  let stopRequested = false;
  let child: ChildProcess | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopRequested) {
      console.error(`${signal} again: exiting now (an embedded PostgreSQL started here may be left running)`);
      process.exit(1);
    }
    stopRequested = true;
    child?.kill(signal);
    setTimeout(() => child?.kill('SIGKILL'), 10_000).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const logger = createLogger(env.LOG_LEVEL, process.stderr);
  const opened = await openDatabase(env, logger);
  try {
    // A database the service never started on would show no tables: bring it to the schema first.
    const database = createDb(opened.url, { max: 1, applicationName: 'memodrops-scheduler:studio' });
    await runMigrations(database.pool).finally(() => database.close());
    if (stopRequested) return 0;
    const running = spawn(process.execPath, [bin, 'studio', '--host', host, '--port', String(port), ...args.rest], {
      cwd: ROOT, // drizzle.config.ts and its relative paths live there
      stdio: 'inherit',
      env: { ...process.env, DATABASE_URL: opened.url },
    });
    child = running;
    let up = false;
    let done = false;
    const exited = new Promise<number>((resolve) => {
      running.once('error', (error) => (console.error(`could not start drizzle-kit: ${error.message}`), resolve(1)));
      running.once('exit', (code, signal) => {
        // Ctrl-C reaches drizzle-kit too, possibly before our own handler has run.
        if (stopRequested || signal === 'SIGINT' || signal === 'SIGTERM') return resolve(0);
        console.error(`drizzle-kit ${code === null ? `was killed by ${signal}` : `exited with code ${code}`}${up ? '' : ' before its server was up'}`);
        resolve(code === 0 && up ? 0 : code || 1);
      });
    });
    void exited.then(() => (done = true));
    const probeHost = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
    while (!done && !(up = await accepts(probeHost, port))) await sleep(200);
    if (up && !done) {
      const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
      console.log(`Drizzle Studio's server is listening on ${address}, on the database ${maskUrl(opened.url)}`);
      console.log(`Open ${studioPageUrl(host, port)} in a browser: the Studio UI is that hosted page (it needs internet access), and it talks to the server above. Ctrl-C stops Studio.`);
      if (!isLoopbackHost(host)) console.error(`warning: Studio's server has no authentication: anyone who can reach ${address} can read and change the database`);
    }
    return await exited;
  } finally {
    await opened.stop().catch((error) => logger.error({ err: error }, 'could not stop the embedded PostgreSQL'));
  }
}

await runCommand('db:studio', () => main(process.argv.slice(2)));
