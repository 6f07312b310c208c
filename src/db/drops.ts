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

export type TopicDrops = { blueprintId: number; topicCode: string; cacheHash: string; drops: Array<{ title: string; content: string }> };

/**
 * A topic's new drops replace its old ones, in one transaction: the old drops stay until the new
 * ones are saved (a failure leaves them), the cache entry is overwritten, and the topic leaves the
 * blueprint's pending regenerate request, so a retried run does not ask the model for it again.
 */
export async function replaceTopicDrops(db: Db, topic: TopicDrops): Promise<void> {
  const { blueprintId, topicCode, cacheHash } = topic;
  await db.transaction(async (tx) => {
    await tx.delete(drops).where(and(eq(drops.blueprint_id, blueprintId), eq(drops.topic_code, topicCode)));
    await tx.insert(drops).values(topic.drops.map((drop, i) => ({ blueprint_id: blueprintId, topic_code: topicCode, title: drop.title, content: drop.content, position: i + 1 })));
    await tx.execute(sql`
      insert into drop_cache (blueprint_id, hash, payload) values (${blueprintId}, ${cacheHash}, ${JSON.stringify({ drops: topic.drops })}::jsonb)
      on conflict (blueprint_id, hash) do update set payload = excluded.payload`);
    // Evaluated on the row as it is when locked, so topics finishing at once each remove only themselves.
    await tx.execute(sql`
      update exam_blueprints set drops_regenerate = jsonb_set(drops_regenerate, '{topic_codes}', coalesce((
        select jsonb_agg(code) from jsonb_array_elements_text(
          coalesce(nullif(drops_regenerate -> 'topic_codes', 'null'::jsonb), (select jsonb_agg(t -> 'code') from jsonb_array_elements(topics) t))
        ) code where code <> ${topicCode}), '[]'::jsonb))
      where id = ${blueprintId} and drops_regenerate is not null`);
  });
}
