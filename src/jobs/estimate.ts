import { zodResponseFormat } from 'openai/helpers/zod';
import type { Db } from '../db/client.ts';
import type { Env } from '../env.ts';
import { COUNTING_RULE, countPromptTokens, encodingOf, loadEncoding, type Encoding } from '../llm/estimate-tokens.ts';
import type { Prices } from '../llm/prices.ts';
import { cachedDropHashes, completionHistory, dueBlueprints, pendingItems, pendingItemsSample, pendingItemsSize } from './estimate-backlog.ts';
import { extractBlueprintsJob } from './extract-blueprints.ts';
import { BlueprintOutputSchema, EXTRACT_PROMPT, EXTRACT_SYSTEM_PROMPT, extractUserPrompt } from './extract-blueprints.prompt.ts';
import { dropCacheHash, generateDropsJob, topicsToWork } from './generate-drops.ts';
import { DROPS_PROMPT, DROPS_SYSTEM_PROMPT, DropsOutputSchema, dropsUserPrompt } from './generate-drops.prompt.ts';

/**
 * What a run would cost before it runs, without calling the model: the items it would claim (or
 * the whole backlog), the exact messages and response schema it would send, counted with the
 * model's tokenizer, and completion tokens from the job's recent runs. One call per item is
 * assumed: retries and re-asks are not in the estimate.
 */

export type EstimateSettings = { model: string; prices: Prices; extractBatchSize: number; dropsBatchSize: number };
export type EstimateDeps = EstimateSettings & { db: Db };

export type Estimate = {
  job_name: string;
  model: string;
  /** Harvest items for extract-blueprints; topics (cache hits included) for generate-drops. */
  items: number;
  llm_calls: number;
  cache_hits: number;
  prompt_tokens: number;
  completion_tokens: number;
  /** null when the model has no price. */
  cost_usd: number | null;
  basis: { scope: string; prompt_tokens: string; completion_tokens: string; cost: string };
};

export class NotEstimableError extends Error {}

/** The estimate's settings from the environment and the price table the runs use, for the service and the CLI alike. */
export function estimateSettingsOf(env: Pick<Env, 'OPENAI_MODEL' | 'EXTRACT_BATCH_SIZE' | 'DROPS_BATCH_SIZE'>, prices: Prices): EstimateSettings {
  return { model: env.OPENAI_MODEL, prices, extractBatchSize: env.EXTRACT_BATCH_SIZE, dropsBatchSize: env.DROPS_BATCH_SIZE };
}

/** The response formats as the jobs send them: the prompts' schemas under the prompts' names. */
const EXTRACT_FORMAT = zodResponseFormat(BlueprintOutputSchema, EXTRACT_PROMPT.name);
const DROPS_FORMAT = zodResponseFormat(DropsOutputSchema, DROPS_PROMPT.name);

/** Completion tokens per call when the job has no run with calls yet: a blueprint of ~20 topics; 3 to 5 drops of 80-200 Portuguese words. */
export const DEFAULT_COMPLETION_TOKENS: Readonly<Record<string, number>> = { [extractBlueprintsJob.name]: 700, [generateDropsJob.name]: 1_100 };
const HISTORY_RUNS = 20;

/**
 * Tokenizing runs at ~6 MB of text a second: user messages up to EXACT_UP_TO_CHARS (~0.3 s) are
 * all counted; above, an even sample of SAMPLE_CALLS is, scaled to all by characters.
 */
export const EXACT_UP_TO_CHARS = 2_000_000;
export const SAMPLE_CALLS = 500;
/** Characters tokenized between two yields to the event loop (~20 ms of CPU). */
const CHARS_PER_SLICE = 100_000;

export async function estimateJob(deps: EstimateDeps, jobName: string, { all }: { all: boolean }): Promise<Estimate> {
  const encodingInfo = encodingOf(deps.model);
  const encoding = await loadEncoding(encodingInfo.name);
  let counted: Counted;
  if (jobName === extractBlueprintsJob.name) counted = await countExtract(deps, encoding, all);
  else if (jobName === generateDropsJob.name) counted = await countDrops(deps, encoding, all);
  else throw new NotEstimableError(`job "${jobName}" makes no LLM calls to estimate`);

  const history = await completionHistory(deps.db, jobName, HISTORY_RUNS);
  const perCall = history.calls > 0 ? history.completion_tokens / history.calls : DEFAULT_COMPLETION_TOKENS[jobName]!;
  const completionTokens = Math.round(perCall * counted.llmCalls);
  const cost = deps.prices.cost(deps.model, { prompt_tokens: counted.promptTokens, cached_prompt_tokens: 0, completion_tokens: completionTokens });
  const encodingNote = encodingInfo.known ? encodingInfo.name : `${encodingInfo.name} (model "${deps.model}" not recognised: assumed)`;
  return {
    job_name: jobName,
    model: deps.model,
    items: counted.items,
    llm_calls: counted.llmCalls,
    cache_hits: counted.cacheHits,
    prompt_tokens: counted.promptTokens,
    completion_tokens: completionTokens,
    cost_usd: cost === null ? null : Math.round(cost * 1e6) / 1e6,
    basis: {
      scope: `${all ? 'the whole backlog' : `the next run (batch of ${counted.batch})`}; one call per item, retries and re-asks not included`,
      prompt_tokens: `${encodingNote} over the messages and response schema the run would send: ${COUNTING_RULE}${counted.sampled ? `; ${counted.sampled}` : ''}`,
      completion_tokens:
        history.calls > 0
          ? `mean of ${history.calls} calls (${Math.round(perCall)} tokens each) in the last ${history.runs === 1 ? 'run' : `${history.runs} runs`} that called the model`
          : `default of ${perCall} tokens per call: no run has called the model yet`,
      cost:
        cost === null
          ? `no price for model "${deps.model}" (add it to LLM_PRICES_FILE): cost_usd is null`
          : `prices of ${deps.prices.source}, no prompt-cache discount (an upper bound on input)`,
    },
  };
}

type Counted = { items: number; llmCalls: number; cacheHits: number; promptTokens: number; batch: string; sampled?: string };

async function countExtract(deps: EstimateDeps, encoding: Encoding, all: boolean): Promise<Counted> {
  const perCall = countPromptTokens(encoding, [{ role: 'system', content: EXTRACT_SYSTEM_PROMPT }, { role: 'user', content: '' }], EXTRACT_FORMAT);
  const batch = `${deps.extractBatchSize} harvest items, EXTRACT_BATCH_SIZE`;
  if (!all) {
    const items = await pendingItems(deps.db, deps.extractBatchSize);
    const userTokens = await sumTokens(encoding, items.map(extractUserPrompt));
    return { items: items.length, llmCalls: items.length, cacheHits: 0, promptTokens: perCall * items.length + userTokens, batch };
  }
  const size = await pendingItemsSize(deps.db);
  const step = Math.ceil(size.count / SAMPLE_CALLS);
  if (size.chars <= EXACT_UP_TO_CHARS || step <= 1) {
    const items = await pendingItems(deps.db, Math.max(size.count, 1));
    const userTokens = await sumTokens(encoding, items.map(extractUserPrompt));
    return { items: items.length, llmCalls: items.length, cacheHits: 0, promptTokens: perCall * items.length + userTokens, batch };
  }
  // Tokenizing 10 k notices takes seconds of CPU: an even sample gives tokens per character, the
  // database gives the characters of all of them.
  const sample = await pendingItemsSample(deps.db, step);
  const sampleTokens = await sumTokens(encoding, sample.map(extractUserPrompt));
  const sampleChars = sample.reduce((sum, item) => sum + item.title.length + (item.source_url?.length ?? 0) + item.content.length, 0);
  const userTokens = Math.round(sampleChars > 0 ? (sampleTokens * size.chars) / sampleChars : 0);
  return {
    items: size.count,
    llmCalls: size.count,
    cacheHits: 0,
    promptTokens: perCall * size.count + userTokens,
    batch,
    sampled: `user messages of ${sample.length} of the ${size.count} items (one in ${step}) tokenized, scaled to all by characters`,
  };
}

async function countDrops(deps: EstimateDeps, encoding: Encoding, all: boolean): Promise<Counted> {
  const perCall = countPromptTokens(encoding, [{ role: 'system', content: DROPS_SYSTEM_PROMPT }, { role: 'user', content: '' }], DROPS_FORMAT);
  const batch = `${deps.dropsBatchSize} blueprints, DROPS_BATCH_SIZE`;
  const calls: string[] = [];
  let items = 0;
  let cacheHits = 0;
  const PAGE = 1_000;
  for (let afterId = 0; ; ) {
    const blueprints = await dueBlueprints(deps.db, afterId, all ? PAGE : deps.dropsBatchSize);
    const cachedByBlueprint = await cachedDropHashes(deps.db, blueprints.map((b) => b.id));
    for (const [i, blueprint] of blueprints.entries()) {
      // Hashing is the costly part (~13 µs a topic): only for blueprints with cache entries, and in slices.
      if (i % 100 === 99) await yieldToEventLoop();
      const cached = blueprint.drops_regenerate?.bypass_cache === true ? undefined : cachedByBlueprint.get(blueprint.id);
      for (const topic of topicsToWork(blueprint)) {
        items += 1;
        if (cached?.has(dropCacheHash(blueprint.id, topic.code))) cacheHits += 1;
        else calls.push(dropsUserPrompt(blueprint.exam_name, topic));
      }
    }
    if (!all || blueprints.length < PAGE) break;
    afterId = blueprints.at(-1)!.id;
  }
  const chars = (texts: string[]) => texts.reduce((sum, text) => sum + text.length, 0);
  const step = Math.ceil(calls.length / SAMPLE_CALLS);
  if (chars(calls) <= EXACT_UP_TO_CHARS || step <= 1) {
    return { items, llmCalls: calls.length, cacheHits, promptTokens: perCall * calls.length + (await sumTokens(encoding, calls)), batch };
  }
  const sample = calls.filter((_, i) => i % step === 0);
  const userTokens = Math.round(((await sumTokens(encoding, sample)) * chars(calls)) / Math.max(chars(sample), 1));
  return {
    items,
    llmCalls: calls.length,
    cacheHits,
    promptTokens: perCall * calls.length + userTokens,
    batch,
    sampled: `user messages of ${sample.length} of the ${calls.length} calls (one in ${step}) tokenized, scaled to all by characters`,
  };
}

/** As generate-drops picks them: all topics, or those a pending regenerate request names. */
/** Tokens of all texts, yielding to the event loop between slices so other requests keep being answered. */
async function sumTokens(encoding: Encoding, texts: readonly string[]): Promise<number> {
  let total = 0;
  let sinceYield = 0;
  for (const text of texts) {
    total += encoding.count(text);
    sinceYield += text.length;
    if (sinceYield >= CHARS_PER_SLICE) {
      sinceYield = 0;
      await yieldToEventLoop();
    }
  }
  return total;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
