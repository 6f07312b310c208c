import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { openDatabase } from '../db/open.ts';
import { parseEnv } from '../env.ts';
import { createLogger, maskUrl } from '../logger.ts';

/** `npm run db:studio`: Drizzle Studio on the service's database, the embedded one included. */
const env = parseEnv();
const logger = createLogger(env.LOG_LEVEL, process.stderr);
const opened = await openDatabase(env, logger);
logger.info(`Drizzle Studio on ${maskUrl(opened.url)}`);

const drizzleKit = createRequire(import.meta.url).resolve('drizzle-kit/bin.cjs');
const studio = spawn(process.execPath, [drizzleKit, 'studio', ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: { ...process.env, DATABASE_URL: opened.url },
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => studio.kill(signal));
studio.on('exit', async (code) => {
  await opened.stop();
  process.exit(code ?? 0);
});
