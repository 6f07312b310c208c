import { desc, eq } from 'drizzle-orm';
import type { Db } from './client.ts';
import { examBlueprints, type ExamBlueprintRow } from './schema.ts';

/** Reads of exam_blueprints outside a run. */

/** A page of blueprints, newest first. */
export function listBlueprints(db: Db, { limit, offset }: { limit: number; offset: number }): Promise<ExamBlueprintRow[]> {
  return db.select().from(examBlueprints).orderBy(desc(examBlueprints.id)).limit(limit).offset(offset);
}

export async function blueprintById(db: Db, id: number): Promise<ExamBlueprintRow | null> {
  const [row] = await db.select().from(examBlueprints).where(eq(examBlueprints.id, id));
  return row ?? null;
}
