import type { SchedulerEventMap, SchedulerEvents } from '../events.ts';
import type { Logger } from '../logger.ts';
import type { Alerter } from './alerter.ts';

/**
 * Which runs raise or close alerts, from the event seam: the runner knows nothing of alerts. A
 * listener only writes the alert and queues its delivery (a short transaction, not awaited by the
 * runner); the webhook is called by the delivery worker, so a slow receiver never holds up a run.
 *
 * `budget_exhausted` (issue 13): `llm:budget_exhausted` raises it. A budget-stopped run is COMPLETED
 * but neither a success nor a failure here (its run:end is ignored), so it sends no recovery for the
 * alert it raised; with one open alert per (job, kind), runs stopped on the budget later the same day
 * (or while it stays open) send nothing more. The job's next run that completes without hitting a
 * budget (the next day's first, or one after the budget was raised) closes it with a recovery.
 */

type RunEnd = SchedulerEventMap['run:end'];
type RunReaped = SchedulerEventMap['run:reaped'];
type BudgetExhausted = SchedulerEventMap['llm:budget_exhausted'];

/**
 * What a run's end means for alerts:
 * - `dead_lettered`: it failed for good (retries spent, or a setting no retry can fix);
 * - `all_items_failed`: it completed, but every item it tried failed. The runner counts items that
 *   succeeded in itemsProcessed and failed ones in itemsFailed, so that is itemsFailed > 0 and
 *   itemsProcessed = 0 (a run with nothing to do is a success);
 * - `success`: any other completed run: it closes the job's open failure alerts;
 * - null: a run stopped on a daily LLM budget (alerted by `llm:budget_exhausted`); a failure pg-boss retries (or a pending retry takes over): not yet a reason to alert; or
 *   a run an operator cancelled (FAILED, neither retried nor dead-lettered): not a failure at all.
 */
export function classifyRun(event: RunEnd): 'dead_lettered' | 'all_items_failed' | 'success' | null {
  if (event.status === 'FAILED') return event.deadLettered ? 'dead_lettered' : null;
  // Stopped on a budget: llm:budget_exhausted alerts it; not yet the success that closes the alert.
  if (event.budgetExhausted) return null;
  if (event.itemsFailed > 0 && event.itemsProcessed === 0) return 'all_items_failed';
  return 'success';
}

/**
 * A run the reaper closed (its worker was lost) fails for good when pg-boss failed that attempt with
 * no retry left: it went to the dead-letter queue like any run:end with retries spent. Its recovery
 * is the job's next successful run, as for any failure.
 */
export function classifyReaped(event: RunReaped): 'dead_lettered' | null {
  return event.deadLettered ? 'dead_lettered' : null;
}

/** What a reaped run's log says (closeLostRun): the alert quotes it as a run's failure. */
const LOST_WORKER_ERROR = 'interrupted: worker lost';

export type AlertRules = {
  /** Unsubscribes, then waits for the alerts being written. Safe to call twice. */
  stop(): Promise<void>;
};

export function subscribeAlertRules(events: SchedulerEvents, alerter: Alerter, logger: Logger): AlertRules {
  const inFlight = new Set<Promise<unknown>>();

  /** Writes the alert in the background; stop() waits for it. */
  const track = (run: { job: string; jobId: string | null; logId: number }, work: Promise<unknown>) => {
    const tracked = work.catch((error: unknown) =>
      logger.error({ err: error, job: run.job, jobId: run.jobId, logId: run.logId }, `could not record the alert for run ${run.logId} of ${run.job}`),
    );
    inFlight.add(tracked);
    void tracked.finally(() => inFlight.delete(tracked));
  };

  const onRunEnd = (event: RunEnd) => {
    const verdict = classifyRun(event);
    if (verdict === null) return;
    const facts = { job: event.job, logId: event.logId, jobId: event.jobId, occurredAt: new Date() };
    track(event, verdict === 'success' ? alerter.recover(facts) : alerter.raise({ ...facts, kind: verdict, error: event.error }));
  };

  const onRunReaped = (event: RunReaped) => {
    const verdict = classifyReaped(event);
    if (verdict === null) return;
    track(event, alerter.raise({ kind: verdict, job: event.job, logId: event.logId, jobId: event.jobId, error: LOST_WORKER_ERROR, occurredAt: new Date() }));
  };

  const onBudgetExhausted = (event: BudgetExhausted) => {
    const error = `${event.scope === 'job' ? 'daily' : 'global daily (LLM_DAILY_BUDGET_USD)'} LLM budget $${event.dailyBudgetUsd} for ${event.day} spent ($${event.spentTodayUsd}): the run stopped and gave back the items it had not started`;
    const details = { scope: event.scope, daily_budget_usd: event.dailyBudgetUsd, spent_today_usd: event.spentTodayUsd, day: event.day };
    track(event, alerter.raise({ kind: 'budget_exhausted', job: event.job, logId: event.logId, jobId: event.jobId, error, occurredAt: new Date(), details }));
  };

  const offs = [events.on('run:end', onRunEnd), events.on('run:reaped', onRunReaped), events.on('llm:budget_exhausted', onBudgetExhausted)];
  return {
    async stop() {
      for (const off of offs.splice(0)) off();
      await Promise.allSettled([...inFlight]);
    },
  };
}
