import { sql } from 'drizzle-orm';
import type { PgBoss } from 'pg-boss';
import type { Db } from '../db/client.ts';
import { closeLostRun, openRunsBetween } from '../db/job-logs.ts';
import { releaseOrphanedClaims } from '../db/claims.ts';
import { noEvents, type SchedulerEvents } from '../events.ts';
import type { Logger } from '../logger.ts';

export type ReaperDeps = { db: Db; boss: PgBoss; logger: Logger; events?: SchedulerEvents };

/** Rows may commit a little after their started_at; a pass looks back this far past the previous one. */
const COMMIT_MARGIN_MS = 60_000;

export type Reaper = { reap(): Promise<{ closed: number; released: number }> };

/**
 * Closes runs whose worker is gone (process killed, machine lost) so no log stays STARTED forever,
 * then gives their claimed items back. A run is alive while pg-boss still holds its job active at
 * the same attempt; pg-boss's heartbeat and expiry decide when that stops.
 *
 * Open runs are searched from a watermark instead of through an index on status: no index covers
 * a column the runner changes, so closing a run rewrites its row in place (a HOT update). The
 * first pass reads the whole table; each later one starts at the oldest run still open, or a
 * minute before the previous pass.
 *
 * A run that started after the previous pass is left for the next one. pg-boss lets go of a lost
 * job only after its heartbeat or expiry, so such a run would read as alive anyway; and a job made
 * of many short runs would otherwise cost one pg-boss lookup per run in flight, every pass.
 */
export function createReaper({ db, boss, logger, events = noEvents }: ReaperDeps): Reaper {
  let scanFrom: Date | null = null;
  let previousPassAt: Date | null = null;

  return {
    async reap() {
      const { rows } = await db.execute<{ now_ms: number }>(sql`select (extract(epoch from now()) * 1000)::float8 as now_ms`);
      const passStartedAt = rows[0]!.now_ms;
      const open = await openRunsBetween(db, scanFrom, previousPassAt);

      let closed = 0;
      // The runs left for the next pass are after the previous pass: the next scan starts before it.
      let oldestAlive = Math.min(passStartedAt, previousPassAt?.getTime() ?? passStartedAt) - COMMIT_MARGIN_MS;
      for (const log of open) {
        const jobId = typeof log.metadata.job_id === 'string' ? log.metadata.job_id : undefined;
        const attempt = typeof log.metadata.attempt === 'number' ? log.metadata.attempt : undefined;
        const [job] = jobId ? await boss.findJobs(log.job_name, { id: jobId }).catch(() => []) : [];
        if (job && job.state === 'active' && job.retryCount + 1 === attempt) {
          oldestAlive = Math.min(oldestAlive, log.started_at.getTime());
          continue;
        }
        if (await closeLostRun(db, log.id, { reaped: true, pgboss_state: job?.state ?? 'gone' })) {
          closed += 1;
          events.emit('run:reaped', { job: log.job_name, jobId: jobId ?? null, logId: log.id, pgbossState: job?.state ?? 'gone' });
          logger.warn({ job: log.job_name, logId: log.id, jobId }, `run ${log.id} of ${log.job_name} lost its worker: closed as FAILED`);
        }
      }
      scanFrom = new Date(oldestAlive);
      previousPassAt = new Date(passStartedAt);
      const released = await releaseOrphanedClaims(db);
      if (released) logger.warn({ released }, `released ${released} claims left by lost runs`);
      return { closed, released };
    },
  };
}
