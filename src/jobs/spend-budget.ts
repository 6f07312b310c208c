import type { Db } from '../db/client.ts';
import { spendToday, type DaySpend } from '../db/llm-spend.ts';

/**
 * Daily LLM budgets (issue 13), checked from the ledger in PostgreSQL before each item, so they
 * hold across instances and restarts. The rule: before an item the run writes its own buffered
 * ledger records, reads today's spend, and stops when
 *   spent ≥ budget, or spent + expected > budget,
 * where `expected` is the mean cost of one item today: today's spend of the job / the distinct items
 * its calls were for; before the job's first call of the day, the same over every job's calls today
 * (one more query, until the job's first call is in the ledger); 0 before any call today. Items already started go on, so the
 * overshoot is at most what the calls in flight cost (LLM_CONCURRENCY calls' worth, re-asks included).
 */

export type BudgetLimit = {
  /** `job`: the schedule's daily_budget_usd; `global`: LLM_DAILY_BUDGET_USD across all jobs. */
  scope: 'job' | 'global';
  daily_budget_usd: number;
  /** Whose day: the schedule's zone (job), SCHEDULER_TIMEZONE (global). */
  timezone: string;
};

/** Why a run stopped, as its log's metadata.budget says. */
export type BudgetStop = { scope: 'job' | 'global'; daily_budget_usd: number; spent_today_usd: number; expected_item_usd: number; day: string };

export type SpendBudget = {
  /** Before an item: false once the next item could go past a budget (and from then on). */
  allows(): Promise<boolean>;
  /** Set once `allows()` said no. */
  readonly stopped: BudgetStop | null;
};

/** No budget in force: no reads, no writes. */
export const NO_BUDGET: SpendBudget = { allows: async () => true, stopped: null };

const round8 = (usd: number) => Math.round(usd * 1e8) / 1e8;

export function createSpendBudget({ db, jobName, limits, flush }: { db: Db; jobName: string; limits: BudgetLimit[]; flush(): Promise<void> }): SpendBudget {
  if (limits.length === 0) return NO_BUDGET;
  let stopped: BudgetStop | null = null;
  return {
    get stopped() {
      return stopped;
    },
    async allows() {
      if (stopped) return false;
      // Our own calls so far must be in the ledger before it is read.
      await flush();
      // The job's own per-item mean, in the job's day, prices the next item under either budget.
      const zone = (limits.find((limit) => limit.scope === 'job') ?? limits[0]!).timezone;
      const jobToday = await spendToday(db, { jobName, timeZone: zone });
      const allToday = jobToday.items > 0 ? null : await spendToday(db, { jobName: null, timeZone: zone });
      const meanOf = (spend: DaySpend | null) => (spend && spend.items > 0 ? spend.spent_usd / spend.items : 0);
      const expected = jobToday.items > 0 ? meanOf(jobToday) : meanOf(allToday);
      for (const limit of limits) {
        const reusable = allToday && limit.timezone === zone ? allToday : null;
        const today = limit.scope === 'job' ? jobToday : (reusable ?? (await spendToday(db, { jobName: null, timeZone: limit.timezone })));
        if (today.spent_usd >= limit.daily_budget_usd || today.spent_usd + expected > limit.daily_budget_usd) {
          stopped ??= { scope: limit.scope, daily_budget_usd: limit.daily_budget_usd, spent_today_usd: round8(today.spent_usd), expected_item_usd: round8(expected), day: today.day };
          return false;
        }
      }
      return !stopped;
    },
  };
}

/** What a run's log says of its budget: nothing, unless it stopped on one. */
export function budgetMetadata(budget: SpendBudget): Record<string, unknown> {
  return budget.stopped ? { budget_exhausted: true, budget: budget.stopped } : {};
}

/** The log line of a run that stopped on a budget. */
export const budgetStopMessage = (stop: BudgetStop, left: number, noun: string) =>
  `budget_exhausted: ${stop.scope} daily budget $${stop.daily_budget_usd} for ${stop.day}, spent $${stop.spent_today_usd} (next item ~$${stop.expected_item_usd}); ${left} ${noun} given back`;
