import { sql } from 'drizzle-orm';
import type { Logger } from '../logger.ts';
import type { Db } from './client.ts';

/**
 * Deletes job_logs rows older than the retention, a short transaction at a time, so the API and the
 * runner never wait behind it.
 *
 * - One batch at a time across instances: each batch's transaction first takes a transaction-level
 *   advisory lock (`pg_try_advisory_xact_lock`), released at its commit, so it works through
 *   PgBouncer's transaction pooling too. A pass that finds the lock taken ends: another instance
 *   is deleting, and two instances soon leave the work to one.
 * - A batch deletes at most `batchSize` rows, oldest first, chosen through job_logs_started_at_idx,
 *   and the next batch starts after the last row deleted (a keyset cursor), so no batch rescans
 *   the dead index entries of the ones before it. Then the pass pauses `pauseMs`.
 * - A run still STARTED is never deleted, however old; a run is old once both its start and its
 *   end are (a run the reaper closes today, 100 days after it started, is kept another 90 days).
 */

/** What other instances' batches meet in pg_try_advisory_xact_lock (hashed to a bigint in SQL). */
export const RETENTION_LOCK_NAME = 'memodrops:job_logs retention';

/**
 * Measured with bench/retention.ts (BENCHMARKS.md): 1 M rows deleted in 156–223 s with the p99 of
 * GET /api/jobs/status within ×1.0–×1.8 of its idle figure (one DELETE statement: ×1.8–×2.1).
 */
export const RETENTION_BATCH_SIZE = 1_000;
export const RETENTION_PAUSE_MS = 100;

export type LogRetentionOptions = {
  db: Db;
  logger: Logger;
  /** Logs older than this many days go; 0 keeps everything. */
  retentionDays: number;
  batchSize?: number;
  pauseMs?: number;
};

export type RetentionPass = {
  deleted: number;
  /** Batches that took the lock and ran their delete (the last may delete fewer rows, or none). */
  batches: number;
  /** The pass ended because another instance held the lock. */
  busy: boolean;
  ms: number;
};

export type LogRetention = {
  /** One pass: deletes every row past the retention, batch by batch; logs what it deleted. */
  run(): Promise<RetentionPass>;
  /** Ends a pass between batches (the batch in flight commits); later passes do nothing. */
  stop(): void;
};

type BatchRow = { locked: boolean; deleted: number; last_started_at: string | null; last_id: number | null };

export function createLogRetention({ db, logger, retentionDays, batchSize = RETENTION_BATCH_SIZE, pauseMs = RETENTION_PAUSE_MS }: LogRetentionOptions): LogRetention {
  let stopped = false;
  let wake: (() => void) | undefined;

  const pause = () =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, pauseMs);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  async function batch(after: { startedAt: string; id: number } | null): Promise<BatchRow> {
    return db.transaction(async (tx) => {
      const { rows: [lock] } = await tx.execute<{ locked: boolean }>(sql`select pg_try_advisory_xact_lock(hashtextextended(${RETENTION_LOCK_NAME}, 0)) as locked`);
      if (!lock!.locked) return { locked: false, deleted: 0, last_started_at: null, last_id: null };
      const cutoff = sql`now() - make_interval(days => ${retentionDays})`;
      // started_at < cutoff and the order are what the index serves (scanned backwards); SKIP
      // LOCKED: a row someone else holds is left for the next pass rather than waited for.
      const { rows: [row] } = await tx.execute<Omit<BatchRow, 'locked'>>(sql`
        with doomed as (
          select id, started_at from job_logs
          where started_at < ${cutoff}
            and coalesce(ended_at, started_at) < ${cutoff}
            and status <> 'STARTED'
            ${after ? sql`and (started_at, id) > (${after.startedAt}::timestamptz, ${after.id}::int)` : sql``}
          order by started_at, id
          limit ${batchSize}
          for update skip locked
        ),
        gone as (delete from job_logs where id in (select id from doomed) returning id, started_at),
        last as (select id, started_at from gone order by started_at desc, id desc limit 1)
        select (select count(*) from gone)::int as deleted,
               (select started_at::text from last) as last_started_at,
               (select id from last) as last_id`);
      return { locked: true, ...row! };
    });
  }

  return {
    async run() {
      const t0 = performance.now();
      const pass: RetentionPass = { deleted: 0, batches: 0, busy: false, ms: 0 };
      let after: { startedAt: string; id: number } | null = null;
      while (retentionDays > 0 && !stopped) {
        const result = await batch(after);
        if (!result.locked) {
          pass.busy = true;
          break;
        }
        pass.batches += 1;
        pass.deleted += result.deleted;
        if (result.deleted < batchSize || result.last_started_at === null) break;
        after = { startedAt: result.last_started_at, id: result.last_id! };
        await pause();
      }
      pass.ms = performance.now() - t0;
      const fields = { ...pass, ms: Math.round(pass.ms), retentionDays };
      if (pass.deleted > 0) {
        logger.info(fields, `deleted ${pass.deleted} job_logs rows older than ${retentionDays} days (${pass.batches} ${pass.batches === 1 ? 'batch' : 'batches'}, ${(pass.ms / 1000).toFixed(1)} s)`);
      } else {
        logger.debug(fields, pass.busy ? 'job_logs retention: another instance is deleting' : 'job_logs retention: nothing to delete');
      }
      return pass;
    },
    stop() {
      stopped = true;
      wake?.();
    },
  };
}
