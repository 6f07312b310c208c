import { and, asc, eq } from 'drizzle-orm';
import type { Db } from './client.ts';
import { drops, type DropRow } from './schema.ts';

/** Reads of drops outside a run. */

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
