import type { SchedulerEventMap, SchedulerEvents } from '../events.ts';
import type { Logger } from '../logger.ts';
import type { Alerter } from './alerter.ts';

/**
 * Which runs raise or close alerts, from the event seam: the runner knows nothing of alerts. A
 * listener only writes the alert and queues its delivery (a short transaction, not awaited by the
 * runner); the webhook is called by the delivery worker, so a slow receiver never holds up a run.
 *
 * Extension point, `budget_exhausted` (the LLM economics issue): emit an event of its own (say
 * `llm:budget_exhausted` with the job and the spend) and subscribe here with
 * `alerter.raise({ kind: 'budget_exhausted', job, logId, jobId, error, occurredAt })`. The kind is
 * in the tables already; the job's next successful run sends its recovery like any other.
 */

type RunEnd = SchedulerEventMap['run:end'];
type RunReaped = SchedulerEventMap['run:reaped'];

/**
 * What a run's end means for alerts:
 * - `dead_lettered`: it failed for good (retries spent, or a setting no retry can fix);
 * - `all_items_failed`: it completed, but every item it tried failed. The runner counts items that
 *   succeeded in itemsProcessed and failed ones in itemsFailed, so that is itemsFailed > 0 and
 *   itemsProcessed = 0 (a run with nothing to do is a success);
 * - `success`: any other completed run: it closes the job's open failure alerts;
 * - null: a failure pg-boss retries (or a pending retry takes over): not yet a reason to alert; or
 *   a run an operator cancelled (FAILED, neither retried nor dead-lettered): not a failure at all.
 */
export function classifyRun(event: RunEnd): 'dead_lettered' | 'all_items_failed' | 'success' | null {
  if (event.status === 'FAILED') return event.deadLettered ? 'dead_lettered' : null;
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

  const offs = [events.on('run:end', onRunEnd), events.on('run:reaped', onRunReaped)];
  return {
    async stop() {
      for (const off of offs.splice(0)) off();
      await Promise.allSettled([...inFlight]);
    },
  };
}
