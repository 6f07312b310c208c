import { sql, type SQL } from 'drizzle-orm';
import type { Db } from './client.ts';
import type { LlmCallOutcome } from './schema.ts';

/** Every statement on llm_calls, the ledger of LLM calls (src/llm/ledger.ts buffers the writes). */

export type NewLlmCall = {
  /** Epoch ms. */
  at: number;
  log_id: number | null;
  job_name: string;
  item: Record<string, string | number> | null;
  model: string;
  prompt_version: string | null;
  prompt_tokens: number;
  cached_prompt_tokens: number;
  completion_tokens: number;
  latency_ms: number;
  outcome: LlmCallOutcome;
  http_status: number | null;
  cost_usd: number | null;
};

/** One insert for a batch, however long: the rows travel as one JSON parameter. */
export async function insertLlmCalls(db: Db, calls: NewLlmCall[]): Promise<void> {
  if (calls.length === 0) return;
  await db.execute(sql`
    insert into llm_calls (at, log_id, job_name, item, model, prompt_version, prompt_tokens, cached_prompt_tokens,
      completion_tokens, latency_ms, outcome, http_status, cost_usd)
    select to_timestamp(c.at / 1000.0), c.log_id, c.job_name, c.item, c.model, c.prompt_version, c.prompt_tokens,
      c.cached_prompt_tokens, c.completion_tokens, c.latency_ms, c.outcome, c.http_status, c.cost_usd
    from jsonb_to_recordset(${JSON.stringify(calls)}::jsonb) as c(at double precision, log_id integer, job_name text, item jsonb,
      model text, prompt_version text, prompt_tokens integer, cached_prompt_tokens integer, completion_tokens integer,
      latency_ms integer, outcome text, http_status integer, cost_usd numeric)`);
}

export const USAGE_GROUPS = ['day', 'job', 'model'] as const;
export type UsageGroup = (typeof USAGE_GROUPS)[number];

export type UsageRow = {
  day?: string;
  job_name?: string;
  model?: string;
  calls: number;
  prompt_tokens: number;
  cached_prompt_tokens: number;
  completion_tokens: number;
  /** Sum over the priced calls; null when none had a price. */
  cost_usd: number | null;
  /** Calls whose model had no price (not in cost_usd). */
  unpriced_calls: number;
  /** cached_prompt_tokens / prompt_tokens (0 without prompt tokens). */
  cached_share: number;
};

/**
 * Sums of the calls in [from, to), grouped. A day is the UTC day, or the job's schedule time zone's
 * day when grouped by job too. The range is read through llm_calls_at_idx (an index range scan on
 * `at`); grouping is over the rows in range only.
 */
export async function llmUsage(db: Db, { from, to, groupBy }: { from: Date; to: Date; groupBy: UsageGroup[] }): Promise<UsageRow[]> {
  const byJob = groupBy.includes('job');
  const keys: Array<[string, SQL]> = [];
  if (groupBy.includes('day')) {
    const zone = byJob ? sql`coalesce(s.timezone, 'UTC')` : sql`'UTC'`;
    keys.push(['day', sql`to_char(c.at at time zone ${zone}, 'YYYY-MM-DD')`]);
  }
  if (byJob) keys.push(['job_name', sql`c.job_name`]);
  if (groupBy.includes('model')) keys.push(['model', sql`c.model`]);
  const select = keys.map(([name, expr]) => sql`${expr} as ${sql.identifier(name)}`);
  const positions = keys.map((_, i) => sql.raw(String(i + 1)));
  const { rows } = await db.execute<Record<string, string | number | null>>(sql`
    select ${sql.join([...select, sql``], sql`, `)}
      count(*)::int as calls, coalesce(sum(c.prompt_tokens), 0)::bigint as prompt_tokens,
      coalesce(sum(c.cached_prompt_tokens), 0)::bigint as cached_prompt_tokens,
      coalesce(sum(c.completion_tokens), 0)::bigint as completion_tokens,
      sum(c.cost_usd) as cost_usd, (count(*) filter (where c.cost_usd is null))::int as unpriced_calls
    from llm_calls c
    ${byJob && groupBy.includes('day') ? sql`left join job_schedule s on s.job_name = c.job_name` : sql``}
    where c.at >= ${from.toISOString()}::timestamptz and c.at < ${to.toISOString()}::timestamptz
    ${keys.length ? sql`group by ${sql.join(positions, sql`, `)} order by ${sql.join(positions, sql`, `)}` : sql``}`);
  // Raw results: bigint and numeric come back as strings.
  return rows.map((row) => ({
    ...Object.fromEntries(keys.map(([name]) => [name, String(row[name])])),
    calls: Number(row.calls),
    prompt_tokens: Number(row.prompt_tokens),
    cached_prompt_tokens: Number(row.cached_prompt_tokens),
    completion_tokens: Number(row.completion_tokens),
    cost_usd: row.cost_usd === null ? null : Number(row.cost_usd),
    unpriced_calls: Number(row.unpriced_calls),
    cached_share: shareOf(Number(row.cached_prompt_tokens), Number(row.prompt_tokens)),
  }));
}

const shareOf = (cached: number, prompt: number) => (prompt > 0 ? Math.round((cached / prompt) * 10_000) / 10_000 : 0);

export type UsageReport = { from: string; to: string; group_by: UsageGroup[]; rows: UsageRow[]; total: UsageRow };

/** The grouped rows and their total over the whole range. */
export async function llmUsageReport(db: Db, query: { from: Date; to: Date; groupBy: UsageGroup[] }): Promise<UsageReport> {
  const rows = await llmUsage(db, query);
  const total: UsageRow = { calls: 0, prompt_tokens: 0, cached_prompt_tokens: 0, completion_tokens: 0, cost_usd: null, unpriced_calls: 0, cached_share: 0 };
  for (const row of rows) {
    total.calls += row.calls;
    total.prompt_tokens += row.prompt_tokens;
    total.cached_prompt_tokens += row.cached_prompt_tokens;
    total.completion_tokens += row.completion_tokens;
    total.unpriced_calls += row.unpriced_calls;
    if (row.cost_usd !== null) total.cost_usd = Math.round(((total.cost_usd ?? 0) + row.cost_usd) * 1e8) / 1e8;
  }
  total.cached_share = shareOf(total.cached_prompt_tokens, total.prompt_tokens);
  return { from: query.from.toISOString(), to: query.to.toISOString(), group_by: query.groupBy, rows, total };
}
