import { and, desc, eq, getTableColumns, inArray, sql } from 'drizzle-orm';
import type { Db } from './client.ts';
import { examBlueprints, harvestItems, type HarvestItemRow } from './schema.ts';

/** Reads and writes of harvest_items outside a run (a run claims them through claims.ts). */

/** The pool or a transaction: statements that an operation may run inside its own transaction. */
export type Queryable = Pick<Db, 'select' | 'insert' | 'update' | 'delete' | 'execute'>;

export type NewHarvestItem = { title: string; content: string; source_url?: string | null };

export type HarvestItemWithBlueprint = HarvestItemRow & { blueprint_id: number | null };

/**
 * Inserts the items in one statement; an item whose source_url is already stored (or repeats one
 * earlier in the same statement) is skipped by the unique index, so two concurrent inserts of one
 * URL cannot both win. The rows come back in input order (ids are taken in that order).
 */
export async function insertHarvestItemsSkippingDuplicates(db: Queryable, items: NewHarvestItem[]): Promise<HarvestItemRow[]> {
  const rows = await db
    .insert(harvestItems)
    .values(items.map((item) => ({ title: item.title, content: item.content, source_url: item.source_url ?? null })))
    .onConflictDoNothing({ target: harvestItems.source_url })
    .returning();
  return rows.sort((a, b) => a.id - b.id);
}

/** The ids of the stored items with these source URLs. */
export async function harvestItemIdsBySourceUrl(db: Queryable, urls: string[]): Promise<Map<string, number>> {
  if (urls.length === 0) return new Map();
  const rows = await db.select({ id: harvestItems.id, source_url: harvestItems.source_url }).from(harvestItems).where(inArray(harvestItems.source_url, urls));
  return new Map(rows.map((row) => [row.source_url!, row.id]));
}

/**
 * Every word of `q` as the start of a word of the title ("edit trt" finds "Edital TRT 2ª Região").
 * Words are runs of letters and digits, so nothing typed can break the tsquery's syntax. The
 * matches are found through harvest_items_title_search_idx first (`offset 0` keeps PostgreSQL from
 * folding it in), then sorted: it cannot estimate a prefix match, and guessing it common it would
 * walk the whole table newest first for a rare word (6 s at 1 M items, measured). This way a rare
 * word takes milliseconds; a word in nearly every title, ~0.5 s at 1 M items.
 */
function titleMatches(q: string) {
  const words = q.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean);
  const query = words.map((word) => `${word}:*`).join(' & ');
  return sql`${harvestItems.id} in (select m.id from (select s.id from harvest_items s where to_tsvector('simple', s.title) @@ to_tsquery('simple', ${query}) offset 0) m)`;
}

/** A page of items, newest first, of one status or of all, whose title has the words of `q`. */
export function listHarvestItems(db: Db, { status, q, limit, offset }: { status?: HarvestItemRow['status']; q?: string; limit: number; offset: number }): Promise<HarvestItemRow[]> {
  return db
    .select()
    .from(harvestItems)
    .where(and(status ? eq(harvestItems.status, status) : undefined, q === undefined ? undefined : titleMatches(q)))
    .orderBy(desc(harvestItems.id))
    .limit(limit)
    .offset(offset);
}

/** One item and its blueprint's id; `forUpdate` locks the item (a run's claim skips it meanwhile). */
export async function harvestItemWithBlueprint(db: Queryable, id: number, { forUpdate = false } = {}): Promise<HarvestItemWithBlueprint | null> {
  const query = db
    .select({ ...getTableColumns(harvestItems), blueprint_id: examBlueprints.id })
    .from(harvestItems)
    .leftJoin(examBlueprints, eq(examBlueprints.harvest_item_id, harvestItems.id))
    .where(eq(harvestItems.id, id));
  const [row] = forUpdate ? await query.for('update', { of: harvestItems }) : await query;
  return row ?? null;
}

export async function deleteHarvestItem(db: Queryable, id: number): Promise<void> {
  await db.delete(harvestItems).where(eq(harvestItems.id, id));
}

/** BLUEPRINT_ERROR items back to PENDING, error cleared: one item (`id`) or all of them. Returns the ids moved. */
export async function retryFailedHarvestItems(db: Queryable, id?: number): Promise<number[]> {
  const rows = await db
    .update(harvestItems)
    .set({ status: 'PENDING', error_message: null, updated_at: sql`now()` })
    .where(and(eq(harvestItems.status, 'BLUEPRINT_ERROR'), id === undefined ? undefined : eq(harvestItems.id, id)))
    .returning({ id: harvestItems.id });
  return rows.map((row) => row.id).sort((a, b) => a - b);
}

export async function harvestItemStatus(db: Queryable, id: number): Promise<HarvestItemRow['status'] | null> {
  const [row] = await db.select({ status: harvestItems.status }).from(harvestItems).where(eq(harvestItems.id, id));
  return row?.status ?? null;
}
