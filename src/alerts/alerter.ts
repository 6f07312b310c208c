import type { PgBoss } from 'pg-boss';
import type { Db, Tx } from '../db/client.ts';
import type { FailureAlertKind } from '../db/schema.ts';
import type { Logger } from '../logger.ts';
import { enqueueDelivery, newDeliveryJobId } from './delivery.ts';
import { alertMessage, type AlertFacts } from './message.ts';
import { closeStates, hasOpenState, insertAlert, linkState, markResolved, openState } from './store.ts';

/**
 * Raises and recovers alerts: the state change, the history row and the delivery job commit in
 * one transaction, so an alert is queued exactly when its state flips, on whichever instance flips
 * it. Nothing here waits for the receiver.
 */

export type FailureFacts = Omit<AlertFacts, 'kind'> & { kind: FailureAlertKind };
export type RecoveryFacts = Pick<AlertFacts, 'job' | 'logId' | 'jobId' | 'occurredAt'>;

export type Alerter = {
  /**
   * Opens the job's alert of that kind and queues it, unless one is open already (never the same
   * alert twice in a row). `stillTrue`, checked inside the transaction, may call it off. Resolves
   * with the new alert's id, or null.
   */
  raise(facts: FailureFacts, stillTrue?: (tx: Tx) => Promise<boolean>): Promise<number | null>;
  /** Closes the job's open failure alerts with one `recovered` alert; null when none was open. */
  recover(facts: RecoveryFacts): Promise<number | null>;
};

export type AlerterDeps = {
  db: Db;
  boss: PgBoss;
  logger: Logger;
  /** Where run links point: PUBLIC_URL, else the service's own URL ('' until it listens, or without HTTP). */
  baseUrl: () => string;
};

export function createAlerter({ db, boss, logger, baseUrl }: AlerterDeps): Alerter {
  /** The history row and its delivery job, in the caller's transaction. */
  async function record(tx: Tx, facts: AlertFacts): Promise<number> {
    const deliveryJobId = newDeliveryJobId();
    const id = await insertAlert(tx, facts, alertMessage(facts, baseUrl()), deliveryJobId);
    await enqueueDelivery(boss, tx, id, deliveryJobId);
    return id;
  }

  return {
    async raise(facts, stillTrue) {
      const id = await db.transaction(async (tx) => {
        if (stillTrue && !(await stillTrue(tx))) return null;
        if (!(await openState(tx, facts.job, facts.kind))) return null;
        const alertId = await record(tx, facts);
        await linkState(tx, facts.job, facts.kind, alertId);
        return alertId;
      });
      const fields = { alert: facts.kind, job: facts.job, logId: facts.logId, jobId: facts.jobId };
      if (id === null) logger.debug(fields, `${facts.kind} alert for ${facts.job} already open: not sent again`);
      else logger.info({ ...fields, alertId: id }, `${facts.kind} alert ${id} raised for ${facts.job}`);
      return id;
    },

    async recover(facts) {
      // Most successful runs follow a success: one indexed read, no transaction.
      if (!(await hasOpenState(db, facts.job))) return null;
      const result = await db.transaction(async (tx) => {
        const closed = await closeStates(tx, facts.job);
        if (closed.length === 0) return null;
        const closes = closed.map((state) => ({ kind: state.kind, alert_id: state.alert_id, opened_at: state.opened_at?.toISOString() ?? null }));
        const id = await record(tx, { ...facts, kind: 'recovered', error: null, details: { closes } });
        await markResolved(tx, closed.flatMap((state) => (state.alert_id === null ? [] : [state.alert_id])), id);
        return { id, kinds: closed.map((state) => state.kind) };
      });
      if (result) logger.info({ alert: 'recovered', job: facts.job, logId: facts.logId, alertId: result.id, closes: result.kinds }, `recovered alert ${result.id} raised for ${facts.job} (closes ${result.kinds.join(', ')})`);
      return result?.id ?? null;
    },
  };
}
