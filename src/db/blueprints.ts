import { desc, eq, sql } from 'drizzle-orm';
import type { Db } from './client.ts';
import type { Queryable } from './harvest-items.ts';
import { examBlueprints, type DropsRegenerate, type ExamBlueprintRow } from './schema.ts';

/** Reads of exam_blueprints outside a run, and the regenerate-drops request. */

/** A page of blueprints, newest first. */
export function listBlueprints(db: Db, { limit, offset }: { limit: number; offset: number }): Promise<ExamBlueprintRow[]> {
  return db.select().from(examBlueprints).orderBy(desc(examBlueprints.id)).limit(limit).offset(offset);
}

export async function blueprintById(db: Queryable, id: number, { forUpdate = false } = {}): Promise<ExamBlueprintRow | null> {
  const query = db.select().from(examBlueprints).where(eq(examBlueprints.id, id));
  const [row] = forUpdate ? await query.for('update') : await query;
  return row ?? null;
}

/** Makes the blueprint due for drops again (claimBlueprintsWithoutDrops picks it), carrying the request. */
export async function markDropsRegenerate(db: Queryable, id: number, request: DropsRegenerate): Promise<ExamBlueprintRow> {
  const [row] = await db
    .update(examBlueprints)
    .set({ drops_generated_at: null, drops_regenerate: request })
    .where(eq(examBlueprints.id, id))
    .returning();
  return row!;
}

/** All of the blueprint's topics have drops: done, and a regenerate request it carried is spent. */
export async function markDropsGenerated(db: Queryable, id: number): Promise<void> {
  await db.update(examBlueprints).set({ drops_generated_at: sql`now()`, drops_regenerate: null }).where(eq(examBlueprints.id, id));
}

/** Blueprints made with a prompt other than `version`; those made before versions (null) count too. */
export async function countBlueprintsNotOfPrompt(db: Queryable, version: string): Promise<number> {
  const { rows } = await db.execute<{ n: number }>(sql`select count(*)::int as n from exam_blueprints where prompt_version is distinct from ${version}`);
  return Number(rows[0]?.n ?? 0);
}
