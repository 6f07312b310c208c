import { sql } from 'drizzle-orm';
import type { Db } from './client.ts';

/** Up to this many rows job_logs is counted exactly; above it a count would grow with history. */
export const EXACT_LOG_COUNT_LIMIT = 10_000;

export type LogCount = { total: number; estimated: boolean };

/**
 * How many rows job_logs holds, at a cost that does not grow with history, in one statement.
 * Exact up to EXACT_LOG_COUNT_LIMIT rows (a count that stops there). Above it, what the planner
 * assumes: the rows per page seen by the last ANALYZE (autovacuum runs one as the table grows)
 * times the table's pages now, usually within a few percent. A table never analyzed is counted.
 */
export async function countLogs(db: Db): Promise<LogCount> {
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
