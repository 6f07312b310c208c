import { and, asc, count, eq, sql } from 'drizzle-orm';
import type { Db } from './client.ts';
import type { Queryable } from './harvest-items.ts';
import { drops, type DropRow } from './schema.ts';

/** Reads of drops outside a run, and a topic's replacement by a regenerate-drops request. */

/** A page of drops in reading order: blueprint, topic, position. */
export function listDrops(db: Db, { blueprintId, topicCode, limit, offset }: { blueprintId?: number; topicCode?: string; limit: number; offset: number }): Promise<DropRow[]> {
  return db
    .select()
    .from(drops)
    .where(and(blueprintId ? eq(drops.blueprint_id, blueprintId) : undefined, topicCode ? eq(drops.topic_code, topicCode) : undefined))
    .orderBy(asc(drops.blueprint_id), asc(drops.topic_code), asc(drops.position))
    .limit(limit)
    .offset(offset);
}

export async function countDropsOfBlueprint(db: Queryable, blueprintId: number): Promise<number> {
  const [row] = await db.select({ n: count() }).from(drops).where(eq(drops.blueprint_id, blueprintId));
  return row?.n ?? 0;
}

export type TopicDrops = {
  blueprintId: number;
  topicCode: string;
  cacheHash: string;
  drops: Array<{ title: string; content: string }>;
  /** What made them, recorded on the drops and the cache entry. */
  model: string;
  promptVersion: string;
  /** What the topic's calls cost (split evenly over its drops); null when the model has no price. */
  costUsd: number | null;
};

/**
 * A topic's cost split evenly over its drops, to the column's 8 decimals, the last taking the
 * remainder so the drops sum to exactly what the topic cost.
 */
export function splitCost(costUsd: number | null, count: number): Array<number | null> {
  if (costUsd === null) return Array.from({ length: count }, () => null);
  const share = Math.round((costUsd / count) * 1e8) / 1e8;
  const shares = Array.from({ length: count }, () => share);
  shares[count - 1] = Math.round((costUsd - share * (count - 1)) * 1e8) / 1e8;
  return shares;
}

/** Drops, and drop_cache entries, made with a prompt other than `version` (null: made before versions). */
export async function countDropsNotOfPrompt(db: Queryable, version: string): Promise<{ drops: number; cacheEntries: number }> {
  const { rows } = await db.execute<{ drops: number; cache_entries: number }>(sql`
    select (select count(*) from drops where prompt_version is distinct from ${version})::int as drops,
      (select count(*) from drop_cache where prompt_version is distinct from ${version})::int as cache_entries`);
  return { drops: Number(rows[0]?.drops ?? 0), cacheEntries: Number(rows[0]?.cache_entries ?? 0) };
}

/**
 * A topic's new drops replace its old ones, in one transaction: the old drops stay until the new
 * ones are saved (a failure leaves them), the cache entry is overwritten, and the topic leaves the
 * blueprint's pending regenerate request, so a retried run does not ask the model for it again.
 */
export async function replaceTopicDrops(db: Db, topic: TopicDrops): Promise<void> {
  const { blueprintId, topicCode, cacheHash, model, promptVersion, costUsd } = topic;
  const costs = splitCost(costUsd, topic.drops.length);
  await db.transaction(async (tx) => {
    await tx.delete(drops).where(and(eq(drops.blueprint_id, blueprintId), eq(drops.topic_code, topicCode)));
    await tx.insert(drops).values(
      topic.drops.map((drop, i) => ({ blueprint_id: blueprintId, topic_code: topicCode, title: drop.title, content: drop.content, position: i + 1, model, prompt_version: promptVersion, cost_usd: costs[i] })),
    );
    await tx.execute(sql`
      insert into drop_cache (blueprint_id, hash, payload, model, prompt_version, cost_usd)
      values (${blueprintId}, ${cacheHash}, ${JSON.stringify({ drops: topic.drops })}::jsonb, ${model}, ${promptVersion}, ${costUsd})
      on conflict (blueprint_id, hash) do update
      set payload = excluded.payload, model = excluded.model, prompt_version = excluded.prompt_version, cost_usd = excluded.cost_usd`);
    // Evaluated on the row as it is when locked, so topics finishing at once each remove only themselves.
    await tx.execute(sql`
      update exam_blueprints set drops_regenerate = jsonb_set(drops_regenerate, '{topic_codes}', coalesce((
        select jsonb_agg(code) from jsonb_array_elements_text(
          coalesce(nullif(drops_regenerate -> 'topic_codes', 'null'::jsonb), (select jsonb_agg(t -> 'code') from jsonb_array_elements(topics) t))
        ) code where code <> ${topicCode}), '[]'::jsonb))
      where id = ${blueprintId} and drops_regenerate is not null`);
  });
}
