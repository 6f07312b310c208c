import type { PgBoss } from 'pg-boss';
import type { Db } from '../db/client.ts';
import type { Env } from '../env.ts';
import type { SchedulerEvents } from '../events.ts';
import type { Registry } from '../jobs/registry.ts';
import type { Logger } from '../logger.ts';
import { createAlerter } from './alerter.ts';
import { ensureAlertQueue, maskWebhookUrl, workDeliveries, type DeliveryOptions } from './delivery.ts';
import { createOverdueCheck } from './overdue.ts';
import { subscribeAlertRules } from './rules.ts';

export { listAlerts, type Alert } from './store.ts';

/**
 * Failure alerts to ALERT_WEBHOOK_URL (issue 11, README "Alerts"): rules on the event seam and an
 * overdue check raise them; the state in PostgreSQL keeps each to one per (job, kind) until the
 * job recovers; a queue of their own delivers them.
 */

export type AlertsDeps = {
  env: Pick<Env, 'ALERT_WEBHOOK_URL' | 'ALERT_OVERDUE_SECONDS' | 'ALERT_CHECK_SECONDS' | 'ALERT_WEBHOOK_TIMEOUT_SECONDS' | 'ALERT_RETRY_LIMIT' | 'ALERT_RETRY_DELAY_SECONDS'>;
  db: Db;
  boss: PgBoss;
  registry: Registry;
  events: SchedulerEvents;
  logger: Logger;
  /** Base of the run links: PUBLIC_URL, else the service's own URL once it listens. */
  baseUrl: () => string;
};

export type Alerts = {
  /** One overdue pass (the service runs it every ALERT_CHECK_SECONDS); resolves with the alerts raised. */
  checkOverdue(): Promise<number>;
  /** Stops raising alerts and waits for those being written; delivery stops with pg-boss. Safe to call twice. */
  stop(): Promise<void>;
};

/** Starts delivery and the rules on a started pg-boss; null (said once) when ALERT_WEBHOOK_URL is unset. */
export async function startAlerts({ env, db, boss, registry, events, logger, baseUrl }: AlertsDeps): Promise<Alerts | null> {
  if (!env.ALERT_WEBHOOK_URL) {
    logger.info('alerts off: ALERT_WEBHOOK_URL is not set');
    return null;
  }
  const delivery: DeliveryOptions = {
    url: env.ALERT_WEBHOOK_URL,
    timeoutMs: env.ALERT_WEBHOOK_TIMEOUT_SECONDS * 1000,
    retryLimit: env.ALERT_RETRY_LIMIT,
    retryDelaySeconds: env.ALERT_RETRY_DELAY_SECONDS,
  };
  await ensureAlertQueue(boss, delivery);
  await workDeliveries(boss, db, delivery, logger);
  const alerter = createAlerter({ db, boss, logger, baseUrl });
  const overdue = createOverdueCheck({ db, boss, registry, alerter, logger, overdueSeconds: env.ALERT_OVERDUE_SECONDS });
  // Last: once subscribed, the releaser must run.
  const rules = subscribeAlertRules(events, alerter, logger);
  const webhook = maskWebhookUrl(env.ALERT_WEBHOOK_URL);
  logger.info(
    { webhook, overdueSeconds: env.ALERT_OVERDUE_SECONDS, checkSeconds: env.ALERT_CHECK_SECONDS },
    `alerts on: POSTed to ${webhook}; schedules overdue after ${env.ALERT_OVERDUE_SECONDS} s (checked every ${env.ALERT_CHECK_SECONDS} s)`,
  );
  return { checkOverdue: () => overdue.check(), stop: () => rules.stop() };
}
