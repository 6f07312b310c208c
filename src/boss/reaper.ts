import { sql } from 'drizzle-orm';
import type { JobWithMetadata, PgBoss } from 'pg-boss';
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
        if (job && ((job.state === 'active' && job.retryCount + 1 === attempt) || justCancelled(job, passStartedAt))) {
          oldestAlive = Math.min(oldestAlive, log.started_at.getTime());
          continue;
        }
        const pgbossState = job?.state ?? 'gone';
        const fate = fateOfLostAttempt(job, attempt);
        // The log says what pg-boss does with the run, in the runner's words.
        const told = fate && { will_retry: fate.willRetry, dead_lettered: fate.deadLettered };
        if (await closeLostRun(db, log.id, { reaped: true, pgboss_state: pgbossState, ...told })) {
          closed += 1;
          events.emit('run:reaped', { job: log.job_name, jobId: jobId ?? null, logId: log.id, pgbossState, ...fate });
          const note = fate?.deadLettered ? ' (its last attempt: dead-lettered)' : fate?.willRetry ? ' (pg-boss retries it)' : '';
          logger.warn({ job: log.job_name, logId: log.id, jobId, ...fate }, `run ${log.id} of ${log.job_name} lost its worker: closed as FAILED${note}`);
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

/**
 * An operator cancelled the job moments ago: the instance running it stops it at its next heartbeat
 * and logs `cancelled by operator`; closing it here first would call it a lost worker (and tell the
 * run's end twice). Left alone for three heartbeats; a run still open after that has lost its worker.
 */
function justCancelled(job: Pick<JobWithMetadata, 'state' | 'completedOn' | 'heartbeatSeconds'>, now: number): boolean {
  if (job.state !== 'cancelled' || !job.completedOn) return false;
  return now - job.completedOn.getTime() < 3 * (job.heartbeatSeconds ?? 10) * 1000;
}

/**
 * What pg-boss did with a lost attempt, read from its job once it let go of it. pg-boss counts an
 * attempt when it claims the job (retryCount + 1), so: a later attempt claimed, or this one failed
 * with retries left (`retry`): retried; this attempt failed with none left (`failed`): it went to the
 * job's dead-letter queue, as a run:end with retries spent does. Anything else (completed,
 * cancelled) is neither. Null (unknown) when the job is gone or the log does not say which attempt.
 */
export function fateOfLostAttempt(
  job: Pick<JobWithMetadata, 'state' | 'retryCount' | 'deadLetter'> | undefined,
  attempt: number | undefined,
): { willRetry: boolean; deadLettered: boolean } | null {
  if (!job || attempt === undefined) return null;
  const thisAttempt = job.retryCount + 1 === attempt;
  return {
    willRetry: job.retryCount + 1 > attempt || (thisAttempt && job.state === 'retry'),
    deadLettered: thisAttempt && job.state === 'failed' && Boolean(job.deadLetter),
  };
}
