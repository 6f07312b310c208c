import { sql } from 'drizzle-orm';
import { createBoss, ensureQueues } from '../boss/client.ts';
import type { JobPayload } from '../boss/job.ts';
import { createRegistry } from '../boss/registry.ts';
import { workThroughRunner } from '../boss/workers.ts';
import { createDb } from '../db/client.ts';
import { runMigrations } from '../db/migrate.ts';
import { openDatabase } from '../db/open.ts';
import type { JobLogRow } from '../db/schema.ts';
import { EnvError, parseEnv } from '../env.ts';
import { checkLlmBudget, LlmBudgetError } from '../llm/budget.ts';
import { createLogger } from '../logger.ts';
import { createJobRunner } from '../service.ts';

/**
 * `npm run job:<name>`: one run in the foreground, logged with trigger "cli". The run goes through
 * the job's queue like any other, so it never overlaps a run of the same job in a running service.
 * Exit codes: 0 COMPLETED, 1 FAILED, 2 bad usage or configuration, 3 a run is already waiting.
 */
async function main(argv: string[]): Promise<number> {
  const registry = createRegistry();
  const name = argv[0];
  if (!name || !registry.has(name)) {
    console.error(`usage: run-job <${[...registry.keys()].join('|')}>`);
    return 2;
  }
  let env;
  try {
    env = parseEnv();
    checkLlmBudget(env, registry.values());
  } catch (error) {
    if (error instanceof EnvError || error instanceof LlmBudgetError) {
      console.error(error.message);
      return 2;
    }
    throw error;
  }
  // Logs on stderr; stdout is the one-line summary.
  const logger = createLogger(env.LOG_LEVEL, process.stderr);
  const opened = await openDatabase(env, logger);
  const database = createDb(opened.url, { max: 5, applicationName: 'memodrops-scheduler:cli' });
  const boss = createBoss({
    url: opened.url,
    logger,
    schedule: false,
    cronWorkerIntervalSeconds: env.CRON_WORKER_INTERVAL_SECONDS,
    cronMonitorIntervalSeconds: env.CRON_MONITOR_INTERVAL_SECONDS,
    useListenNotify: env.USE_LISTEN_NOTIFY,
    applicationName: 'memodrops-scheduler:cli:pg-boss',
  });
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
    const runner = createJobRunner(env, database.db, logger);
    const def = registry.get(name)!;
    // Whichever worker claims it first runs it: ours, or a running service's.
    await workThroughRunner(boss, def, runner, { batchSize: 1, localConcurrency: 1, pollingIntervalSeconds: 0.5 });
    const log = await waitForRun(database.db, jobId, ((def.queue.expireInSeconds ?? 900) + 60) * 1000);
    const seconds = ((log.metadata.duration_ms as number | undefined) ?? 0) / 1000;
    const detail = log.status === 'FAILED' ? `: ${log.error_message}` : '';
    console.log(`${name} ${log.status}${detail} — ${log.items_processed} succeeded, ${log.items_failed} failed in ${seconds.toFixed(1)} s (log ${log.id}, job ${jobId})`);
    return log.status === 'COMPLETED' ? 0 : 1;
  } finally {
    await boss.stop({ graceful: true, timeout: env.SHUTDOWN_TIMEOUT_SECONDS * 1000 }).catch(() => {});
    await database.close();
    await opened.stop();
  }
}

/** The run's closed job_logs row, whoever ran it. */
async function waitForRun(db: ReturnType<typeof createDb>['db'], jobId: string, timeoutMs: number): Promise<JobLogRow> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    const { rows } = await db.execute<JobLogRow>(
      sql`select * from job_logs where metadata->>'job_id' = ${jobId} and status <> 'STARTED' order by id desc limit 1`,
    );
    if (rows[0]) return rows[0];
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`no result for job ${jobId} after ${Math.round(timeoutMs / 1000)} s`);
}

process.exitCode = await main(process.argv.slice(2)).catch((error) => {
  console.error(`run-job failed: ${error instanceof Error ? error.message : String(error)}`);
  return 1;
});
