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

export type ScheduleSpend = {
  /** null: every job together, in the global zone. */
  job_name: string | null;
  timezone: string;
  daily_budget_usd: number | null;
  day: string;
  spent_usd: number;
};

/**
 * Today's spend of every scheduled job (in its schedule's zone) and of all jobs together (in
 * `globalTimeZone`), with the job's budget, in one statement that reads job_schedule itself: the
 * status route runs it alongside its other reads instead of after the schedules. Each sum is an
 * index range scan as spendToday's, without its distinct count of items. Jobs first, by name;
 * the global row last.
 */
export async function spendTodayBySchedule(db: Db, globalTimeZone: string): Promise<ScheduleSpend[]> {
  const { rows } = await db.execute<{ job_name: string | null; timezone: string; daily_budget_usd: string | null; day: string; spent_usd: string | null }>(sql`
    select s.job_name, s.timezone, s.daily_budget_usd, to_char(now() at time zone s.timezone, 'YYYY-MM-DD') as day,
      (select coalesce(sum(c.cost_usd), 0) from llm_calls c
        where c.at >= (date_trunc('day', now() at time zone s.timezone) at time zone s.timezone)
          and (s.job_name is null or c.job_name = s.job_name)) as spent_usd
    from (
      select job_name, timezone, daily_budget_usd, 0 as n from job_schedule
      union all
      select null, ${globalTimeZone}::text, null, 1
    ) s
    order by s.n, s.job_name`);
  return rows.map((row) => ({
    job_name: row.job_name,
    timezone: row.timezone,
    daily_budget_usd: row.daily_budget_usd === null ? null : Number(row.daily_budget_usd),
    day: row.day,
    spent_usd: Number(row.spent_usd ?? 0),
  }));
}
