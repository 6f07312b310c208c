import { and, desc, eq, inArray, ne, sql } from 'drizzle-orm';
import type { Db, Tx } from '../db/client.ts';
import { alerts, alertState, type AlertDeliveryStatus, type AlertKind, type AlertRow, type FailureAlertKind } from '../db/schema.ts';
import type { AlertFacts, AlertMessage } from './message.ts';

/**
 * Every statement on alert_state (which failure alerts stand, per job and kind) and alerts (the
 * history: what was raised, and how its delivery went).
 */


/**
 * Opens the (job, kind) state unless it is open already; true when this call opened it. One
 * statement: instances racing on the same row meet at its primary key, the later one waits for
 * the first to commit, then finds it open and changes nothing.
 */
export async function openState(tx: Tx, job: string, kind: FailureAlertKind): Promise<boolean> {
  const opened = await tx
    .insert(alertState)
    .values({ job_name: job, kind, open: true, opened_at: sql`now()` })
    .onConflictDoUpdate({
      target: [alertState.job_name, alertState.kind],
      set: { open: true, opened_at: sql`now()`, closed_at: null, alert_id: null },
      setWhere: sql`not ${alertState.open}`,
    })
    .returning({ job_name: alertState.job_name });
  return opened.length > 0;
}

/** Links the open state to the alert that opened it. */
export async function linkState(tx: Tx, job: string, kind: FailureAlertKind, alertId: number): Promise<void> {
  await tx.update(alertState).set({ alert_id: alertId }).where(and(eq(alertState.job_name, job), eq(alertState.kind, kind)));
}

/** Whether any failure alert of the job stands: a cheap look before a recovery's transaction. */
export async function hasOpenState(db: Db, job: string): Promise<boolean> {
  const [row] = await db.select({ kind: alertState.kind }).from(alertState).where(and(eq(alertState.job_name, job), eq(alertState.open, true))).limit(1);
  return Boolean(row);
}

/** The jobs whose alert of that kind stands: one read for a pass over every job. */
export async function jobsWithOpenState(db: Db, kind: FailureAlertKind): Promise<Set<string>> {
  const rows = await db.select({ job_name: alertState.job_name }).from(alertState).where(and(eq(alertState.kind, kind), eq(alertState.open, true)));
  return new Set(rows.map((row) => row.job_name));
}

export type ClosedState = { kind: FailureAlertKind; alert_id: number | null; opened_at: Date | null };

/** Closes every open failure alert of the job; returns what it closed (nothing when another run got there first). */
export function closeStates(tx: Tx, job: string): Promise<ClosedState[]> {
  return tx
    .update(alertState)
    .set({ open: false, closed_at: sql`now()` })
    .where(and(eq(alertState.job_name, job), eq(alertState.open, true)))
    .returning({ kind: alertState.kind, alert_id: alertState.alert_id, opened_at: alertState.opened_at });
}

/** Records a raised alert, pending delivery by its job `deliveryJobId` in the alerts queue. */
export async function insertAlert(tx: Tx, facts: AlertFacts, message: AlertMessage, deliveryJobId: string): Promise<number> {
  const [row] = await tx
    .insert(alerts)
    .values({
      kind: facts.kind,
      job_name: facts.job,
      log_id: facts.logId,
      job_id: facts.jobId,
      error: facts.error,
      occurred_at: facts.occurredAt,
      payload: message,
      delivery_job_id: deliveryJobId,
    })
    .returning({ id: alerts.id });
  return row!.id;
}

/** Marks failure alerts as closed by the `recovered` alert `by`. */
export async function markResolved(tx: Tx, ids: number[], by: number): Promise<void> {
  if (ids.length > 0) await tx.update(alerts).set({ resolved_by: by }).where(inArray(alerts.id, ids));
}

/** Counts a delivery attempt; returns the alert, or null when it is gone or delivered already (a retry after a lost record). */
export async function startAttempt(db: Db, id: number): Promise<AlertRow | null> {
  const [row] = await db
    .update(alerts)
    .set({ attempts: sql`${alerts.attempts} + 1`, last_attempt_at: sql`now()` })
    .where(and(eq(alerts.id, id), ne(alerts.status, 'delivered')))
    .returning();
  return row ?? null;
}

export async function recordDelivered(db: Db, id: number): Promise<void> {
  await db.update(alerts).set({ status: 'delivered', delivered_at: sql`now()` }).where(eq(alerts.id, id));
}

/** An attempt failed; `final`: no retry is left, the alert is dead-lettered undelivered. */
export async function recordFailedAttempt(db: Db, id: number, error: string, final: boolean): Promise<void> {
  await db
    .update(alerts)
    .set({ last_error: error, ...(final && { status: 'failed' as const }) })
    .where(and(eq(alerts.id, id), ne(alerts.status, 'delivered')));
}

/** One alert of the history, as `listAlerts` returns it (and `GET /api/alerts` answers). */
export type Alert = {
  id: number;
  kind: AlertKind;
  job_name: string;
  /** The run it is about, and its pg-boss job; null for an overdue schedule. */
  log_id: number | null;
  job_id: string | null;
  error: string | null;
  /** When what it reports happened. */
  occurred_at: string;
  /** When it was raised (and queued for delivery). */
  created_at: string;
  /** pending (queued or retrying), delivered, or failed (retries spent: in the alerts dead-letter queue). */
  status: AlertDeliveryStatus;
  delivered: boolean;
  delivered_at: string | null;
  attempts: number;
  last_attempt_at: string | null;
  /** The last failed attempt's reason (kept after a later attempt succeeds). */
  last_error: string | null;
  /** The `recovered` alert that closed this failure alert. */
  resolved_by: number | null;
  /** The JSON body sent, but for `alert_id` and `sent_at` (set at each attempt). */
  message: Record<string, unknown>;
};

const iso = (date: Date | null) => (date ? date.toISOString() : null);

function toAlert(row: AlertRow): Alert {
  return {
    id: row.id,
    kind: row.kind,
    job_name: row.job_name,
    log_id: row.log_id,
    job_id: row.job_id,
    error: row.error,
    occurred_at: row.occurred_at.toISOString(),
    created_at: row.created_at.toISOString(),
    status: row.status,
    delivered: row.status === 'delivered',
    delivered_at: iso(row.delivered_at),
    attempts: row.attempts,
    last_attempt_at: iso(row.last_attempt_at),
    last_error: row.last_error,
    resolved_by: row.resolved_by,
    message: row.payload,
  };
}

/** The alert history, newest first: what was raised, when, and whether it was delivered. */
export async function listAlerts(db: Db, { limit, offset }: { limit: number; offset: number }): Promise<Alert[]> {
  const rows = await db.select().from(alerts).orderBy(desc(alerts.id)).limit(limit).offset(offset);
  return rows.map(toAlert);
}
