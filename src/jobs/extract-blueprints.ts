import { and, eq, inArray, sql } from 'drizzle-orm';
import { PIPELINE_QUEUE, type JobContext, type JobDefinition, type JobOutcome } from './job.ts';
import { harvestItems, type HarvestItemRow } from '../db/schema.ts';
import { LlmItemError, type LlmSession } from '../llm/openai.ts';
import { claimPendingHarvestItems, releaseClaims } from '../db/claims.ts';
import { BlueprintOutputSchema, EXTRACT_PROMPT, EXTRACT_SYSTEM_PROMPT, extractUserPrompt } from './extract-blueprints.prompt.ts';
import { forEachBounded } from './for-each-bounded.ts';
import { ItemFailures } from './item-failures.ts';
import { budgetMetadata, budgetStopMessage, NO_BUDGET } from './spend-budget.ts';

const ITEM_NOUN = 'harvest items';

// Defined beside the prompt (its version hashes it); exported here too, where it always was.
export { BlueprintOutputSchema };

/** What we accept beyond the JSON schema: non-empty values and unique topic codes. */
const BlueprintRulesSchema = BlueprintOutputSchema.superRefine((blueprint, ctx) => {
  if (!blueprint.exam_name.trim()) ctx.addIssue({ code: 'custom', message: 'exam_name is empty' });
  if (blueprint.topics.length === 0) ctx.addIssue({ code: 'custom', message: 'no topics' });
  const seen = new Set<string>();
  for (const topic of blueprint.topics) {
    if (!topic.code.trim() || !topic.name.trim() || !topic.discipline.trim()) {
      ctx.addIssue({ code: 'custom', message: `topic ${JSON.stringify(topic.code)} has an empty field` });
    }
    if (seen.has(topic.code)) ctx.addIssue({ code: 'custom', message: `topic code ${JSON.stringify(topic.code)} is repeated` });
    seen.add(topic.code);
  }
});

export async function extractBlueprints(ctx: JobContext): Promise<JobOutcome> {
  const { db, logger, settings, logId } = ctx;
  // Before claiming anything: a run that cannot call the model must leave every item PENDING.
  const llm = ctx.llm.session();
  const budget = ctx.budget ?? NO_BUDGET;
  // A budget already spent: nothing is claimed.
  const items = (await budget.allows()) ? await claimPendingHarvestItems(db, logId, settings.extractBatchSize) : [];
  logger.info(`found ${items.length} items to process`);

  let succeeded = 0;
  const failures = new ItemFailures();
  const progress = () => ctx.progress({ total: items.length, processed: succeeded, failed: failures.count });
  progress();
  try {
    let started = 0;
    await forEachBounded(items, settings.llmConcurrency, ctx.signal, async (item, signal) => {
      // Past the budget the item is not started: it goes back to PENDING with the claim's release.
      if (!(await budget.allows())) return;
      started += 1;
      logger.info({ harvestId: item.id }, `processing harvest id=${item.id}`);
      try {
        await extractOne(ctx, llm, item, signal);
        succeeded += 1;
        logger.info({ harvestId: item.id }, `blueprint saved for harvest id=${item.id}`);
      } catch (error) {
        if (!(error instanceof LlmItemError)) throw error;
        await markItemError(ctx, item.id, error.message);
        // Counted once marked, so progress steps one item at a time.
        failures.add({ harvest_item_id: item.id }, error);
        logger.warn({ harvestId: item.id, reason: error.message }, `harvest id=${item.id} failed`);
      }
      progress();
    });
    if (budget.stopped) logger.warn({ budget: budget.stopped }, budgetStopMessage(budget.stopped, items.length - started, ITEM_NOUN));
    const refused = failures.configurationError(succeeded, ITEM_NOUN);
    if (refused) {
      // The setting failed them, not the items: they go back to PENDING for when it is fixed.
      await unmarkItemErrors(ctx, refused.failures.map((f) => Number(f.item.harvest_item_id)));
      throw refused;
    }
  } finally {
    // After a job-level failure the items not yet done go back to PENDING, untouched.
    await releaseClaims(db, [logId]);
  }
  return { itemsProcessed: succeeded, itemsFailed: failures.count, failures: failures.list(), metadata: { items_claimed: items.length, ...budgetMetadata(budget) } };
}

async function extractOne(ctx: JobContext, llm: LlmSession, item: HarvestItemRow, signal: AbortSignal): Promise<void> {
  // Bad answers (our rules included) are asked for once more inside structured(), then fail the item.
  const { data: blueprint, raw, cost_usd } = await llm.structured({
    schema: BlueprintOutputSchema,
    validate: BlueprintRulesSchema,
    name: EXTRACT_PROMPT.name,
    system: EXTRACT_SYSTEM_PROMPT,
    user: extractUserPrompt(item),
    item: { harvest_item_id: item.id },
    promptVersion: EXTRACT_PROMPT.version,
    signal,
    logger: ctx.logger.child({ harvestId: item.id }),
  });
  // One statement (one round trip, atomic): the item is marked done and its blueprint inserted only
  // while this run still holds the claim; otherwise another run owns the item now.
  const { rows } = await ctx.db.execute<{ claimed: number }>(sql`
    with claimed as (
      update harvest_items set status = 'BLUEPRINT_DONE', error_message = null, claimed_by_log_id = null, updated_at = now()
      where id = ${item.id} and claimed_by_log_id = ${ctx.logId}
      returning id
    ), saved as (
      insert into exam_blueprints (harvest_item_id, exam_name, organization, topics, raw_output, model, prompt_version, cost_usd)
      select id, ${blueprint.exam_name.trim()}, ${blueprint.organization?.trim() || null},
        ${JSON.stringify(blueprint.topics)}::jsonb, ${JSON.stringify(raw)}::jsonb, ${llm.model}, ${EXTRACT_PROMPT.version}, ${cost_usd}::numeric
      from claimed
      on conflict (harvest_item_id) do nothing
    )
    select count(*)::int as claimed from claimed`);
  if (rows[0]?.claimed !== 1) throw new Error(`claim on harvest id=${item.id} was lost`);
}

async function markItemError(ctx: JobContext, itemId: number, reason: string): Promise<void> {
  await ctx.db
    .update(harvestItems)
    .set({ status: 'BLUEPRINT_ERROR', error_message: reason.slice(0, 2000), claimed_by_log_id: null, updated_at: sql`now()` })
    .where(and(eq(harvestItems.id, itemId), eq(harvestItems.claimed_by_log_id, ctx.logId)));
}

/** Only items still in the error this run gave them (nothing claims a BLUEPRINT_ERROR item). */
async function unmarkItemErrors(ctx: JobContext, itemIds: number[]): Promise<void> {
  await ctx.db
    .update(harvestItems)
    .set({ status: 'PENDING', error_message: null, updated_at: sql`now()` })
    .where(and(inArray(harvestItems.id, itemIds), eq(harvestItems.status, 'BLUEPRINT_ERROR')));
}

export const extractBlueprintsJob: JobDefinition = {
  name: 'extract-blueprints',
  description: 'Turns PENDING harvested exam notices into exam blueprints with the LLM',
  defaultCron: '0 */6 * * *',
  itemNoun: ITEM_NOUN,
  usesLlm: true,
  queue: { ...PIPELINE_QUEUE, expireInSeconds: 15 * 60 },
  handler: extractBlueprints,
};
