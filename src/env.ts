import { isIP } from 'node:net';
import { z } from 'zod';
import { ConfigurationError } from './errors.ts';
import { isValidTimeZone } from './time-zone.ts';

/** Every environment variable the service reads. The only module that looks at process.env. */

export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '[::1]';
}

/** A whole number in [min, max]; the message says so, whatever was wrong. */
const wholeNumber = (min: number, max: number) => {
  const message = `must be a whole number from ${min} to ${max}`;
  return z.coerce.number({ error: message }).int(message).min(min, message).max(max, message);
};
const int = (fallback: number, min: number, max: number) => wholeNumber(min, max).default(fallback);
const seconds = (fallback: number, min = 1, max = 86_400) => int(fallback, min, max);
const flag = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0'], { error: 'must be true or false' })
    .default(fallback ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1');
const timeZone = z.string().refine(isValidTimeZone, { error: (issue) => `"${String(issue.input)}" is not an IANA time zone` });

const serverTimeZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

export const EnvSchema = z
  .object({
    PORT: int(3333, 0, 65_535),
    HOST: z.string().trim().min(1).default('127.0.0.1'),
    DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// or postgresql:// URL' }).optional(),
    DATA_DIR: z.string().trim().min(1).default('./data'),
    EMBEDDED_PG_PORT: int(54329, 1, 65_535),
    OPENAI_API_KEY: z.string().trim().min(1).optional(),
    OPENAI_BASE_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
    OPENAI_MODEL: z.string().trim().min(1).default('gpt-4o-mini'),
    /** Per-request timeout of one LLM call. */
    OPENAI_TIMEOUT_SECONDS: seconds(60, 1, 600),
    /** Retries of one LLM call after 429, 5xx or a connection error, with exponential backoff. */
    OPENAI_MAX_RETRIES: int(2, 0, 5),
    /** Longest wait a server's Retry-After can impose before a retry (the SDK alone obeys any value). */
    OPENAI_RETRY_AFTER_MAX_SECONDS: seconds(30, 1, 300),
    API_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
    /** A second token that may only read (GET); mutations with it are 403. */
    API_TOKEN_READONLY: z.string().min(16, 'must be at least 16 characters').optional(),
    /** Browser origins allowed by CORS, comma-separated (e.g. https://admin.example.com). Unset: CORS off. */
    CORS_ORIGINS: z
      .string()
      .transform((v) => v.split(',').map((o) => o.trim()).filter(Boolean))
      .pipe(z.array(z.url({ protocol: /^https?$/, error: 'each origin must be an http(s) URL' })))
      .optional(),
    /** Manual runs (POST /api/jobs/run/:job) a client may request per minute. */
    RUN_RATE_LIMIT_PER_MINUTE: int(10, 1, 10_000),
    /** What this process does: everything, only the HTTP API, or only workers and cron. */
    ROLE: z.enum(['all', 'api', 'worker'], { error: 'must be all, api or worker' }).default('all'),
    /** ROLE=worker serves no API; with this set it serves GET /metrics and GET /healthz on this port (on HOST), for Prometheus. */
    METRICS_PORT: wholeNumber(0, 65_535).optional(),
    /** How long startup keeps retrying an unreachable database before giving up. */
    DB_STARTUP_TIMEOUT_SECONDS: seconds(60, 1, 3600),
    /**
     * Most connections the service's own pool (our tables, HTTP routes, runs) opens. Idle ones close
     * after 10 s. 2 at least: a run's transaction and the reaper or a request must not wait on each other.
     */
    DB_POOL_MAX: int(10, 2, 1000),
    /**
     * Most connections pg-boss's pool opens (fetches, heartbeats, cron, maintenance); its LISTEN
     * connection (ROLE all/worker with USE_LISTEN_NOTIFY) is one more. 2 at least: a worker's fetch
     * must not queue behind a maintenance pass.
     */
    PGBOSS_POOL_MAX: int(10, 2, 1000),
    SCHEDULER_TIMEZONE: timeZone.optional(),
    TZ: timeZone.optional(),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** `pretty` for a terminal; `json` (one object a line) for log shippers. Default: pretty on a TTY. */
    LOG_FORMAT: z.enum(['json', 'pretty']).optional(),
    /** How often pg-boss looks for due cron occurrences (its defaults make a job start up to ~37 s late). */
    CRON_WORKER_INTERVAL_SECONDS: seconds(1, 1, 45),
    CRON_MONITOR_INTERVAL_SECONDS: seconds(1, 1, 45),
    /** LISTEN/NOTIFY wakes workers the moment a job is created instead of at their next poll. */
    USE_LISTEN_NOTIFY: flag(true),
    /** How often table edits made outside the API (psql, Drizzle Studio) are applied to pg-boss. */
    SCHEDULE_SYNC_SECONDS: seconds(2, 1, 300),
    /** How long a graceful stop waits for running jobs. */
    SHUTDOWN_TIMEOUT_SECONDS: seconds(30, 1, 3600),
    /** job_logs rows older than this are deleted (ROLE all/worker, at start and hourly); 0 keeps them all. */
    JOB_LOGS_RETENTION_DAYS: int(90, 0, 36_500),
    /**
     * Where failure alerts are POSTed (Slack-compatible JSON, README "Alerts"). Unset: alerts off.
     * It may carry a token (Slack's does, in its path): logs show its scheme and host only.
     */
    ALERT_WEBHOOK_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
    /** A schedule whose due run has not started this long after it was due is alerted as overdue. */
    ALERT_OVERDUE_SECONDS: seconds(300, 1, 7 * 86_400),
    /** How often every instance (whatever its ROLE) looks for overdue schedules. */
    ALERT_CHECK_SECONDS: seconds(30, 1, 3600),
    /** How long one delivery attempt may take before it counts as failed (and is retried). */
    ALERT_WEBHOOK_TIMEOUT_SECONDS: seconds(10, 1, 300),
    /** Retries of an undelivered alert before it is dead-lettered, exponential backoff from ALERT_RETRY_DELAY_SECONDS (capped at 1 h). */
    ALERT_RETRY_LIMIT: int(5, 0, 50),
    ALERT_RETRY_DELAY_SECONDS: seconds(30, 1, 3600),
    /** Base URL of the API as its readers reach it, for the run links in alerts. Unset: the service's own address. */
    PUBLIC_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
    EXTRACT_BATCH_SIZE: int(10, 1, 1000),
    /** LLM calls in flight at once within one run (items of extract-blueprints, topics of generate-drops). */
    LLM_CONCURRENCY: int(4, 1, 64),
    DROPS_BATCH_SIZE: int(5, 1, 1000),
    /** JSON `{ "<model>": { input, cached_input?, output } }` in USD per 1 M tokens, over the built-in prices (src/llm/prices.ts). */
    LLM_PRICES_FILE: z.string().trim().min(1).optional(),
    /** Most all jobs' LLM calls together may cost per day of SCHEDULER_TIMEZONE, USD; unset = no global budget. */
    LLM_DAILY_BUDGET_USD: z.coerce.number<string>('must be a number of USD').min(0, 'must be 0 or more').optional(),
  })
  .transform(({ TZ, SCHEDULER_TIMEZONE, LOG_FORMAT, ...env }) => ({
    ...env,
    LOG_FORMAT: LOG_FORMAT ?? (process.stdout.isTTY ? 'pretty' : 'json'),
    SCHEDULER_TIMEZONE: SCHEDULER_TIMEZONE ?? TZ ?? serverTimeZone(),
  }))
  .superRefine((env, ctx) => {
    if (env.API_TOKEN_READONLY && !env.API_TOKEN) {
      ctx.addIssue({ code: 'custom', path: ['API_TOKEN_READONLY'], message: 'needs API_TOKEN too (the read-only token alone would leave mutations open)' });
    }
    if (!env.API_TOKEN && !isLoopbackHost(env.HOST)) {
      ctx.addIssue({
        code: 'custom',
        path: ['HOST'],
        message: `refusing to listen on ${env.HOST} without API_TOKEN: set API_TOKEN or bind to 127.0.0.1`,
      });
    }
  });

export type Env = z.infer<typeof EnvSchema>;

export class EnvError extends ConfigurationError {}

/** Parses the environment; the error names each bad variable. */
export function parseEnv(source: Record<string, string | undefined> = process.env): Env {
  // An empty value means "not set", as in most .env tooling.
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const result = EnvSchema.safeParse(cleaned);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => `  ${issue.path.join('.') || 'env'}: ${issue.message}`);
  const variables = [...new Set(result.error.issues.map((issue) => String(issue.path[0] ?? 'env')))];
  throw new EnvError(`Invalid configuration:\n${lines.join('\n')}`, variables);
}
