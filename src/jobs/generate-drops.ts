import { createHash } from 'node:crypto';
import { and, eq, sql } from 'drizzle-orm';
import { z } from 'zod';
import { PIPELINE_QUEUE, type JobContext, type JobDefinition, type JobOutcome } from './job.ts';
import { dropCache, type BlueprintTopic, type ExamBlueprintRow } from '../db/schema.ts';
import { markDropsGenerated } from '../db/blueprints.ts';
import { replaceTopicDrops, splitCost } from '../db/drops.ts';
import { LlmItemError, type LlmSession } from '../llm/openai.ts';
import { claimBlueprintsWithoutDrops, releaseClaims } from '../db/claims.ts';
import { forEachBounded } from './for-each-bounded.ts';
import { ItemFailures } from './item-failures.ts';
import { budgetMetadata, budgetStopMessage, NO_BUDGET } from './spend-budget.ts';
import { DROPS_PROMPT, DROPS_SYSTEM_PROMPT, DropsOutputSchema, dropsUserPrompt } from './generate-drops.prompt.ts';

// Defined beside the prompt (its version hashes it); exported here too, where it always was.
export { DropsOutputSchema };
type DropsPayload = z.infer<typeof DropsOutputSchema>;

const DropsRulesSchema = DropsOutputSchema.superRefine((payload, ctx) => {
  if (payload.drops.length === 0) ctx.addIssue({ code: 'custom', message: 'no drops' });
  payload.drops.forEach((drop, i) => {
    if (!drop.title.trim() || !drop.content.trim()) ctx.addIssue({ code: 'custom', message: `drop ${i + 1} is empty` });
  });
});

/** The seed's cache key: SHA-256 of `blueprint_id:topic_code`. */
export function dropCacheHash(blueprintId: number, topicCode: string): string {
  return createHash('sha256').update(`${blueprintId}:${topicCode}`).digest('hex');
}

type Tally = { topicsDone: number; cacheHits: number; cacheBypassed: number; blueprintsCompleted: number };

/**
 * The topics a run works on: all of them, or those a pending regenerate-drops request names (the
 * others keep their drops as they are). Codes no longer in the blueprint are ignored.
 */
export function topicsToWork(blueprint: Pick<ExamBlueprintRow, 'topics' | 'drops_regenerate'>): BlueprintTopic[] {
  const codes = blueprint.drops_regenerate?.topic_codes;
  if (!codes) return blueprint.topics;
  return blueprint.topics.filter((topic) => codes.includes(topic.code));
}

const ITEM_NOUN = 'topics';

export async function generateDrops(ctx: JobContext): Promise<JobOutcome> {
  const { db, logger, settings, logId } = ctx;
  const llm = ctx.llm.session();
  const budget = ctx.budget ?? NO_BUDGET;
  // A budget already spent: nothing is claimed.
  const blueprints = (await budget.allows()) ? await claimBlueprintsWithoutDrops(db, logId, settings.dropsBatchSize) : [];
  logger.info(`found ${blueprints.length} blueprints without drops`);

  const tally: Tally = { topicsDone: 0, cacheHits: 0, cacheBypassed: 0, blueprintsCompleted: 0 };
  const failures = new ItemFailures();
  try {
    // One pool over the topics of every claimed blueprint, not one blueprint after the other: a
    // blueprint with fewer topics than LLM_CONCURRENCY (or a slow last topic) would otherwise leave
    // the other slots idle until it is done. Blueprints still start in id order.
    const left = new Map<number, { topics: number; failed: number }>();
    const work: Array<{ blueprint: ExamBlueprintRow; topic: BlueprintTopic }> = [];
    for (const blueprint of blueprints) {
      const topics = topicsToWork(blueprint);
      if (topics.length === 0) {
        ctx.signal.throwIfAborted();
        await blueprintDone(ctx, blueprint, tally);
        continue;
      }
      left.set(blueprint.id, { topics: topics.length, failed: 0 });
      for (const topic of topics) work.push({ blueprint, topic });
    }
    const progress = () => ctx.progress({ total: work.length, processed: tally.topicsDone, failed: failures.count });
    progress();
    let started = 0;
    await forEachBounded(work, settings.llmConcurrency, ctx.signal, async ({ blueprint, topic }, signal) => {
      // Past the budget the topic is not started; its blueprint stays unfinished and is unclaimed below.
      if (!(await budget.allows())) return;
      started += 1;
      const state = left.get(blueprint.id)!;
      try {
        const source = await topicDrops(ctx, llm, blueprint, topic, signal);
        if (source === 'cache') tally.cacheHits += 1;
        if (source === 'replaced') tally.cacheBypassed += 1;
        tally.topicsDone += 1;
      } catch (error) {
        if (!(error instanceof LlmItemError)) throw error;
        state.failed += 1;
        failures.add({ blueprint_id: blueprint.id, topic_code: topic.code }, error);
        logger.warn({ blueprintId: blueprint.id, topic: topic.code, reason: error.message }, `drops for topic ${topic.code} failed`);
      }
      state.topics -= 1;
      progress();
      // The blueprint's last topic: done when none of its topics failed.
      if (state.topics === 0 && state.failed === 0) await blueprintDone(ctx, blueprint, tally);
    });
    if (budget.stopped) logger.warn({ budget: budget.stopped }, budgetStopMessage(budget.stopped, work.length - started, ITEM_NOUN));
    // Nothing of a failed topic was written, so a configuration failure leaves its blueprint as it was.
    const refused = failures.configurationError(tally.topicsDone, ITEM_NOUN);
    if (refused) throw refused;
  } finally {
    await releaseClaims(db, [logId]);
  }
  return {
    itemsProcessed: tally.topicsDone,
    itemsFailed: failures.count,
    failures: failures.list(),
    metadata: { blueprints: blueprints.length, blueprints_completed: tally.blueprintsCompleted, cache_hits: tally.cacheHits, cache_bypassed: tally.cacheBypassed, ...budgetMetadata(budget) },
  };
}

async function blueprintDone(ctx: JobContext, blueprint: ExamBlueprintRow, tally: Tally): Promise<void> {
  await markDropsGenerated(ctx.db, blueprint.id);
  tally.blueprintsCompleted += 1;
  ctx.logger.info({ blueprintId: blueprint.id }, `all topics of blueprint id=${blueprint.id} have drops`);
}

/**
 * Saves the drops of one topic: from the cache when it has them (no LLM call), else from the model.
 * A regenerate request with bypass_cache asks the model anyway and replaces the topic's drops.
 */
async function topicDrops(ctx: JobContext, llm: LlmSession, blueprint: ExamBlueprintRow, topic: BlueprintTopic, signal: AbortSignal): Promise<'cache' | 'model' | 'replaced'> {
  const hash = dropCacheHash(blueprint.id, topic.code);
  const bypassCache = blueprint.drops_regenerate?.bypass_cache === true;
  const [cached] = bypassCache
    ? []
    : await ctx.db
        .select({ payload: dropCache.payload, model: dropCache.model, prompt_version: dropCache.prompt_version })
        .from(dropCache)
        .where(and(eq(dropCache.blueprint_id, blueprint.id), eq(dropCache.hash, hash)));
  const cachedPayload = cached ? DropsRulesSchema.safeParse(cached.payload) : undefined;

  let payload: DropsPayload;
  // What made the payload: the cache entry's maker (a hit costs nothing), or this run's calls.
  let made: { model: string | null; promptVersion: string | null; costUsd: number | null };
  if (cachedPayload?.success) {
    payload = cachedPayload.data;
    made = { model: cached!.model, promptVersion: cached!.prompt_version, costUsd: 0 };
  } else {
    // Bad answers (our rules included) are asked for once more inside structured(), then fail the topic.
    const { data, cost_usd } = await llm.structured({
      schema: DropsOutputSchema,
      validate: DropsRulesSchema,
      name: DROPS_PROMPT.name,
      system: DROPS_SYSTEM_PROMPT,
      user: dropsUserPrompt(blueprint.exam_name, topic),
      item: { blueprint_id: blueprint.id, topic_code: topic.code },
      promptVersion: DROPS_PROMPT.version,
      signal,
      logger: ctx.logger.child({ blueprintId: blueprint.id, topic: topic.code }),
    });
    payload = data;
    made = { model: llm.model, promptVersion: DROPS_PROMPT.version, costUsd: cost_usd };
  }

  if (bypassCache) {
    const drops = payload.drops.map((drop) => ({ title: drop.title.trim(), content: drop.content.trim() }));
    await replaceTopicDrops(ctx.db, { blueprintId: blueprint.id, topicCode: topic.code, cacheHash: hash, drops, model: llm.model, promptVersion: DROPS_PROMPT.version, costUsd: made.costUsd });
    return 'replaced';
  }
  const hit = Boolean(cachedPayload?.success);
  // The topic's cost split over its drops, so they sum to it; 0 each from the cache.
  const costs = splitCost(made.costUsd, payload.drops.length);
  // One statement (one round trip, atomic): the cache entry (unless it came from there) and the drops.
  const rows = payload.drops.map(
    (drop, i) => sql`(${blueprint.id}, ${topic.code}, ${drop.title.trim()}, ${drop.content.trim()}, ${i + 1}, ${made.model}, ${made.promptVersion}, ${costs[i]}::numeric)`,
  );
  const insertDrops = sql`
    insert into drops (blueprint_id, topic_code, title, content, position, model, prompt_version, cost_usd) values ${sql.join(rows, sql`, `)}
    on conflict (blueprint_id, topic_code, position) do nothing`;
  await ctx.db.execute(
    hit
      ? insertDrops
      : sql`
        with cached as (
          insert into drop_cache (blueprint_id, hash, payload, model, prompt_version, cost_usd)
          values (${blueprint.id}, ${hash}, ${JSON.stringify(payload)}::jsonb, ${made.model}, ${made.promptVersion}, ${made.costUsd}::numeric)
          on conflict (blueprint_id, hash) do update
          set payload = excluded.payload, model = excluded.model, prompt_version = excluded.prompt_version, cost_usd = excluded.cost_usd
        )
        ${insertDrops}`,
  );
  return hit ? 'cache' : 'model';
}

export const generateDropsJob: JobDefinition = {
  name: 'generate-drops',
  description: 'Writes short lessons (drops) for every topic of blueprints that have none yet',
  defaultCron: '0 0 * * *',
  itemNoun: ITEM_NOUN,
  usesLlm: true,
  queue: { ...PIPELINE_QUEUE, expireInSeconds: 30 * 60 },
  handler: generateDrops,
};
