import type { PgBoss } from 'pg-boss';
import { ensureQueues, WORKING_INSTANCE_NAMES } from '../boss/client.ts';
import type { JobPayload } from '../jobs/job.ts';
import { createRegistry } from '../jobs/registry.ts';
import { THIS_WORKER } from '../boss/runner.ts';
import { workThroughRunner } from '../boss/workers.ts';
import { createDb, type Db } from '../db/client.ts';
import { runOfJob } from '../db/job-logs.ts';
import { runMigrations } from '../db/migrate.ts';
import { requireListenNotify } from '../db/listen-notify.ts';
import { openDatabase } from '../db/open.ts';
import type { JobLogRow } from '../db/schema.ts';
import { parseEnv } from '../env.ts';
import { CONFIGURATION_EXIT_CODE } from '../errors.ts';
import { createEvents } from '../events.ts';
import { checkLlmBudget } from '../llm/budget.ts';
import { createLogger } from '../logger.ts';
import { createBossFromEnv, createJobRunner, loadPricesFromEnv } from '../composition.ts';
import { runCommand } from './command.ts';
import { createProgressBar } from './progress-bar.ts';

/**
 * `npm run job:<name>`: one run in the foreground, logged with trigger "cli". The run goes through
 * the job's queue like any other, so it never overlaps a run of the same job in a running service.
 * When a service works this database, that service runs it with its own settings; otherwise this
 * process does, with this shell's. The summary line says which.
 * Exit codes: 0 COMPLETED, 1 FAILED, 2 bad usage or configuration (a run that failed on a setting
 * included), 3 a run is already waiting.
 */
async function main(argv: string[]): Promise<number> {
  const registry = createRegistry();
  const name = argv[0];
  if (!name || !registry.has(name)) {
    console.error(`usage: run-job <${[...registry.keys()].join('|')}>`);
    return CONFIGURATION_EXIT_CODE;
  }
  const env = parseEnv();
  checkLlmBudget(env, registry.values());
  const def = registry.get(name)!;
  // Logs on stderr; stdout is the one-line summary, and on a terminal the items' progress bar.
  const bar = createProgressBar(def.itemNoun ?? 'items');
  const logger = createLogger(env.LOG_LEVEL, bar?.logs ?? process.stderr);
  const prices = loadPricesFromEnv(env, logger);
  const opened = await openDatabase(env, logger);
  // As in the service: a pooler that drops notifications would leave our worker waiting for its poll.
  if (env.USE_LISTEN_NOTIFY) await requireListenNotify(opened.url, logger).catch(async (error) => {
    await opened.stop();
    throw error;
  });
  const database = createDb(opened.url, { max: env.DB_POOL_MAX, applicationName: 'memodrops-scheduler:cli' });
  const boss = createBossFromEnv(env, { url: opened.url, logger, role: 'cli', listens: env.USE_LISTEN_NOTIFY });
  try {
    await runMigrations(database.pool);
    await boss.start();
    await ensureQueues(boss, registry);

    const payload: JobPayload = { trigger: 'cli' };
    // A foreground run is one attempt: its operator sees the failure and decides.
    const jobId = await boss.send(name, payload, { retryLimit: 0 });
    if (!jobId) {
      const [waiting] = await boss.findJobs(name, { queued: true, limit: 1 });
      console.log(`${name}: a run is already waiting to start (job ${waiting?.id ?? 'unknown'}); not starting another`);
      return 3;
    }
    const runHere = async () => {
      const events = createEvents(logger);
      if (bar) events.on('run:progress', (event) => {
        if (event.jobId === jobId) bar.update(event);
      });
      const runner = createJobRunner(env, database.db, boss, logger, events, prices);
      await workThroughRunner(boss, def, runner, { batchSize: 1, localConcurrency: 1, pollingIntervalSeconds: 0.5 });
    };
    // A running service's workers would race ours for the job, and whichever won would run it with
    // its own settings. So the choice is made here, once, and said: a running service runs it (its
    // batch size, model and API key apply, not this shell's), else this process does.
    const services = await workingServices(boss);
    let leftToService = services.length > 0;
    if (leftToService) {
      logger.warn({ services }, `${name}: a running service will run this (${services.join(', ')}); its batch size, model and API key apply, not this shell's`);
    } else {
      logger.info(`${name}: no service is working this database; running here with this shell's settings`);
      await runHere();
    }
    const log = await waitForRun(database.db, jobId, ((def.queue.expireInSeconds ?? 900) + 60) * 1000, async () => {
      // A service that died after we looked would leave the run waiting: take it over.
      if (!leftToService || (await workingServices(boss)).length > 0) return;
      logger.warn(`${name}: the service that was to run it is gone; running here with this shell's settings`);
      leftToService = false;
      await runHere();
    });
    bar?.stop();
    const seconds = ((log.metadata.duration_ms as number | undefined) ?? 0) / 1000;
    const detail = log.status === 'FAILED' ? `: ${log.error_message}` : '';
    const where = log.metadata.worker === THIS_WORKER ? 'run here' : `run by ${String(log.metadata.worker ?? 'another instance')}`;
    console.log(`${name} ${log.status}${detail} — ${log.items_processed} succeeded, ${log.items_failed} failed in ${seconds.toFixed(1)} s (log ${log.id}, job ${jobId}, ${where})`);
    if (log.status === 'COMPLETED') return 0;
    // A run that failed on a setting is a configuration error like any other.
    return log.metadata.configuration_error ? CONFIGURATION_EXIT_CODE : 1;
  } finally {
    bar?.stop();
    await boss.stop({ graceful: true, timeout: env.SHUTDOWN_TIMEOUT_SECONDS * 1000 }).catch(() => {});
    await database.close();
    await opened.stop();
  }
}

/** The run's closed job_logs row, whoever ran it. `onWaiting` is asked every few seconds while the run has not started. */
async function waitForRun(db: Db, jobId: string, timeoutMs: number, onWaiting: () => Promise<void>): Promise<JobLogRow> {
  let lastCheck = Date.now();
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    const log = await runOfJob(db, jobId);
    if (log && log.status !== 'STARTED') return log;
    if (!log && Date.now() - lastCheck > 5_000) {
      lastCheck = Date.now();
      await onWaiting();
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`no result for job ${jobId} after ${Math.round(timeoutMs / 1000)} s`);
}

/** Live service instances that work jobs, as `name on host (pid N)`. */
async function workingServices(boss: PgBoss): Promise<string[]> {
  const instances = await boss.getInstances();
  return instances.filter((i) => i.live && i.name && WORKING_INSTANCE_NAMES.has(i.name)).map((i) => `${i.name} on ${i.host} (pid ${i.pid})`);
}

await runCommand('run-job', () => main(process.argv.slice(2)));
