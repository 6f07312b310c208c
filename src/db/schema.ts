import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  check,
  index,
  integer,
  jsonb,
  numeric,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

/**
 * The tables we own. Property names are the snake_case column names so rows serialize to the
 * shapes of the design document as they are. pg-boss keeps its own schema (`pgboss`).
 */

/** The SQL list of a check constraint: `'a', 'b'`. */
const inList = (values: readonly string[]) => sql.raw(values.map((v) => `'${v}'`).join(', '));

/** A cost in USD: exact decimals (sums do not drift), read as a number. */
const usd = (name: string) => numeric(name, { precision: 14, scale: 8, mode: 'number' });
const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow();
const updatedAt = () => timestamp('updated_at', { withTimezone: true }).notNull().defaultNow();

export const RUN_STATUSES = ['STARTED', 'COMPLETED', 'FAILED'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export const HARVEST_STATUSES = ['PENDING', 'PROCESSING', 'BLUEPRINT_DONE', 'BLUEPRINT_ERROR'] as const;
export type HarvestStatus = (typeof HARVEST_STATUSES)[number];

export const MISSED_POLICIES = ['skip', 'once'] as const;
export type MissedPolicy = (typeof MISSED_POLICIES)[number];

export const jobSchedule = pgTable('job_schedule', {
  id: integer('id').primaryKey().generatedAlwaysAsIdentity(),
  job_name: text('job_name').notNull().unique(),
  cron_expression: text('cron_expression').notNull(),
  timezone: text('timezone').notNull(),
  is_active: boolean('is_active').notNull().default(true),
  /** Occurrences missed while no instance ran: `skip` them, or run `once` for the latest (pg-boss `missed`). */
  missed_policy: text('missed_policy', { enum: MISSED_POLICIES }).notNull().default('skip'),
  last_run_at: timestamp('last_run_at', { withTimezone: true }),
  next_run_at: timestamp('next_run_at', { withTimezone: true }),
  /** Most the job's LLM calls may cost per day of its time zone; null = no budget (issue 13). */
  daily_budget_usd: usd('daily_budget_usd'),
  created_at: createdAt(),
  updated_at: updatedAt(),
}, (t) => [check('job_schedule_missed_policy_check', sql`${t.missed_policy} in ('skip', 'once')`)]);

/** Where a schedule change came from: the API, a direct edit of job_schedule picked up by the sync, or the first seed. */
export const SCHEDULE_CHANGE_SOURCES = ['api', 'table', 'seed'] as const;
export type ScheduleChangeSource = (typeof SCHEDULE_CHANGE_SOURCES)[number];

/** What a schedule's row says at one moment; `before` of a seed is null. */
/** A schedule as its history records it. Changes recorded before budgets existed (migration 0008) have no daily_budget_usd in the JSON; they are read as null. */
export type ScheduleState = { cron_expression: string; timezone: string; is_active: boolean; missed_policy: MissedPolicy; daily_budget_usd: number | null };

/** Every change to a schedule, newest last (GET /api/jobs/schedules/:jobName/history). */
export const jobScheduleChanges = pgTable(
  'job_schedule_changes',
  {
    id: integer('id').primaryKey().generatedAlwaysAsIdentity(),
    job_name: text('job_name').notNull(),
    before: jsonb('before').$type<ScheduleState | null>(),
    after: jsonb('after').$type<ScheduleState>().notNull(),
    source: text('source', { enum: SCHEDULE_CHANGE_SOURCES }).notNull(),
    /** The role of the bearer token that made an API change (`api_token`, or `none` with auth off); null for table and seed. */
    actor: text('actor'),
    changed_at: timestamp('changed_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('job_schedule_changes_job_changed_idx').on(t.job_name, t.changed_at.desc().nullsFirst(), t.id.desc().nullsFirst()),
    check('job_schedule_changes_source_check', sql`${t.source} in ('api', 'table', 'seed')`),
  ],
);

export const jobLogs = pgTable(
  'job_logs',
  {
    id: integer('id').primaryKey().generatedAlwaysAsIdentity(),
    job_name: text('job_name').notNull(),
    status: text('status', { enum: RUN_STATUSES }).notNull(),
    started_at: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
    ended_at: timestamp('ended_at', { withTimezone: true }),
    items_processed: integer('items_processed').notNull().default(0),
    items_failed: integer('items_failed').notNull().default(0),
    error_message: text('error_message'),
    metadata: jsonb('metadata').$type<Record<string, unknown>>().notNull().default({}),
    /** The pg-boss job this run is an attempt of (also in metadata); set at insert and never changed, so its index keeps closes HOT. */
    job_id: text('job_id'),
    /**
     * How the run was started (cron, manual, cli), what ?trigger= reads: metadata.trigger, computed
     * and stored by PostgreSQL, so every row has it however it was written (by any release, or by
     * hand). A close leaves its value as it was, so its index keeps closes HOT: PostgreSQL compares
     * the indexed values, not the columns an update names.
     */
    trigger: text('trigger').generatedAlwaysAs(sql`metadata ->> 'trigger'`),
  },
  (t) => [
    // "latest run of a job" and "logs of a job, newest first" both read this index. NULLS FIRST
    // is what a plain `order by … desc` means; an index sorted otherwise is never used for it.
    index('job_logs_job_name_started_at_idx').on(t.job_name, t.started_at.desc().nullsFirst(), t.id.desc().nullsFirst()),
    index('job_logs_started_at_idx').on(t.started_at.desc().nullsFirst(), t.id.desc().nullsFirst()),
    index('job_logs_job_id_idx').on(t.job_id, t.id.desc().nullsFirst()),
    // The list's rarer triggers (?trigger=manual, cli), newest first. Partial: a cron run, nearly
    // every run, adds no entry; `cron` itself is common enough for job_logs_started_at_idx.
    index('job_logs_trigger_started_at_idx').on(t.trigger, t.started_at.desc().nullsFirst(), t.id.desc().nullsFirst()).where(sql`trigger <> 'cron'`),
    check('job_logs_status_check', sql`${t.status} in ('STARTED', 'COMPLETED', 'FAILED')`),
  ],
);

/**
 * The FAILED runs of job_logs, for the list's ?status=FAILED: an index on job_logs.status would cost
 * every run's close its HOT update (drizzle/0003), and failures are few. Kept by triggers on job_logs
 * (drizzle/0010): every way a run becomes FAILED (runner, reaper, cancel, plain SQL) adds its row,
 * and a delete of a FAILED log (retention) removes it. A trigger rather than a foreign key with on
 * delete cascade, which would run for every log deleted, not only the failed ones (retention's
 * delete at 1 M rows: 11–13 µs a row before, 16–18 with the cascade, 12–14 with the trigger).
 * Its columns are the log's, which never change.
 */
export const jobLogsFailed = pgTable(
  'job_logs_failed',
  {
    log_id: integer('log_id').primaryKey(),
    job_name: text('job_name').notNull(),
    started_at: timestamp('started_at', { withTimezone: true }).notNull(),
    trigger: text('trigger'),
  },
  (t) => [
    index('job_logs_failed_started_at_idx').on(t.started_at.desc().nullsFirst(), t.log_id.desc().nullsFirst()),
    index('job_logs_failed_job_name_started_at_idx').on(t.job_name, t.started_at.desc().nullsFirst(), t.log_id.desc().nullsFirst()),
    index('job_logs_failed_trigger_started_at_idx').on(t.trigger, t.started_at.desc().nullsFirst(), t.log_id.desc().nullsFirst()),
  ],
);

export const harvestItems = pgTable(
  'harvest_items',
  {
    id: integer('id').primaryKey().generatedAlwaysAsIdentity(),
    title: text('title').notNull(),
    source_url: text('source_url'),
    content: text('content').notNull(),
    status: text('status', { enum: HARVEST_STATUSES }).notNull().default('PENDING'),
    error_message: text('error_message'),
    /** The job_logs row of the run holding the PROCESSING claim, so a dead run's claims can be released. */
    claimed_by_log_id: integer('claimed_by_log_id'),
    created_at: createdAt(),
    updated_at: updatedAt(),
  },
  (t) => [
    index('harvest_items_status_id_idx').on(t.status, t.id),
    // GET /api/harvest-items?q: the words of the title, as the 'simple' text-search configuration
    // splits them (lowercased, no stemming: "Edital", "TRT", "2ª" match as typed); built in, no extension.
    index('harvest_items_title_search_idx').using('gin', sql`to_tsvector('simple', ${t.title})`),
    // One item per document: a second item with the same URL is refused (nulls may repeat).
    uniqueIndex('harvest_items_source_url_key').on(t.source_url),
    check('harvest_items_status_check', sql`${t.status} in ('PENDING', 'PROCESSING', 'BLUEPRINT_DONE', 'BLUEPRINT_ERROR')`),
  ],
);

export type BlueprintTopic = { code: string; name: string; discipline: string };

/** A pending request to write a blueprint's drops again (POST /api/blueprints/:id/regenerate-drops). */
export type DropsRegenerate = { topic_codes: string[] | null; bypass_cache: boolean; requested_at: string };

export const examBlueprints = pgTable(
  'exam_blueprints',
  {
    id: integer('id').primaryKey().generatedAlwaysAsIdentity(),
    harvest_item_id: integer('harvest_item_id')
      .notNull()
      .unique()
      .references(() => harvestItems.id, { onDelete: 'cascade' }),
    exam_name: text('exam_name').notNull(),
    organization: text('organization'),
    topics: jsonb('topics').$type<BlueprintTopic[]>().notNull(),
    raw_output: jsonb('raw_output').notNull(),
    model: text('model').notNull(),
    drops_generated_at: timestamp('drops_generated_at', { withTimezone: true }),
    drops_claimed_by_log_id: integer('drops_claimed_by_log_id'),
    /** Set by a regenerate-drops request until the run that carries it out: which topics (null: all) and whether to skip the cache. */
    drops_regenerate: jsonb('drops_regenerate').$type<DropsRegenerate | null>(),
    /** The version of the prompt it was made with (null: made before prompts had versions). */
    prompt_version: text('prompt_version'),
    /** What its LLM calls cost, retries and re-asks included; null when the model had no price. */
    cost_usd: usd('cost_usd'),
    created_at: createdAt(),
  },
  (t) => [
    index('exam_blueprints_pending_drops_idx').on(t.id).where(sql`drops_generated_at is null`),
    // A run's claimed blueprints, for releaseClaims (every generate-drops run) and the reaper's
    // releaseOrphanedClaims (every pass): without it both read the whole table (BENCHMARKS.md B8).
    // Partial: only the few blueprints claimed at a time are in it.
    index('exam_blueprints_drops_claimed_idx').on(t.drops_claimed_by_log_id).where(sql`drops_claimed_by_log_id is not null`),
  ],
);

export const drops = pgTable(
  'drops',
  {
    id: integer('id').primaryKey().generatedAlwaysAsIdentity(),
    blueprint_id: integer('blueprint_id')
      .notNull()
      .references(() => examBlueprints.id, { onDelete: 'cascade' }),
    topic_code: text('topic_code').notNull(),
    title: text('title').notNull(),
    content: text('content').notNull(),
    position: integer('position').notNull(),
    /** Model and prompt version it was made with; null for drops made before they were recorded. */
    model: text('model'),
    prompt_version: text('prompt_version'),
    /** Its share of its topic's LLM calls; 0 when it came from the cache, null when the model had no price. */
    cost_usd: usd('cost_usd'),
    created_at: createdAt(),
  },
  (t) => [uniqueIndex('drops_blueprint_topic_position_key').on(t.blueprint_id, t.topic_code, t.position)],
);

export const dropCache = pgTable(
  'drop_cache',
  {
    id: integer('id').primaryKey().generatedAlwaysAsIdentity(),
    blueprint_id: integer('blueprint_id')
      .notNull()
      .references(() => examBlueprints.id, { onDelete: 'cascade' }),
    hash: text('hash').notNull(),
    payload: jsonb('payload').notNull(),
    /** What made the payload: the key stays SHA-256 of `blueprint_id:topic_code`, so a new prompt does not invalidate it. */
    model: text('model'),
    prompt_version: text('prompt_version'),
    cost_usd: usd('cost_usd'),
    created_at: createdAt(),
  },
  (t) => [uniqueIndex('drop_cache_blueprint_hash_key').on(t.blueprint_id, t.hash)],
);

/** How an LLM call (one HTTP attempt) ended: answered and usable, retried (transient), unusable answer, refused or failed, aborted. */
export const LLM_CALL_OUTCOMES = ['ok', 'retry', 'bad_output', 'error', 'aborted'] as const;
export type LlmCallOutcome = (typeof LLM_CALL_OUTCOMES)[number];

/**
 * The ledger: every HTTP attempt to the model, retries and re-asks included, with its tokens and
 * cost. Written in batches by the runs (src/llm), read by the usage route and, later, the budgets.
 */
export const llmCalls = pgTable(
  'llm_calls',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    /** When the attempt started. */
    at: timestamp('at', { withTimezone: true }).notNull(),
    /** The run (job_logs.id); null for a call made outside a run. */
    log_id: integer('log_id'),
    job_name: text('job_name').notNull(),
    /** What it was for: `{ harvest_item_id }` or `{ blueprint_id, topic_code }`. */
    item: jsonb('item').$type<Record<string, string | number>>(),
    model: text('model').notNull(),
    prompt_version: text('prompt_version'),
    prompt_tokens: integer('prompt_tokens').notNull().default(0),
    /** Part of prompt_tokens served from the provider's prompt cache. */
    cached_prompt_tokens: integer('cached_prompt_tokens').notNull().default(0),
    completion_tokens: integer('completion_tokens').notNull().default(0),
    latency_ms: integer('latency_ms').notNull(),
    outcome: text('outcome', { enum: LLM_CALL_OUTCOMES }).notNull(),
    /** The HTTP status, when an answer came back. */
    http_status: integer('http_status'),
    /** Null when the model has no price (src/llm/prices.ts). */
    cost_usd: usd('cost_usd'),
  },
  (t) => [
    index('llm_calls_at_idx').on(t.at),
    index('llm_calls_job_at_idx').on(t.job_name, t.at),
    index('llm_calls_log_id_idx').on(t.log_id),
    check('llm_calls_outcome_check', sql`${t.outcome} in (${inList(LLM_CALL_OUTCOMES)})`),
  ],
);

/** Manual runs requested with an `Idempotency-Key`: the same key for the same job gives the same run. */
export const runRequests = pgTable(
  'run_requests',
  {
    id: integer('id').primaryKey().generatedAlwaysAsIdentity(),
    job_name: text('job_name').notNull(),
    idempotency_key: text('idempotency_key').notNull(),
    job_id: text('job_id').notNull(),
    created_at: createdAt(),
  },
  (t) => [uniqueIndex('run_requests_job_key').on(t.job_name, t.idempotency_key), index('run_requests_created_at_idx').on(t.created_at)],
);

/**
 * What an alert is about (README "Alerts"). `budget_exhausted` is reserved for the LLM economics
 * issue (src/alerts/rules.ts says how to raise it); `recovered` closes a job's open failure alerts.
 */
export const FAILURE_ALERT_KINDS = ['dead_lettered', 'all_items_failed', 'overdue', 'budget_exhausted'] as const;
export type FailureAlertKind = (typeof FAILURE_ALERT_KINDS)[number];
export const ALERT_KINDS = [...FAILURE_ALERT_KINDS, 'recovered'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

/** pending: queued or being retried; delivered: the receiver answered 2xx; failed: retries spent (dead-lettered). */
export const ALERT_DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;
export type AlertDeliveryStatus = (typeof ALERT_DELIVERY_STATUSES)[number];


/**
 * One row per (job, failure kind), shared by every instance: `open` from the alert that opened it
 * until the job's next successful run. A conditional upsert flips it, so one alert is sent however
 * many instances see the failure, and never twice in a row.
 */
export const alertState = pgTable(
  'alert_state',
  {
    job_name: text('job_name').notNull(),
    kind: text('kind', { enum: FAILURE_ALERT_KINDS }).notNull(),
    open: boolean('open').notNull().default(false),
    opened_at: timestamp('opened_at', { withTimezone: true }),
    closed_at: timestamp('closed_at', { withTimezone: true }),
    /** The alert that opened it (alerts.id). */
    alert_id: integer('alert_id'),
  },
  (t) => [primaryKey({ name: 'alert_state_pkey', columns: [t.job_name, t.kind] }), check('alert_state_kind_check', sql`${t.kind} in (${inList(FAILURE_ALERT_KINDS)})`)],
);

/** Every alert raised, what it said, and how its delivery went. */
export const alerts = pgTable(
  'alerts',
  {
    id: integer('id').primaryKey().generatedAlwaysAsIdentity(),
    kind: text('kind', { enum: ALERT_KINDS }).notNull(),
    job_name: text('job_name').notNull(),
    /** The run it is about (job_logs.id and its pg-boss job); null for an overdue schedule. */
    log_id: integer('log_id'),
    job_id: text('job_id'),
    error: text('error'),
    occurred_at: timestamp('occurred_at', { withTimezone: true }).notNull(),
    /** The message as sent, but for its `sent_at` (set at each attempt). */
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    /** Its job in the alerts delivery queue. */
    delivery_job_id: text('delivery_job_id').notNull(),
    status: text('status', { enum: ALERT_DELIVERY_STATUSES }).notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    last_attempt_at: timestamp('last_attempt_at', { withTimezone: true }),
    last_error: text('last_error'),
    delivered_at: timestamp('delivered_at', { withTimezone: true }),
    /** The `recovered` alert that closed this failure alert. */
    resolved_by: integer('resolved_by'),
    created_at: createdAt(),
  },
  (t) => [
    check('alerts_kind_check', sql`${t.kind} in (${inList(ALERT_KINDS)})`),
    check('alerts_status_check', sql`${t.status} in (${inList(ALERT_DELIVERY_STATUSES)})`),
  ],
);

export type JobScheduleRow = typeof jobSchedule.$inferSelect;
export type JobLogRow = typeof jobLogs.$inferSelect;
export type HarvestItemRow = typeof harvestItems.$inferSelect;
export type ExamBlueprintRow = typeof examBlueprints.$inferSelect;
export type DropRow = typeof drops.$inferSelect;
export type AlertRow = typeof alerts.$inferSelect;
export type LlmCallRow = typeof llmCalls.$inferSelect;
export type JobScheduleChangeRow = typeof jobScheduleChanges.$inferSelect;
