import { sql, type SQL } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { latestRunIdsOf } from '../db/job-logs.ts';

/**
 * The queue: the pg-boss jobs of our jobs that have not ended (waiting, running, or waiting to
 * retry), read straight from pg-boss's job table. Only our jobs' queues (never a dead-letter or the
 * alerts queue), and only live states, so pg-boss's partial index on live jobs (job_i14: name,
 * state, blocked, start_after) answers however many finished jobs the table keeps.
 */

/** The states of a job that has not ended: waiting to start, running, waiting to retry. */
export const QUEUE_STATES = ['created', 'active', 'retry'] as const;
export type QueueState = (typeof QUEUE_STATES)[number];

export const QUEUE_LIMIT_DEFAULT = 100;
export const QUEUE_LIMIT_MAX = 1000;

/** pg-boss's schema (its default, which createBoss keeps). */
export const BOSS_SCHEMA = 'pgboss';

export type QueuedJob = {
  job_id: string;
  job_name: string;
  state: QueueState;
  /** What asked for it (cron, manual, cli), from its payload; null when the payload does not say. */
  trigger: string | null;
  created_at: string;
  /** When it may start; for a retry, when the retry fires. */
  start_after: string;
  retry_count: number;
  retry_limit: number;
  /** The newest job_logs row of this job (its running or last attempt); null when it never started. */
  log_id: number | null;
};

type Row = { id: string; name: string; state: QueueState; trigger: string | null; created_on: Date; start_after: Date; retry_count: number; retry_limit: number };

const names = (jobNames: readonly string[]) => sql.join(jobNames.map((name) => sql`${name}`), sql`, `);
/** Literals, not parameters: from QUEUE_STATES only, and the planner must see them to use the partial index. */
const stateList = (states: readonly QueueState[]) => sql.raw(states.filter((s) => QUEUE_STATES.includes(s)).map((s) => `'${s}'`).join(', '));

/** Running jobs first, then by when each may start. Exported for EXPLAIN. */
export function queueStatement(jobNames: readonly string[], states: readonly QueueState[], limit: number, bossSchema = BOSS_SCHEMA): SQL {
  return sql`
    select id, name, state, data->>'trigger' as trigger, created_on, start_after, retry_count, retry_limit
    from ${sql.identifier(bossSchema)}.job
    where name in (${names(jobNames)}) and state in (${stateList(states)})
    order by state = 'active' desc, start_after, created_on, id
    limit ${limit}`;
}

/** The jobs of `jobNames` in `states` (every state of the queue by default), at most `limit`, each with its newest log. */
export async function listQueue(
  db: Db,
  { jobNames, states = QUEUE_STATES, limit = QUEUE_LIMIT_DEFAULT, bossSchema = BOSS_SCHEMA }: { jobNames: readonly string[]; states?: readonly QueueState[]; limit?: number; bossSchema?: string },
): Promise<QueuedJob[]> {
  if (jobNames.length === 0 || states.length === 0) return [];
  const { rows } = await db.execute<Row>(queueStatement(jobNames, states, Math.min(limit, QUEUE_LIMIT_MAX), bossSchema));
  const logIds = await latestRunIdsOf(db, rows.map((row) => row.id));
  return rows.map((row) => ({
    job_id: row.id,
    job_name: row.name,
    state: row.state,
    trigger: row.trigger,
    created_at: new Date(row.created_on).toISOString(),
    start_after: new Date(row.start_after).toISOString(),
    retry_count: row.retry_count,
    retry_limit: row.retry_limit,
    log_id: logIds.get(row.id) ?? null,
  }));
}

/**
 * The job `jobId` of one of `jobNames`, any state, locked until the transaction ends so its state
 * cannot change under a cancel; null when none of those queues has it.
 */
export async function lockJob(tx: Pick<Db, 'execute'>, jobId: string, jobNames: readonly string[], bossSchema = BOSS_SCHEMA): Promise<{ name: string; state: string } | null> {
  if (jobNames.length === 0) return null;
  const { rows } = await tx.execute<{ name: string; state: string }>(sql`
    select name, state::text as state from ${sql.identifier(bossSchema)}.job
    where id = ${jobId}::uuid and name in (${names(jobNames)})
    for update`);
  return rows[0] ?? null;
}
