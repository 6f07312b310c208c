import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigurationError } from '../errors.ts';

/**
 * What the model costs, in USD per 1 M tokens. The defaults are OpenAI's list prices for standard
 * (not batch, not priority) processing, taken on PRICES_TAKEN_ON; `LLM_PRICES_FILE` overrides or adds
 * any model, an OpenAI-compatible server's included. A model with no price records its tokens and a
 * null cost.
 */

export const PRICES_TAKEN_ON = '2025-08-15';

export const ModelPriceSchema = z.strictObject({
  input: z.number().nonnegative(),
  /** Prompt tokens served from the provider's prompt cache; defaults to `input` when a file omits it. */
  cached_input: z.number().nonnegative().optional(),
  output: z.number().nonnegative(),
});
export type ModelPrice = { input: number; cached_input: number; output: number };

/** Per 1 M tokens: input, cached input, output (https://openai.com/api/pricing on PRICES_TAKEN_ON). */
export const DEFAULT_PRICES: Readonly<Record<string, ModelPrice>> = {
  'gpt-4o-mini': { input: 0.15, cached_input: 0.075, output: 0.6 },
  'gpt-4o': { input: 2.5, cached_input: 1.25, output: 10 },
  'gpt-4.1': { input: 2, cached_input: 0.5, output: 8 },
  'gpt-4.1-mini': { input: 0.4, cached_input: 0.1, output: 1.6 },
  'gpt-4.1-nano': { input: 0.1, cached_input: 0.025, output: 0.4 },
  'gpt-5': { input: 1.25, cached_input: 0.125, output: 10 },
  'gpt-5-mini': { input: 0.25, cached_input: 0.025, output: 2 },
  'gpt-5-nano': { input: 0.05, cached_input: 0.005, output: 0.4 },
  'o4-mini': { input: 1.1, cached_input: 0.275, output: 4.4 },
  o3: { input: 2, cached_input: 0.5, output: 8 },
};

export type TokenCounts = { prompt_tokens: number; cached_prompt_tokens: number; completion_tokens: number };

export type Prices = {
  /** The price of `model`: exact, else by its dated snapshot's base name (`gpt-4o-mini-2024-07-18`); null when unknown. */
  of(model: string): ModelPrice | null;
  /** USD for these tokens, or null when the model has no price. Cached prompt tokens are part of prompt_tokens. */
  cost(model: string, tokens: TokenCounts): number | null;
  /** Where the table came from, for logs and the API. */
  source: string;
};

const SNAPSHOT_SUFFIX = /-\d{4}-\d{2}-\d{2}$/;

export function createPrices(overrides: Record<string, ModelPrice> = {}, source = `defaults of ${PRICES_TAKEN_ON}`): Prices {
  const table = new Map(Object.entries({ ...DEFAULT_PRICES, ...overrides }));
  const of = (model: string) => table.get(model) ?? table.get(model.replace(SNAPSHOT_SUFFIX, '')) ?? null;
  return {
    of,
    source,
    cost(model, { prompt_tokens, cached_prompt_tokens, completion_tokens }) {
      const price = of(model);
      if (!price) return null;
      const cached = Math.min(cached_prompt_tokens, prompt_tokens);
      return ((prompt_tokens - cached) * price.input + cached * price.cached_input + completion_tokens * price.output) / 1_000_000;
    },
  };
}

const PricesFileSchema = z.record(z.string().min(1), ModelPriceSchema);

/** The defaults, with `LLM_PRICES_FILE`'s entries over them; a bad file is a configuration error naming what is wrong. */
export function loadPrices(file: string | undefined): Prices {
  if (!file) return createPrices();
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConfigurationError(`LLM_PRICES_FILE: cannot read ${file} as JSON: ${(error as Error).message}`, ['LLM_PRICES_FILE']);
  }
  const result = PricesFileSchema.safeParse(parsed);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join('.') || '(file)'}: ${issue.message}`).join('; ');
    throw new ConfigurationError(`LLM_PRICES_FILE ${file}: expected { "<model>": { "input": USD per 1M tokens, "cached_input"?: …, "output": … } }: ${problems}`, ['LLM_PRICES_FILE']);
  }
  const overrides = Object.fromEntries(Object.entries(result.data).map(([model, p]) => [model, { input: p.input, cached_input: p.cached_input ?? p.input, output: p.output }]));
  return createPrices(overrides, `${file} over the defaults of ${PRICES_TAKEN_ON}`);
}
