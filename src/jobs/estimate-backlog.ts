import { sql } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import type { BlueprintTopic, DropsRegenerate } from '../db/schema.ts';

/**
 * The reads of an estimate: what the next run (or the whole backlog) would claim, in the order the
 * run claims it (src/db/claims.ts), and the completion tokens of recent runs. Read-only: nothing
 * is claimed.
 */

export type PendingItem = { id: number; title: string; source_url: string | null; content: string };

/** The PENDING harvest items a run would claim next, by id (claimPendingHarvestItems). */
export async function pendingItems(db: Db, limit: number): Promise<PendingItem[]> {
  const { rows } = await db.execute<PendingItem>(sql`
    select id, title, source_url, content from harvest_items where status = 'PENDING' order by id limit ${limit}`);
  return rows;
}

/** How many PENDING items there are and the characters of their prompt fields (title, source, content). */
export async function pendingItemsSize(db: Db): Promise<{ count: number; chars: number }> {
  const { rows } = await db.execute<{ count: number; chars: string | null }>(sql`
    select count(*)::int as count, sum(length(title) + coalesce(length(source_url), 0) + length(content))::text as chars
    from harvest_items where status = 'PENDING'`);
  return { count: rows[0]?.count ?? 0, chars: Number(rows[0]?.chars ?? 0) };
}

/** Every `step`-th PENDING item in claim order: an even sample of a large backlog. */
export async function pendingItemsSample(db: Db, step: number): Promise<PendingItem[]> {
  const { rows } = await db.execute<PendingItem>(sql`
    with numbered as (
      select id, row_number() over (order by id) as n from harvest_items where status = 'PENDING'
    )
    select h.id, h.title, h.source_url, h.content
    from numbered join harvest_items h using (id)
    where (numbered.n - 1) % ${step} = 0
    order by h.id`);
  return rows;
}

export type DueBlueprint = { id: number; exam_name: string; topics: BlueprintTopic[]; drops_regenerate: DropsRegenerate | null };

/** Blueprints a run would claim (claimBlueprintsWithoutDrops) with ids above `afterId`, by id. */
export async function dueBlueprints(db: Db, afterId: number, limit: number): Promise<DueBlueprint[]> {
  const { rows } = await db.execute<DueBlueprint>(sql`
    select id, exam_name, topics, drops_regenerate from exam_blueprints
    where drops_generated_at is null and drops_claimed_by_log_id is null and id > ${afterId}
    order by id limit ${limit}`);
  return rows;
}

/** The drop_cache hashes held for these blueprints, by blueprint id. */
export async function cachedDropHashes(db: Db, blueprintIds: number[]): Promise<Map<number, Set<string>>> {
  const byBlueprint = new Map<number, Set<string>>();
  if (blueprintIds.length === 0) return byBlueprint;
  const { rows } = await db.execute<{ blueprint_id: number; hash: string }>(sql`
    select blueprint_id, hash from drop_cache where blueprint_id = any(${`{${blueprintIds.join(',')}}`}::int[])`);
  for (const row of rows) {
    let hashes = byBlueprint.get(row.blueprint_id);
    if (!hashes) byBlueprint.set(row.blueprint_id, (hashes = new Set()));
    hashes.add(row.hash);
  }
  return byBlueprint;
}

export type CompletionHistory = { runs: number; calls: number; completion_tokens: number };

/** How far back completionHistory looks for runs that called the model. */
export const SCANNED_RUNS = 10_000;

/** Completion tokens and calls of the job's last `runs` closed runs that called the model (metadata.llm), among its last SCANNED_RUNS runs. */
export async function completionHistory(db: Db, jobName: string, runs: number): Promise<CompletionHistory> {
  const { rows } = await db.execute<{ runs: number; calls: string | null; completion_tokens: string | null }>(sql`
    select count(*)::int as runs, sum(calls)::text as calls, sum(completion_tokens)::text as completion_tokens
    from (
      select (metadata->'llm'->>'calls')::bigint as calls, (metadata->'llm'->>'completion_tokens')::bigint as completion_tokens
      from (
        -- Among the job's last SCANNED_RUNS runs only (job_logs_job_name_started_at_idx): a job with
        -- fewer model-calling runs than asked would otherwise read its whole history (0.6 s at 1 M rows).
        select status, metadata, started_at, id from job_logs where job_name = ${jobName} order by started_at desc, id desc limit ${SCANNED_RUNS}
      ) latest
      where status <> 'STARTED' and jsonb_typeof(metadata->'llm'->'calls') = 'number' and (metadata->'llm'->>'calls')::bigint > 0
      order by started_at desc, id desc
      limit ${runs}
    ) recent`);
  return { runs: rows[0]?.runs ?? 0, calls: Number(rows[0]?.calls ?? 0), completion_tokens: Number(rows[0]?.completion_tokens ?? 0) };
}
