import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { fromDrizzle, type JobWithMetadata, type PgBoss } from 'pg-boss';
import { z } from 'zod';
import { DEAD_LETTER_RETENTION, ensureQueue, JOB_QUEUE_RETENTION } from '../boss/client.ts';
import type { Db, Tx } from '../db/client.ts';
import { deadLetterQueueOf } from '../jobs/job.ts';
import type { Logger } from '../logger.ts';
import { recordDelivered, recordFailedAttempt, startAttempt } from './store.ts';

/**
 * Alerts reach the webhook through a pg-boss queue of their own, not a registry job: the runner,
 * the schedules and the dead-letter routes never see it. Every instance (whatever its ROLE) works
 * it, so an API-only instance can report that the workers are down. An attempt that fails or
 * times out is retried with exponential backoff; once retries are spent the job goes to
 * `alerts/webhook/dead-letter` and the alert reads `failed` in the history.
 *
 * Delivery is at least once: a process lost between the receiver's 2xx and its record sends again.
 */

/** A queue name is permanent. */
export const ALERT_QUEUE = 'alerts/webhook';

export type DeliveryOptions = {
  /** ALERT_WEBHOOK_URL: may carry a token, so it is never logged as is (maskWebhookUrl). */
  url: string;
  timeoutMs: number;
  /** Retries after the first attempt, and the first retry's delay (doubling, with jitter, up to an hour). */
  retryLimit: number;
  retryDelaySeconds: number;
};

const MAX_RETRY_DELAY_SECONDS = 3600;
/** A new alert is picked up at once where LISTEN/NOTIFY works, else within this; so is a retry that is due. */
const POLL_SECONDS = 2;
const ERROR_MAX_CHARS = 300;

const JobDataSchema = z.object({ alertId: z.number().int() });

/** The webhook URL as logs may show it: scheme and host only (Slack-style URLs carry their token in the path). */
export function maskWebhookUrl(url: string): string {
  try {
    const parsed = new URL(url);
    const hidden = parsed.pathname !== '/' || parsed.search !== '' || parsed.username !== '' || parsed.password !== '';
    return `${parsed.protocol}//${parsed.host}${hidden ? '/****' : '/'}`;
  } catch {
    return '[unparseable url]';
  }
}

/** Creates the queue and its dead-letter queue, or brings their options in line with these (several instances start at once). */
export async function ensureAlertQueue(boss: PgBoss, options: DeliveryOptions): Promise<void> {
  const deadLetter = deadLetterQueueOf(ALERT_QUEUE);
  await ensureQueue(boss, deadLetter, { ...DEAD_LETTER_RETENTION });
  await ensureQueue(boss, ALERT_QUEUE, {
    ...JOB_QUEUE_RETENTION,
    policy: 'standard',
    retryLimit: options.retryLimit,
    retryDelay: options.retryDelaySeconds,
    retryBackoff: true,
    retryDelayMax: Math.max(MAX_RETRY_DELAY_SECONDS, options.retryDelaySeconds),
    // An attempt ends at its own timeout; pg-boss's expiry is the backstop for a lost process.
    expireInSeconds: Math.ceil(options.timeoutMs / 1000) + 60,
    deadLetter,
    notify: true,
  });
}

/** Queues the delivery of an alert inside the caller's transaction (it commits with the alert, or neither does). */
export async function enqueueDelivery(boss: PgBoss, tx: Tx, alertId: number, deliveryJobId: string): Promise<void> {
  await boss.send(ALERT_QUEUE, { alertId }, { id: deliveryJobId, db: fromDrizzle(tx, sql) });
}

/** The id an alert's delivery job will have: recorded with the alert, given to pg-boss on send. */
export const newDeliveryJobId = (): string => randomUUID();

/** Works the alerts queue in this process until pg-boss stops. */
export async function workDeliveries(boss: PgBoss, db: Db, options: DeliveryOptions, logger: Logger): Promise<void> {
  const webhook = maskWebhookUrl(options.url);
  await boss.work(
    ALERT_QUEUE,
    { includeMetadata: true, batchSize: 1, pollingIntervalSeconds: POLL_SECONDS, notifyPollingIntervalSeconds: POLL_SECONDS },
    async ([job]) => deliver(job!),
  );

  async function deliver(job: JobWithMetadata<unknown>): Promise<void> {
    const { alertId } = JobDataSchema.parse(job.data);
    const alert = await startAttempt(db, alertId);
    if (!alert) return;
    const fields = { alertId, kind: alert.kind, job: alert.job_name, attempt: alert.attempts, webhook };
    const body = JSON.stringify({ ...alert.payload, alert_id: alert.id, sent_at: new Date().toISOString() });
    const failure = await post(options.url, body, AbortSignal.any([job.signal, AbortSignal.timeout(options.timeoutMs)]), options.timeoutMs);
    if (failure === null) {
      await recordDelivered(db, alertId);
      logger.info(fields, `${alert.kind} alert ${alertId} for ${alert.job_name} delivered to ${webhook}`);
      return;
    }
    const final = job.retryCount >= job.retryLimit;
    await recordFailedAttempt(db, alertId, failure, final);
    if (final) {
      logger.error(fields, `${alert.kind} alert ${alertId} for ${alert.job_name} not delivered after ${alert.attempts} attempts (${failure}); dead-lettered`);
    } else {
      logger.warn(fields, `${alert.kind} alert ${alertId} for ${alert.job_name}: delivery attempt ${alert.attempts} failed (${failure}); will retry`);
    }
    // pg-boss retries it, or dead-letters it once retries are spent.
    throw new Error(failure);
  }
}

/** POSTs the alert; null when the receiver took it (2xx), else why not (with no trace of the URL). */
async function post(url: string, body: string, signal: AbortSignal, timeoutMs: number): Promise<string | null> {
  try {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': 'memodrops-scheduler-alerts' }, body, signal, redirect: 'error' });
    // Read to the end (under the same timeout), so the connection can be reused.
    const text = await res.text();
    if (res.ok) return null;
    return clip(`HTTP ${res.status}${text.trim() ? `: ${text.trim()}` : ''}`, url);
  } catch (error) {
    const reason = (error as Error).name === 'TimeoutError'
      ? `timed out after ${timeoutMs / 1000} s`
      : signal.aborted
        ? 'aborted: the service is stopping'
        : connectionError(error);
    return clip(reason, url);
  }
}

/** fetch says "fetch failed"; the cause says what happened (ECONNREFUSED, ENOTFOUND...). */
function connectionError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return `connection failed: ${cause?.code ?? cause?.message ?? (error as Error).message ?? String(error)}`;
}

/** Bounded, and scrubbed of the URL should an error message ever quote it. */
const clip = (text: string, url: string) => {
  const scrubbed = text.split(url).join(maskWebhookUrl(url));
  return scrubbed.length <= ERROR_MAX_CHARS ? scrubbed : `${scrubbed.slice(0, ERROR_MAX_CHARS - 1)}…`;
};
