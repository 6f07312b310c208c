import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from './client.ts';
import { examBlueprints, harvestItems, type ExamBlueprintRow, type HarvestItemRow } from './schema.ts';

/**
 * Item claims. A run marks what it takes with its job_logs id; SKIP LOCKED keeps two runs from
 * taking the same row, and the id lets anyone release the claims of a run that died.
 */

export async function claimPendingHarvestItems(db: Db, logId: number, limit: number): Promise<HarvestItemRow[]> {
  const { rows } = await db.execute<HarvestItemRow>(sql`
    update harvest_items set status = 'PROCESSING', claimed_by_log_id = ${logId}, updated_at = now()
    where id in (
      select id from harvest_items where status = 'PENDING' order by id limit ${limit} for update skip locked
    )
    returning *`);
  return rows.sort((a, b) => a.id - b.id);
}

export async function claimBlueprintsWithoutDrops(db: Db, logId: number, limit: number): Promise<ExamBlueprintRow[]> {
  const { rows } = await db.execute<ExamBlueprintRow>(sql`
    update exam_blueprints set drops_claimed_by_log_id = ${logId}
    where id in (
      select id from exam_blueprints
      where drops_generated_at is null and drops_claimed_by_log_id is null
      order by id limit ${limit} for update skip locked
    )
    returning *`);
  return rows.sort((a, b) => a.id - b.id);
}

/** Gives back whatever a run still holds: items to PENDING, blueprints to unclaimed. */
export async function releaseClaims(db: Db, logIds: number[]): Promise<void> {
  if (logIds.length === 0) return;
  await db
    .update(harvestItems)
    .set({ status: 'PENDING', claimed_by_log_id: null, updated_at: sql`now()` })
    .where(and(eq(harvestItems.status, 'PROCESSING'), inArray(harvestItems.claimed_by_log_id, logIds)));
  await db
    .update(examBlueprints)
    .set({ drops_claimed_by_log_id: null })
    .where(inArray(examBlueprints.drops_claimed_by_log_id, logIds));
}

/** Releases claims whose run is no longer STARTED (it crashed, or closed without releasing). */
export async function releaseOrphanedClaims(db: Db): Promise<number> {
  const items = await db.execute(sql`
    update harvest_items set status = 'PENDING', claimed_by_log_id = null, updated_at = now()
    where status = 'PROCESSING' and not exists (
      select 1 from job_logs l where l.id = harvest_items.claimed_by_log_id and l.status = 'STARTED')`);
  const blueprints = await db.execute(sql`
    update exam_blueprints set drops_claimed_by_log_id = null
    where drops_claimed_by_log_id is not null and not exists (
      select 1 from job_logs l where l.id = exam_blueprints.drops_claimed_by_log_id and l.status = 'STARTED')`);
  return (items.rowCount ?? 0) + (blueprints.rowCount ?? 0);
}
