import { desc, eq } from 'drizzle-orm';
import type { Db } from './client.ts';
import { harvestItems, type HarvestItemRow } from './schema.ts';

/** Reads and writes of harvest_items outside a run (a run claims them through claims.ts). */

export async function createHarvestItem(db: Db, item: { title: string; content: string; source_url?: string | null }): Promise<HarvestItemRow> {
  const [row] = await db.insert(harvestItems).values({ title: item.title, content: item.content, source_url: item.source_url ?? null }).returning();
  return row!;
}

/** A page of items, newest first, of one status or of all. */
export function listHarvestItems(db: Db, { status, limit, offset }: { status?: HarvestItemRow['status']; limit: number; offset: number }): Promise<HarvestItemRow[]> {
  return db
    .select()
    .from(harvestItems)
    .where(status ? eq(harvestItems.status, status) : undefined)
    .orderBy(desc(harvestItems.id))
    .limit(limit)
    .offset(offset);
}
