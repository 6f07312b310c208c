import { sql, type SQL } from 'drizzle-orm';
import type { Db } from './client.ts';
import { jobSchedule, type JobScheduleRow } from './schema.ts';

/** What the budgets read of llm_calls: today's spend, by job or across jobs. */

export type DaySpend = {
  /** The local day, YYYY-MM-DD in the zone asked for. */
  day: string;
  spent_usd: number;
  /** Distinct items (harvest item, blueprint + topic) today's calls were for. */
  items: number;
};

/** The start of today in `zone`, computed in PostgreSQL (every instance agrees, whatever its clock's zone). */
const startOfToday = (zone: SQL) => sql`(date_trunc('day', now() at time zone ${zone}) at time zone ${zone})`;
const today = (zone: SQL) => sql<string>`to_char(now() at time zone ${zone}, 'YYYY-MM-DD')`;

/**
 * Today's spend in `timeZone`: one job's calls (an index range scan on llm_calls_job_at_idx) or,
 * with no job, every job's (llm_calls_at_idx). The day's start is computed in PostgreSQL, so every
 * instance agrees on it whatever its own clock zone.
 */
export async function spendToday(db: Db, { jobName, timeZone }: { jobName: string | null; timeZone: string }): Promise<DaySpend> {
  const zone = sql`${timeZone}::text`;
  const { rows } = await db.execute<{ day: string; spent_usd: string | null; items: number }>(sql`
    select ${today(zone)} as day, coalesce(sum(cost_usd), 0) as spent_usd, count(distinct item)::int as items
    from llm_calls
    where at >= ${startOfToday(zone)}
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
 * Every schedule row with today's spend of its job (in the schedule's zone), and the spend of all
 * jobs together in `globalTimeZone`, in one statement: what GET /api/jobs/status shows, for the
 * price of the schedules' read alone. Each sum is an index range scan as spendToday's (without its
 * distinct count of items); the global one is computed once (an uncorrelated subquery).
 */
export async function schedulesWithSpend(db: Db, globalTimeZone: string): Promise<{ schedules: JobScheduleRow[]; spends: ScheduleSpend[] }> {
  // Qualified by hand: drizzle writes a single table's columns unqualified, and inside the
  // subqueries `"job_name"` would be llm_calls' own.
  const zone = sql.raw('job_schedule.timezone');
  const global = sql`${globalTimeZone}::text`;
  const globalSpent = sql<string>`(select coalesce(sum(c.cost_usd), 0) from llm_calls c where c.at >= ${startOfToday(global)})`;
  const rows = await db
    .select({
      schedule: jobSchedule,
      day: today(zone),
      spent: sql<string>`(select coalesce(sum(c.cost_usd), 0) from llm_calls c where c.job_name = job_schedule.job_name and c.at >= ${startOfToday(zone)})`,
      globalDay: today(global),
      globalSpent,
    })
    .from(jobSchedule)
    .orderBy(jobSchedule.id);
  // No schedule row yet (before the first start seeds them): the global spend on its own.
  const [first] = rows.length ? rows : await db.execute<{ globalDay: string; globalSpent: string }>(sql`select ${today(global)} as "globalDay", ${globalSpent} as "globalSpent"`).then((r) => r.rows);
  return {
    schedules: rows.map((row) => row.schedule),
    spends: [
      ...rows.map(({ schedule, day, spent }) => ({ job_name: schedule.job_name, timezone: schedule.timezone, daily_budget_usd: schedule.daily_budget_usd, day, spent_usd: Number(spent) })),
      { job_name: null, timezone: globalTimeZone, daily_budget_usd: null, day: first!.globalDay, spent_usd: Number(first!.globalSpent) },
    ],
  };
}
