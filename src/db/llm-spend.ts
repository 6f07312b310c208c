import { sql } from 'drizzle-orm';
import type { Db } from './client.ts';

/** What the budgets read of llm_calls: today's spend, by job or across jobs. */

export type DaySpend = {
  /** The local day, YYYY-MM-DD in the zone asked for. */
  day: string;
  spent_usd: number;
  /** Distinct items (harvest item, blueprint + topic) today's calls were for. */
  items: number;
};

/**
 * Today's spend in `timeZone`: one job's calls (an index range scan on llm_calls_job_at_idx) or,
 * with no job, every job's (llm_calls_at_idx). The day's start is computed in PostgreSQL, so every
 * instance agrees on it whatever its own clock zone.
 */
export async function spendToday(db: Db, { jobName, timeZone }: { jobName: string | null; timeZone: string }): Promise<DaySpend> {
  const { rows } = await db.execute<{ day: string; spent_usd: string | null; items: number }>(sql`
    select to_char(now() at time zone ${timeZone}, 'YYYY-MM-DD') as day,
      coalesce(sum(cost_usd), 0) as spent_usd, count(distinct item)::int as items
    from llm_calls
    where at >= (date_trunc('day', now() at time zone ${timeZone}) at time zone ${timeZone})
      ${jobName === null ? sql`` : sql`and job_name = ${jobName}`}`);
  const row = rows[0]!;
  return { day: row.day, spent_usd: Number(row.spent_usd ?? 0), items: Number(row.items) };
}

export type SpendScope = { jobName: string | null; timeZone: string };

/**
 * Today's spend of several scopes (a job in its zone, or every job in one zone) in one round trip:
 * each is a sum over an index range scan, as spendToday's, without the distinct count of items.
 * Rows come back in the order of `scopes`.
 */
export async function spendTodayOf(db: Db, scopes: SpendScope[]): Promise<Omit<DaySpend, 'items'>[]> {
  if (scopes.length === 0) return [];
  const { rows } = await db.execute<{ day: string; spent_usd: string | null }>(sql`
    select to_char(now() at time zone s.tz, 'YYYY-MM-DD') as day,
      (select coalesce(sum(c.cost_usd), 0) from llm_calls c
        where c.at >= (date_trunc('day', now() at time zone s.tz) at time zone s.tz)
          and (s.job is null or c.job_name = s.job)) as spent_usd
    from unnest(${sql.param(scopes.map((s) => s.jobName))}::text[], ${sql.param(scopes.map((s) => s.timeZone))}::text[]) with ordinality as s(job, tz, n)
    order by s.n`);
  return rows.map((row) => ({ day: row.day, spent_usd: Number(row.spent_usd ?? 0) }));
}
