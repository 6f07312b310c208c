import type { AlertKind } from '../db/schema.ts';

/**
 * What an alert says: a Slack-compatible `text` for people, and the same facts as fields for
 * machines (README "Alerts"). Built once, when the alert is raised, and stored with it; each
 * delivery attempt adds `alert_id` and `sent_at`.
 */

export type AlertFacts = {
  kind: AlertKind;
  job: string;
  /** The run it is about (job_logs.id); null when there is none (an overdue schedule). */
  logId: number | null;
  /** That run's pg-boss job id. */
  jobId: string | null;
  /** Why: the run's failure, the failed items' summary, how late a schedule is. */
  error: string | null;
  /** When it happened: the run's end, or the occurrence an overdue schedule missed. */
  occurredAt: Date;
  /** Kind-specific fields (overdue: `due_at`, `overdue_seconds`; recovered: `closes`). */
  details?: Record<string, unknown>;
};

/** The JSON body of an alert, as stored (without `alert_id` and `sent_at`, which delivery adds). */
export type AlertMessage = {
  text: string;
  kind: AlertKind;
  job: string;
  log_id: number | null;
  job_id: string | null;
  error: string | null;
  occurred_at: string;
  /** `GET /api/jobs/logs/{log_id}` under PUBLIC_URL (or the service's own URL); null without a run or a URL. */
  run_url: string | null;
  details: Record<string, unknown>;
};

/** A Slack message stays readable; the full error is in `error`. */
const TEXT_ERROR_MAX_CHARS = 500;
const clip = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

const HEADLINES: Record<AlertKind, (job: string) => string> = {
  dead_lettered: (job) => `:rotating_light: *${job}* failed for good (retries spent, dead-lettered)`,
  all_items_failed: (job) => `:warning: *${job}* completed with every item failed`,
  overdue: (job) => `:hourglass: *${job}* is overdue: no run has started since it was due (workers down or queue stuck?)`,
  budget_exhausted: (job) => `:money_with_wings: *${job}*: LLM budget exhausted`,
  recovered: (job) => `:white_check_mark: *${job}* recovered: a run succeeded`,
};

/** The link to a run in the API, or null when there is no run or no URL to build it on. */
export function runUrl(baseUrl: string, logId: number | null): string | null {
  if (logId === null || !baseUrl) return null;
  return `${baseUrl.replace(/\/+$/, '')}/api/jobs/logs/${logId}`;
}

export function alertMessage(facts: AlertFacts, baseUrl: string): AlertMessage {
  const url = runUrl(baseUrl, facts.logId);
  const lines = [HEADLINES[facts.kind](facts.job)];
  if (facts.error) lines.push(`> ${clip(facts.error, TEXT_ERROR_MAX_CHARS)}`);
  const closes = facts.details?.closes;
  if (Array.isArray(closes)) lines.push(`Closes: ${closes.map((c: { kind?: unknown }) => String(c.kind)).join(', ')}`);
  if (facts.logId !== null) lines.push(url ? `Run: <${url}|log ${facts.logId}>` : `Run: log ${facts.logId}`);
  return {
    text: lines.join('\n'),
    kind: facts.kind,
    job: facts.job,
    log_id: facts.logId,
    job_id: facts.jobId,
    error: facts.error,
    occurred_at: facts.occurredAt.toISOString(),
    run_url: url,
    details: facts.details ?? {},
  };
}
