import { sql, type SQL } from 'drizzle-orm';
import type { PgBoss } from 'pg-boss';
import type { Db } from '../db/client.ts';
import { deadLetterQueueOf } from '../jobs/job.ts';
import { bossTimingOf, overdueSeconds } from '../boss/overdue.ts';

/** pg-boss's states a queue's jobs are counted in (as its own OpenTelemetry gauge `pgboss.queue.jobs` says them). */
export const QUEUE_STATES = ['ready', 'deferred', 'blocked', 'active', 'failed'] as const;
export type QueueState = (typeof QUEUE_STATES)[number];

/** What the database says about one job at a scrape. */
export type JobSnapshot = {
  /** Its queue's jobs by state, as pg-boss's monitor pass last counted them; null when pg-boss has no such queue. */
  queue: Record<QueueState, number> | null;
  /** Jobs waiting in its dead-letter queue (same count); null when there is none. */
  deadLetters: number | null;
  /** How long its oldest ready job (created or retry, not blocked, start time reached) has waited; 0 when none waits. */
  oldestWaitingSeconds: number;
  /** From its job_schedule row; null when it has none. */
  schedule: { active: boolean; nextRunAt: Date | null; overdueSeconds: number } | null;
  /** When its latest run started (job_logs), whatever started it; null if it never ran. */
  lastStartedAt: Date | null;
};

export type SnapshotDeps = { db: Db; boss: Pick<PgBoss, 'getQueues'>; jobNames: readonly string[]; bossSchema: string };

type Row = {
  name: string;
  is_active: boolean | null;
  next_run_at: number | null;
  last_started_at: number | null;
  boss_cron: string | null;
  boss_timezone: string | null;
  scheduled_since: string | null;
  boss_updated_on: number | null;
  waiting_since: number | null;
  now: number;
};

const fromEpoch = (seconds: number | null) => (seconds === null ? null : new Date(seconds * 1000));

/**
 * The per-job probes, one statement: job_schedule and pg-boss's schedule (small tables, by key),
 * the latest run (job_logs_job_name_started_at_idx: one row), and the oldest ready job of each state
 * (pg-boss's job_i14 on name, state, blocked, start_after: its first entry). Exported for EXPLAIN.
 */
export function snapshotStatement(jobNames: readonly string[], bossSchema: string): SQL {
  const schema = sql.identifier(bossSchema);
  const oldestReady = (state: 'created' | 'retry') => sql`(
    select min(j.start_after) from ${schema}.job j
    where j.name = n.name and j.state = ${sql.raw(`'${state}'`)} and not j.blocked and j.start_after <= now())`;
  return sql`
    select
      n.name,
      s.is_active,
      extract(epoch from s.next_run_at)::float8 as next_run_at,
      extract(epoch from latest.started_at)::float8 as last_started_at,
      b.cron as boss_cron,
      b.timezone as boss_timezone,
      b.data->>'scheduled_since' as scheduled_since,
      extract(epoch from b.updated_on)::float8 as boss_updated_on,
      extract(epoch from least(${oldestReady('created')}, ${oldestReady('retry')}))::float8 as waiting_since,
      extract(epoch from now())::float8 as now
    from jsonb_array_elements_text(${JSON.stringify(jobNames)}::jsonb) as n(name)
    left join job_schedule s on s.job_name = n.name
    left join ${schema}.schedule b on b.name = n.name and b.key = ''
    left join lateral (
      select l.started_at from job_logs l where l.job_name = n.name order by l.started_at desc, l.id desc limit 1
    ) latest on true`;
}

/**
 * Reads everything the database gauges show in two statements, side by side, both bounded whatever
 * the size of job_logs or of pg-boss's job table: pg-boss's cached counts of the jobs' queues and
 * dead-letter queues (`getQueues`: its queue table by primary key; its monitor pass refreshes them
 * every monitorIntervalSeconds), and the per-job probes (snapshotStatement). Times come from the
 * database's clock, so every instance shows the same values.
 */
export async function readDatabaseSnapshot({ db, boss, jobNames, bossSchema }: SnapshotDeps): Promise<Map<string, JobSnapshot>> {
  const [queues, { rows }] = await Promise.all([
    boss.getQueues([...jobNames, ...jobNames.map(deadLetterQueueOf)]),
    db.execute<Row>(snapshotStatement(jobNames, bossSchema)),
  ]);

  const queueByName = new Map(queues.map((q) => [q.name, q]));
  const snapshot = new Map<string, JobSnapshot>();
  for (const row of rows) {
    const now = new Date(row.now * 1000);
    const queue = queueByName.get(row.name);
    const lastStartedAt = fromEpoch(row.last_started_at);
    const nextRunAt = fromEpoch(row.next_run_at);
    const bossSchedule =
      row.boss_cron && row.boss_timezone
        ? bossTimingOf({ cron: row.boss_cron, timezone: row.boss_timezone, scheduledSince: row.scheduled_since, updatedOn: new Date((row.boss_updated_on ?? 0) * 1000) })
        : null;
    snapshot.set(row.name, {
      queue: queue
        ? { ready: queue.readyCount, deferred: queue.deferredCount, blocked: queue.blockedCount, active: queue.activeCount, failed: queue.failedCount }
        : null,
      deadLetters: queueByName.get(deadLetterQueueOf(row.name))?.queuedCount ?? null,
      oldestWaitingSeconds: row.waiting_since === null ? 0 : Math.max(0, row.now - row.waiting_since),
      schedule:
        row.is_active === null
          ? null
          : { active: row.is_active, nextRunAt, overdueSeconds: overdueSeconds({ active: row.is_active, boss: bossSchedule, nextRunAt, lastStartedAt }, now) },
      lastStartedAt,
    });
  }
  return snapshot;
}
