import { and, type AnyColumn, desc, eq, getTableColumns, gte, lt, sql, type SQL } from 'drizzle-orm';
import { unionAll } from 'drizzle-orm/pg-core';
import type { Db } from './client.ts';
import { jobLogs, jobLogsFailed, type JobLogRow, type RunStatus } from './schema.ts';

/**
 * Every statement on job_logs, the run history, except retention's batched delete
 * (log-retention.ts). A run's row is opened STARTED before its handler starts and closed in place
 * (a HOT update: no index covers a column the close changes, see drizzle/0003).
 */

/** Opens the STARTED rows of a batch of runs in one insert; returns each pg-boss job id's row id. */
export async function openRuns(db: Db, jobName: string, runs: Array<{ job_id: string } & Record<string, unknown>>): Promise<Map<string, number>> {
  const { rows } = await db.execute<{ id: number; job_id: string }>(sql`
    insert into job_logs (job_name, status, metadata, job_id)
    select ${jobName}, 'STARTED', m, m->>'job_id' from jsonb_array_elements(${JSON.stringify(runs)}::jsonb) as m
    returning id, job_id`);
  return new Map(rows.map((row) => [row.job_id, row.id]));
}

export type RunEnd = {
  id: number;
  status: Exclude<RunStatus, 'STARTED'>;
  items_processed: number;
  items_failed: number;
  error_message: string | null;
  /** Merged into the row's metadata. */
  metadata: Record<string, unknown>;
};

/** Closes a batch's rows in one update; a row already closed (by the reaper) stays as it is. */
export async function closeRuns(db: Db, ends: RunEnd[]): Promise<void> {
  await db.execute(sql`
    update job_logs as l
    set status = v.status, ended_at = now(), items_processed = v.items_processed, items_failed = v.items_failed,
        error_message = v.error_message, metadata = l.metadata || v.metadata
    from jsonb_to_recordset(${JSON.stringify(ends)}::jsonb)
      as v(id integer, status text, items_processed integer, items_failed integer, error_message text, metadata jsonb)
    where l.id = v.id and l.status = 'STARTED'`);
}

/** Runs still STARTED that started in [from, before) (either bound optional). */
export function openRunsBetween(db: Db, from: Date | null, before: Date | null): Promise<JobLogRow[]> {
  return db
    .select()
    .from(jobLogs)
    .where(and(eq(jobLogs.status, 'STARTED'), from ? gte(jobLogs.started_at, from) : undefined, before ? lt(jobLogs.started_at, before) : undefined));
}

/** Closes a run whose worker is gone as FAILED; false when it was closed meanwhile. */
export async function closeLostRun(db: Db, id: number, metadata: Record<string, unknown>): Promise<boolean> {
  const result = await db
    .update(jobLogs)
    .set({ status: 'FAILED', ended_at: sql`now()`, error_message: 'interrupted: worker lost', metadata: sql`${jobLogs.metadata} || ${JSON.stringify(metadata)}::jsonb` })
    .where(and(eq(jobLogs.id, id), eq(jobLogs.status, 'STARTED')));
  return Boolean(result.rowCount);
}

/** The newest run of a job: one index probe, however long the history. */
const latestRunQuery = (db: Db, jobName: string) =>
  db.select().from(jobLogs).where(eq(jobLogs.job_name, jobName)).orderBy(desc(jobLogs.started_at), desc(jobLogs.id)).limit(1);

export async function latestRun(db: Db, jobName: string): Promise<JobLogRow | null> {
  const [row] = await latestRunQuery(db, jobName);
  return row ?? null;
}

/** The newest run of each job, in one statement. */
export async function latestRuns(db: Db, jobNames: string[]): Promise<Record<string, JobLogRow | null>> {
  const [first, second, ...rest] = jobNames.map((name) => latestRunQuery(db, name));
  const rows = !first ? [] : !second ? await first : await unionAll(first, second, ...rest);
  const byJob = new Map(rows.map((row) => [row.job_name, row]));
  return Object.fromEntries(jobNames.map((name) => [name, byJob.get(name) ?? null]));
}

/** One run by its job_logs id, or null. */
export async function runById(db: Db, id: number): Promise<JobLogRow | null> {
  const [row] = await db.select().from(jobLogs).where(eq(jobLogs.id, id));
  return row ?? null;
}

export type RunListFilter = {
  jobName?: string;
  status?: RunStatus;
  /** The trigger column (the route checks it is one of TRIGGERS, src/jobs/job.ts). */
  trigger?: string;
  /** A log id: only the rows after it in the list's order (keyset pagination). */
  before?: number;
  limit: number;
  offset: number;
};

/**
 * A page of runs, newest first (started_at, then id), narrowed by job, status and trigger; null when
 * `before` names no log. `before` compares in SQL against that row's own started_at (microseconds,
 * which a JS Date would round), so it reads the index from the right place instead of skipping
 * `offset` rows.
 *
 * No index of job_logs covers a column a run's close changes (status, metadata…): it would cost
 * every close its HOT update (drizzle/0003; measured: +20 µs of PostgreSQL CPU per run, B1 −6 to
 * −16 %). So the rare filters have their own ways (drizzle/0010; BENCHMARKS.md B8, "The run list's
 * filters"):
 * - status=FAILED reads job_logs_failed, a copy of the failed runs' keys kept by triggers;
 * - trigger reads the trigger column (metadata.trigger, stored); `manual` and `cli` through a partial index
 *   that cron runs stay out of, `cron` (nearly every run) through job_logs_started_at_idx;
 * - status=STARTED and COMPLETED check the runs newest first: COMPLETED matches nearly every run,
 *   STARTED only the runs in flight, so a page of it reads the whole history (0.25–0.4 s at 1 M
 *   rows; a lower bound from the reaper's watermark would not be sound, BENCHMARKS.md).
 */
export async function listRuns(db: Db, { jobName, status, trigger, before, limit, offset }: RunListFilter): Promise<JobLogRow[] | null> {
  const rows = await (status === 'FAILED' ? failedRuns(db, { jobName, trigger, before, limit, offset }) : db
    .select()
    .from(jobLogs)
    .where(
      and(
        jobName === undefined ? undefined : eq(jobLogs.job_name, jobName),
        status === undefined ? undefined : eq(jobLogs.status, status),
        trigger === undefined ? undefined : eq(jobLogs.trigger, trigger),
        // Spelled out so the planner sees job_logs_trigger_started_at_idx's predicate whatever the parameter.
        trigger === undefined || trigger === 'cron' ? undefined : sql`${jobLogs.trigger} <> 'cron'`,
        before === undefined ? undefined : afterInOrder(jobLogs.started_at, jobLogs.id, before),
      ),
    )
    .orderBy(desc(jobLogs.started_at), desc(jobLogs.id))
    .limit(limit)
    .offset(offset));
  // An empty page is also what a missing `before` row gives (the comparison is null): tell them apart only then.
  if (rows.length === 0 && before !== undefined && !(await runById(db, before))) return null;
  return rows;
}

/** (started_at, id) after the log `before` in the list's order; null (no row) when that log does not exist. */
const afterInOrder = (startedAt: AnyColumn, id: AnyColumn, before: number): SQL =>
  sql`(${startedAt}, ${id}) < ((select b.started_at from job_logs b where b.id = ${before}), ${before})`;

/** listRuns for status=FAILED: job_logs_failed in the list's order (its indexes), each joined to its log. */
function failedRuns(db: Db, { jobName, trigger, before, limit, offset }: Omit<RunListFilter, 'status'>) {
  const f = jobLogsFailed;
  return db
    .select(getTableColumns(jobLogs))
    .from(f)
    .innerJoin(jobLogs, eq(jobLogs.id, f.log_id))
    .where(
      and(
        jobName === undefined ? undefined : eq(f.job_name, jobName),
        trigger === undefined ? undefined : eq(f.trigger, trigger),
        before === undefined ? undefined : afterInOrder(f.started_at, f.log_id, before),
      ),
    )
    .orderBy(desc(f.started_at), desc(f.log_id))
    .limit(limit)
    .offset(offset);
}

/** The latest row of the run of a pg-boss job (its last attempt), open or closed; null before it starts. */
export async function runOfJob(db: Db, jobId: string): Promise<JobLogRow | null> {
  const [row] = await db.select().from(jobLogs).where(ofJob(jobId)).orderBy(desc(jobLogs.id)).limit(1);
  return row ?? null;
}

/** Every attempt of a pg-boss job (a retry keeps the job id), oldest first. */
export function runsOfJob(db: Db, jobId: string): Promise<JobLogRow[]> {
  return db.select().from(jobLogs).where(ofJob(jobId)).orderBy(jobLogs.id);
}

// Through the query builder, not db.execute, so timestamps come back as Dates like the row type says.
const ofJob = (jobId: string) => eq(jobLogs.job_id, jobId);

/** Up to this many rows job_logs is counted exactly; above it a count would grow with history. */
export const EXACT_LOG_COUNT_LIMIT = 10_000;

export type LogCount = { total: number; estimated: boolean };

/**
 * How many rows job_logs holds, at a cost that does not grow with history, in one statement.
 * Exact up to EXACT_LOG_COUNT_LIMIT rows (a count that stops there). Above it, what the planner
 * assumes: the rows per page seen by the last ANALYZE (autovacuum runs one as the table grows)
 * times the table's pages now, usually within a few percent. A table never analyzed is counted.
 */
export async function countRuns(db: Db): Promise<LogCount> {
  const { rows } = await db.execute<{ estimate: number | null; counted: number | null }>(sql`
    with stats as (
      select case when reltuples >= 0 and relpages > 0
                  then round(reltuples / relpages * (pg_relation_size(oid) / current_setting('block_size')::int))::float8
             end as estimate
      from pg_class where oid = 'job_logs'::regclass
    )
    select estimate,
           case when estimate is null then (select count(*) from job_logs)::float8
                when estimate <= ${2 * EXACT_LOG_COUNT_LIMIT} then (select count(*) from (select 1 from job_logs limit ${EXACT_LOG_COUNT_LIMIT + 1}) as capped)::float8
           end as counted
    from stats`);
  const { estimate, counted } = rows[0]!;
  if (counted !== null && (estimate === null || counted <= EXACT_LOG_COUNT_LIMIT)) return { total: counted, estimated: false };
  return { total: Math.max(estimate!, EXACT_LOG_COUNT_LIMIT + 1), estimated: true };
}

/**
 * Whether a run of the job started at or after `since` (any status, any trigger): one probe of
 * job_logs_job_name_started_at_idx. Takes a transaction too, for a check made where it commits.
 */
export async function runStartedSince(db: Pick<Db, 'select'>, jobName: string, since: Date): Promise<boolean> {
  const [row] = await db.select({ id: jobLogs.id }).from(jobLogs).where(and(eq(jobLogs.job_name, jobName), gte(jobLogs.started_at, since))).limit(1);
  return Boolean(row);
}

/**
 * Closes the rows of runs cancelled by an operator, as closeRuns does, and also over the reaper's
 * close of the same run: the reaper can find the job cancelled before the run's own worker does
 * (its heartbeat, up to heartbeatSeconds later) and would have called it a lost worker.
 */
export async function closeCancelledRuns(db: Db, ends: RunEnd[]): Promise<void> {
  await db.execute(sql`
    update job_logs as l
    set status = v.status, ended_at = coalesce(l.ended_at, now()), items_processed = v.items_processed, items_failed = v.items_failed,
        error_message = v.error_message, metadata = (l.metadata - 'reaped' - 'pgboss_state') || v.metadata
    from jsonb_to_recordset(${JSON.stringify(ends)}::jsonb)
      as v(id integer, status text, items_processed integer, items_failed integer, error_message text, metadata jsonb)
    where l.id = v.id and (l.status = 'STARTED' or (l.metadata->>'reaped' = 'true' and l.metadata->>'pgboss_state' = 'cancelled'))`);
}

/** The newest row of each pg-boss job (its last attempt): one scan of job_logs_job_id_idx for the ids (uuids: no commas). */
const lastAttempts = (jobIds: string[]) => sql`
  select distinct on (job_id) job_id, id from job_logs
  where job_id = any(string_to_array(${jobIds.join(',')}, ','))
  order by job_id, id desc`;

/** The newest row of each pg-boss job (its last attempt), by job id. */
export async function latestRunIdsOf(db: Db, jobIds: string[]): Promise<Map<string, number>> {
  if (jobIds.length === 0) return new Map();
  const { rows } = await db.execute<{ job_id: string; id: number }>(lastAttempts(jobIds));
  return new Map(rows.map((row) => [row.job_id, row.id]));
}

/**
 * A job cancelled while it waited to retry: its last attempt's log said `will_retry: true`, which is
 * no longer so. Merges `patch` into that log's metadata when it is closed and says so; returns the
 * log's id, or null when there was nothing to amend. Takes a transaction, to commit with the cancel.
 */
export async function amendWillRetry(db: Pick<Db, 'execute'>, jobId: string, patch: Record<string, unknown>): Promise<number | null> {
  const { rows } = await db.execute<{ id: number }>(sql`
    update job_logs set metadata = metadata || ${JSON.stringify({ ...patch, will_retry: false })}::jsonb
    where id = (select id from job_logs where job_id = ${jobId} order by id desc limit 1)
      and status <> 'STARTED' and metadata->'will_retry' = 'true'::jsonb
    returning id`);
  return rows[0]?.id ?? null;
}

/**
 * The last attempt's log of each of these pg-boss jobs (dead-lettered runs) says which job took its
 * work over when its dead letter was sent back. Takes a transaction, to commit with the send-back.
 */
export async function markSentBackAs(db: Pick<Db, 'execute'>, jobIds: string[], sentBackAs: string | null): Promise<void> {
  if (jobIds.length === 0) return;
  await db.execute(sql`
    update job_logs set metadata = metadata || ${JSON.stringify({ sent_back_as: sentBackAs })}::jsonb
    where id in (select id from (${lastAttempts(jobIds)}) as last)`);
}
