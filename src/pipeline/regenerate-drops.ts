import { blueprintById, markDropsRegenerate } from '../db/blueprints.ts';
import type { Db } from '../db/client.ts';
import type { ExamBlueprintRow } from '../db/schema.ts';
import { InvalidRequestError, NotFoundError, StateConflictError } from './errors.ts';

export type RegenerateDropsRequest = { topicCodes?: string[]; bypassCache?: boolean };

/** How many topic codes an error message lists before it stops. */
const LISTED_TOPICS = 20;

/**
 * Makes a blueprint due for drops again; the next generate-drops run carries the request out, for
 * the chosen topics (all when none are named): from the cache, or with `bypassCache` from the model,
 * replacing the topics' drops. A request still pending is replaced by this one.
 */
export async function requestDropsRegeneration(db: Db, id: number, request: RegenerateDropsRequest = {}): Promise<{ blueprint: ExamBlueprintRow; topics: number }> {
  return db.transaction(async (tx) => {
    const blueprint = await blueprintById(tx, id, { forUpdate: true });
    if (!blueprint) throw new NotFoundError(`no blueprint with id ${id}`);
    if (blueprint.drops_claimed_by_log_id !== null) {
      throw new StateConflictError(`blueprint ${id}: a generate-drops run (log ${blueprint.drops_claimed_by_log_id}) is writing its drops; ask again once that run is over`);
    }
    const codes = request.topicCodes === undefined ? null : [...new Set(request.topicCodes)];
    if (codes) {
      const known = blueprint.topics.map((topic) => topic.code);
      const unknown = codes.filter((code) => !known.includes(code));
      if (unknown.length > 0) {
        const listed = known.length > LISTED_TOPICS ? `${known.slice(0, LISTED_TOPICS).join(', ')}, …` : known.join(', ') || 'none';
        throw new InvalidRequestError(`topicCodes: blueprint ${id} has no topic ${unknown.join(', ')} (its topics: ${listed})`);
      }
    }
    const updated = await markDropsRegenerate(tx, id, { topic_codes: codes, bypass_cache: request.bypassCache === true, requested_at: new Date().toISOString() });
    return { blueprint: updated, topics: codes?.length ?? blueprint.topics.length };
  });
}
