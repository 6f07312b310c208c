import { and, eq, sql } from 'drizzle-orm';
import type { PgBoss } from 'pg-boss';
import type { Db } from '../db/client.ts';
import { jobLogs } from '../db/schema.ts';
import { releaseOrphanedClaims } from '../handlers/claims.ts';
import type { Logger } from '../logger.ts';

export type ReaperDeps = { db: Db; boss: PgBoss; logger: Logger };

/**
 * Closes runs whose worker is gone (process killed, machine lost) so no log stays STARTED forever,
 * then gives their claimed items back. A run is alive while pg-boss still holds its job active at
 * the same attempt; pg-boss's heartbeat and expiry decide when that stops.
 */
export async function reapLostRuns({ db, boss, logger }: ReaperDeps): Promise<{ closed: number; released: number }> {
  const open = await db.select().from(jobLogs).where(eq(jobLogs.status, 'STARTED'));
  let closed = 0;
  for (const log of open) {
    const jobId = typeof log.metadata.job_id === 'string' ? log.metadata.job_id : undefined;
    const attempt = typeof log.metadata.attempt === 'number' ? log.metadata.attempt : undefined;
    const [job] = jobId ? await boss.findJobs(log.job_name, { id: jobId }).catch(() => []) : [];
    if (job && job.state === 'active' && job.retryCount + 1 === attempt) continue;

    const result = await db
      .update(jobLogs)
      .set({
        status: 'FAILED',
        ended_at: sql`now()`,
        error_message: 'interrupted: worker lost',
        metadata: sql`${jobLogs.metadata} || ${JSON.stringify({ reaped: true, pgboss_state: job?.state ?? 'gone' })}::jsonb`,
      })
      .where(and(eq(jobLogs.id, log.id), eq(jobLogs.status, 'STARTED')));
    if (result.rowCount) {
      closed += 1;
      logger.warn({ job: log.job_name, logId: log.id, jobId }, `run ${log.id} of ${log.job_name} lost its worker: closed as FAILED`);
    }
  }
  const released = await releaseOrphanedClaims(db);
  if (released) logger.warn({ released }, `released ${released} claims left by lost runs`);
  return { closed, released };
}
