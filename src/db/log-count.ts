import { sql } from 'drizzle-orm';
import type { Db } from './client.ts';

/** Up to this many rows job_logs is counted exactly; above it a count would grow with history. */
export const EXACT_LOG_COUNT_LIMIT = 10_000;

export type LogCount = { total: number; estimated: boolean };

/**
 * How many rows job_logs holds, at a cost that does not grow with history. Exact up to
 * EXACT_LOG_COUNT_LIMIT rows (a count that stops there). Above it, the planner's estimate: the rows
 * per page seen by the last ANALYZE (autovacuum runs one as the table grows) times the table's
 * current pages, usually within a few percent. A table never analyzed is counted exactly.
 */
export async function countLogs(db: Db): Promise<LogCount> {
  const estimate = await analyzedEstimate(db);
  if (estimate === null || estimate <= 2 * EXACT_LOG_COUNT_LIMIT) {
    const limit = estimate === null ? sql`` : sql`limit ${EXACT_LOG_COUNT_LIMIT + 1}`;
    const { rows } = await db.execute<{ n: number }>(sql`select count(*)::int as n from (select 1 from job_logs ${limit}) as counted`);
    const n = rows[0]!.n;
    if (estimate === null || n <= EXACT_LOG_COUNT_LIMIT) return { total: n, estimated: false };
  }
  return { total: Math.max(estimate, EXACT_LOG_COUNT_LIMIT + 1), estimated: true };
}

/** What the planner assumes (rows per page × pages now); null when no ANALYZE has measured the table. */
async function analyzedEstimate(db: Db): Promise<number | null> {
  const { rows } = await db.execute<{ reltuples: number; relpages: number; pages: number }>(sql`
    select reltuples::float8 as reltuples, relpages, pg_relation_size(oid) / current_setting('block_size')::int as pages
    from pg_class where oid = 'job_logs'::regclass`);
  const { reltuples, relpages, pages } = rows[0]!;
  if (reltuples < 0 || relpages <= 0) return null;
  return Math.round((reltuples / relpages) * Number(pages));
}
