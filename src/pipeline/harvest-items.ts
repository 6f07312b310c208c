import { blueprintById } from '../db/blueprints.ts';
import type { Db } from '../db/client.ts';
import { countDropsOfBlueprint } from '../db/drops.ts';
import {
  deleteHarvestItem,
  harvestItemIdsBySourceUrl,
  harvestItemStatus,
  harvestItemWithBlueprint,
  insertHarvestItemsSkippingDuplicates,
  retryFailedHarvestItems,
  type HarvestItemWithBlueprint,
  type NewHarvestItem,
} from '../db/harvest-items.ts';
import type { HarvestItemRow } from '../db/schema.ts';
import { DuplicateSourceUrlError, InvalidRequestError, NotFoundError, StateConflictError } from './errors.ts';

/** What an operator does to harvest items: add them (one or many), look at one, delete one, send failed ones back. */

/** `fail`: a duplicate source_url refuses the whole insert (nothing stored); `skip`: duplicates are left out and reported. */
export type OnConflict = 'fail' | 'skip';

export type SkippedItem = { index: number; source_url: string; existing_id: number };
export type AddedHarvestItems = { created: HarvestItemRow[]; skipped: SkippedItem[] };

/** A row that conflicted can be deleted before we read its id; the insert is then tried again, this many times in all. */
const INSERT_ATTEMPTS = 3;

/**
 * Adds items all or nothing, in one transaction. Duplicate URLs are decided by the unique index
 * (ON CONFLICT), so of two concurrent inserts of one URL exactly one stores it. `bulk` says whether
 * errors name the item's index (an array body) or not (a single item).
 */
export async function addHarvestItems(db: Db, items: NewHarvestItem[], { onConflict = 'fail', bulk = true }: { onConflict?: OnConflict; bulk?: boolean } = {}): Promise<AddedHarvestItems> {
  const firstIndexOfUrl = new Map<string, number>();
  const repeats: Array<{ index: number; url: string }> = [];
  const unique: Array<{ index: number; item: NewHarvestItem }> = [];
  items.forEach((item, index) => {
    const url = item.source_url ?? null;
    if (url !== null) {
      const first = firstIndexOfUrl.get(url);
      if (first !== undefined) {
        if (onConflict === 'fail') throw new InvalidRequestError(`items[${index}].source_url: ${url} repeats items[${first}]; send it once, or use ?onConflict=skip`);
        repeats.push({ index, url });
        return;
      }
      firstIndexOfUrl.set(url, index);
    }
    unique.push({ index, item });
  });

  for (let attempt = 1; ; attempt++) {
    const added = await db.transaction(async (tx) => {
      const created = await insertHarvestItemsSkippingDuplicates(tx, unique.map((u) => u.item));
      const createdUrls = new Set(created.map((row) => row.source_url));
      const conflicts = unique.filter((u) => u.item.source_url && !createdUrls.has(u.item.source_url)).map((u) => ({ index: u.index, url: u.item.source_url! }));
      const existing = await harvestItemIdsBySourceUrl(tx, conflicts.map((c) => c.url));
      if (conflicts.some((c) => !existing.has(c.url))) return null;
      const first = conflicts[0];
      // Throwing rolls the transaction back: nothing of this request is stored.
      if (first && onConflict === 'fail') throw new DuplicateSourceUrlError(first.url, existing.get(first.url)!, bulk ? first.index : undefined);
      const idOfUrl = new Map([...existing, ...created.filter((row) => row.source_url !== null).map((row) => [row.source_url!, row.id] as const)]);
      const skipped = [...conflicts, ...repeats].map(({ index, url }) => ({ index, source_url: url, existing_id: idOfUrl.get(url)! })).sort((a, b) => a.index - b.index);
      return { created, skipped };
    });
    if (added) return added;
    if (attempt >= INSERT_ATTEMPTS) throw new Error(`harvest items with these URLs kept being deleted while this insert ran (${INSERT_ATTEMPTS} attempts)`);
  }
}

export async function getHarvestItem(db: Db, id: number): Promise<HarvestItemWithBlueprint> {
  const item = await harvestItemWithBlueprint(db, id);
  if (!item) throw new NotFoundError(`no harvest item with id ${id}`);
  return item;
}

export type DeletedHarvestItem = { harvest_item_id: number; blueprint_id: number | null; drops: number };

/**
 * Deletes an item with what was derived from it: its blueprint, that blueprint's drops and drop
 * cache (foreign keys cascade). Refused while a run holds the item (PROCESSING) or is writing its
 * blueprint's drops, since that run would then fail writing rows whose parent is gone.
 */
export async function deleteHarvestItemCascade(db: Db, id: number): Promise<DeletedHarvestItem> {
  return db.transaction(async (tx) => {
    const item = await harvestItemWithBlueprint(tx, id, { forUpdate: true });
    if (!item) throw new NotFoundError(`no harvest item with id ${id}`);
    if (item.status === 'PROCESSING') {
      throw new StateConflictError(`harvest item ${id} is PROCESSING: an extract-blueprints run (log ${item.claimed_by_log_id}) holds it; delete it once that run is over`);
    }
    let drops = 0;
    if (item.blueprint_id !== null) {
      const blueprint = await blueprintById(tx, item.blueprint_id, { forUpdate: true });
      if (blueprint?.drops_claimed_by_log_id != null) {
        throw new StateConflictError(`harvest item ${id}: a generate-drops run (log ${blueprint.drops_claimed_by_log_id}) is writing the drops of its blueprint ${blueprint.id}; delete it once that run is over`);
      }
      drops = await countDropsOfBlueprint(tx, item.blueprint_id);
    }
    await deleteHarvestItem(tx, id);
    return { harvest_item_id: id, blueprint_id: item.blueprint_id, drops };
  });
}

/** A BLUEPRINT_ERROR item back to PENDING (error cleared) for the next extract-blueprints run. */
export async function retryHarvestItem(db: Db, id: number): Promise<HarvestItemWithBlueprint> {
  const [moved] = await retryFailedHarvestItems(db, id);
  if (moved === undefined) {
    const status = await harvestItemStatus(db, id);
    if (!status) throw new NotFoundError(`no harvest item with id ${id}`);
    throw new StateConflictError(`harvest item ${id} is ${status}: only a BLUEPRINT_ERROR item can be retried`);
  }
  return getHarvestItem(db, id);
}

/** Every BLUEPRINT_ERROR item back to PENDING, in one statement; the ids moved, ascending. */
export function retryAllFailedHarvestItems(db: Db): Promise<number[]> {
  return retryFailedHarvestItems(db);
}
