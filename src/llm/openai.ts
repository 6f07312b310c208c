import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { parseChatCompletion } from 'openai/lib/parser';
import type { z } from 'zod';
import type { CompletionUsage } from 'openai/resources/completions';
import { noEvents, type SchedulerEventMap, type SchedulerEvents } from '../events.ts';
import type { Logger } from '../logger.ts';
import { abortReason, backoffMs, BadOutputError, classify, LlmItemError, LlmUnavailableError, TransientError } from './errors.ts';
import type { LedgerOutcome, LedgerSink } from './ledger.ts';
import type { Prices } from './prices.ts';

// The jobs catch these by importing them from here.
export { LlmItemError, LlmUnavailableError } from './errors.ts';

export type LlmConfig = {
  /** Where each HTTP attempt is told (`llm:call`); none by default. */
  events?: SchedulerEvents;
  apiKey?: string;
  baseURL?: string;
  model: string;
  /** Timeout of one HTTP attempt. */
  timeoutMs: number;
  /** Retries of one call after a transient failure (429, 408, 5xx, connection error, timeout). */
  maxRetries: number;
  /** Longest wait before a retry, a server's Retry-After included (default 30 s). */
  retryAfterMaxMs?: number;
  /** First backoff wait when the server names none, doubled on each retry, with jitter (default 1 s). */
  backoffBaseMs?: number;
  /** What calls cost; without it every cost is null. */
  prices?: Prices;
  /** Where every HTTP attempt is recorded (the ledger); none by default. */
  ledger?: LedgerSink;
};

export type LlmUsage = {
  calls: number;
  prompt_tokens: number;
  /** Part of prompt_tokens the provider served from its prompt cache. */
  cached_prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** USD of all the calls; null when the model has no price. */
  cost_usd: number | null;
};

export type StructuredRequest<T> = {
  /** The JSON schema sent to the model (Structured Outputs). */
  schema: z.ZodType<T>;
  /**
   * Our own rules beyond the JSON schema (non-empty values, unique codes…). An answer that breaks
   * them counts as bad output, like invalid JSON: asked once more, then the item fails.
   */
  validate?: z.ZodType<T>;
  /** Name of the response format, e.g. "exam_blueprint". */
  name: string;
  system: string;
  user: string;
  signal?: AbortSignal;
  /** Where retries and re-asks are reported (warn). */
  logger?: Logger;
  /** What the call is for, recorded in the ledger: `{ harvest_item_id }` or `{ blueprint_id, topic_code }`. */
  item?: Record<string, string | number>;
  /** The prompt's version (src/jobs/prompt-version.ts), recorded in the ledger. */
  promptVersion?: string;
};

/** An answer, with what all its attempts (retries and re-asks included) cost; null when the model has no price. */
export type StructuredAnswer<T> = { data: T; raw: unknown; cost_usd: number | null };

/** One run's access to the model: Structured Outputs calls, with the usage they add up to. */
export type LlmSession = {
  model: string;
  /** Every HTTP attempt counts as a call, retries and re-asks included. */
  usage: LlmUsage;
  /**
   * One structured answer. Transient failures are retried up to `maxRetries` times with backoff;
   * bad output (invalid JSON, schema or `validate` violations, refusal, truncation) is asked for
   * once more. Throws LlmItemError when the item cannot be answered, LlmUnavailableError when the
   * job cannot work at all, and the signal's reason when aborted.
   */
  structured<T>(request: StructuredRequest<T>): Promise<StructuredAnswer<T>>;
};

/** What a session's calls are told as on the event seam and recorded as in the ledger. */
export type LlmSessionContext = { job?: string; logId?: number };

export type Llm = {
  model: string;
  session(context?: LlmSessionContext): LlmSession;
  /** Writes the ledger's buffered records; never throws (a failed write is kept for the next). */
  flush(): Promise<void>;
};

const MAX_ASKS = 2;

/**
 * zodResponseFormat converts the zod schema to JSON Schema each time it is called (~0.3 ms of CPU
 * per LLM call); the result depends only on the schema and the name, so it is made once for both.
 */
const responseFormats = new WeakMap<object, Map<string, unknown>>();
function responseFormatOf<T>(schema: z.ZodType<T>, name: string) {
  type Format = ReturnType<typeof zodResponseFormat<z.ZodType<T>>>;
  let byName = responseFormats.get(schema);
  if (!byName) responseFormats.set(schema, (byName = new Map()));
  let format = byName.get(name) as Format | undefined;
  if (!format) byName.set(name, (format = zodResponseFormat(schema, name)));
  return format;
}

export function createLlm(config: LlmConfig): Llm {
  const events = config.events ?? noEvents;
  const retryAfterMaxMs = config.retryAfterMaxMs ?? 30_000;
  const backoffBaseMs = config.backoffBaseMs ?? 1_000;
  const ledger = config.ledger;
  // Known once: the model is fixed for the Llm's life.
  const priced = config.prices?.of(config.model) != null;

  return {
    model: config.model,
    flush: () => ledger?.flush() ?? Promise.resolve(),
    session(context: LlmSessionContext = {}) {
      if (!config.apiKey) throw new LlmUnavailableError('OPENAI_API_KEY is not set: set it in the environment of the process that runs the jobs, and restart it', ['OPENAI_API_KEY']);
      const usage: LlmUsage = { calls: 0, prompt_tokens: 0, cached_prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, cost_usd: priced ? 0 : null };
      // A client per session (cheap; connections are pooled by fetch) so that `calls` counts the
      // HTTP requests really sent: an attempt aborted before it leaves costs nothing.
      const client = new OpenAI({
        apiKey: config.apiKey,
        baseURL: config.baseURL,
        timeout: config.timeoutMs,
        // Retries are ours (below): the SDK would obey any Retry-After, however long.
        maxRetries: 0,
        fetch: (input, init) => {
          usage.calls += 1;
          return fetch(input, init);
        },
      });

      /**
       * One HTTP attempt, its answer checked; told to the event seam and recorded in the ledger when
       * it left. `spent` adds up the cost of the item's attempts; `last`: no retry follows a transient failure.
       */
      async function attempt<T>(request: StructuredRequest<T>, spent: { cost_usd: number | null }, last: boolean): Promise<{ data: T; raw: unknown }> {
        const { schema, validate, name, system, user, signal } = request;
        signal?.throwIfAborted();
        const sentBefore = usage.calls;
        const startedAt = Date.now();
        const started = performance.now();
        let tokens: CompletionUsage | undefined;
        const told = (outcome: SchedulerEventMap['llm:call']['outcome'], status: number | null) => {
          if (usage.calls === sentBefore) return; // aborted before it left: no call was made
          const latencyMs = performance.now() - started;
          const promptTokens = tokens?.prompt_tokens ?? 0;
          const completionTokens = tokens?.completion_tokens ?? 0;
          const cachedTokens = tokens?.prompt_tokens_details?.cached_tokens ?? 0;
          events.emit('llm:call', { job: context.job ?? null, model: config.model, outcome, status, latencyMs, promptTokens, completionTokens, cachedTokens });
          const counts = { prompt_tokens: promptTokens, cached_prompt_tokens: cachedTokens, completion_tokens: completionTokens };
          // To the ledger column's 8 decimals, so sums of the log, the items and the ledger agree.
          const cost = priced ? Math.round(config.prices!.cost(config.model, counts)! * 1e8) / 1e8 : null;
          usage.cached_prompt_tokens += cachedTokens;
          if (cost !== null) {
            usage.cost_usd = (usage.cost_usd ?? 0) + cost;
            spent.cost_usd = (spent.cost_usd ?? 0) + cost;
          }
          ledger?.record({
            at: startedAt,
            log_id: context.logId ?? null,
            job_name: context.job ?? '',
            item: request.item ?? null,
            model: config.model,
            prompt_version: request.promptVersion ?? null,
            ...counts,
            latency_ms: Math.round(latencyMs),
            outcome: ledgerOutcomeOf(outcome, last),
            http_status: status,
            cost_usd: cost,
          });
        };
        try {
          const body = {
            model: config.model,
            messages: [
              { role: 'system' as const, content: system },
              { role: 'user' as const, content: user },
            ],
            response_format: responseFormatOf(schema, name),
          };
          // What chat.completions.parse does, in two steps: the usage of an answer that cannot be
          // parsed (invalid JSON, truncated) is billed all the same, so it is read before parsing.
          const answer = await client.chat.completions.create(body, { signal });
          tokens = answer.usage;
          usage.prompt_tokens += tokens?.prompt_tokens ?? 0;
          usage.completion_tokens += tokens?.completion_tokens ?? 0;
          usage.total_tokens += tokens?.total_tokens ?? 0;
          const completion = parseChatCompletion(answer, body);
          const message = completion.choices[0]?.message;
          if (message?.refusal) throw new BadOutputError(`model refused: ${message.refusal}`);
          if (message?.parsed == null) throw new BadOutputError('model returned no structured output');
          const raw: unknown = JSON.parse(message.content ?? 'null');
          if (!validate) {
            told('ok', 200);
            return { data: message.parsed as T, raw };
          }
          const checked = validate.safeParse(message.parsed);
          if (!checked.success) throw new BadOutputError(`model output breaks the rules: ${checked.error.issues.map((i) => i.message).join('; ')}`);
          told('ok', 200);
          return { data: checked.data, raw };
        } catch (error) {
          const classified = classify(error, signal, config.timeoutMs, config.model);
          told(outcomeOf(classified, signal), error instanceof OpenAI.APIError ? (error.status ?? null) : tokens ? 200 : null);
          throw classified;
        }
      }

      /** Attempts until one is not transient, at most maxRetries + 1. */
      async function withRetries<T>(request: StructuredRequest<T>, spent: { cost_usd: number | null }): Promise<{ data: T; raw: unknown }> {
        for (let attempts = 1; ; attempts += 1) {
          try {
            return await attempt(request, spent, attempts > config.maxRetries);
          } catch (error) {
            if (!(error instanceof TransientError)) throw error;
            if (attempts > config.maxRetries) {
              const detail = error.detail ? `: ${error.detail}` : '';
              throw new LlmItemError(`${error.summary} after ${attempts} attempt${attempts === 1 ? '' : 's'}${detail}`);
            }
            const waitMs = Math.min(retryAfterMaxMs, error.retryAfterMs ?? backoffMs(backoffBaseMs, attempts));
            request.logger?.warn(
              { format: request.name, reason: error.message, attempt: attempts, retryInMs: Math.round(waitMs) },
              `LLM call failed (${error.summary}); retry ${attempts}/${config.maxRetries} in ${(waitMs / 1000).toFixed(1)} s`,
            );
            await sleep(waitMs, request.signal);
          }
        }
      }

      return {
        model: config.model,
        usage,
        async structured<T>(request: StructuredRequest<T>): Promise<StructuredAnswer<T>> {
          let first: string | undefined;
          const spent = { cost_usd: priced ? 0 : null };
          for (let ask = 1; ; ask += 1) {
            try {
              const answer = await withRetries(request, spent);
              return { ...answer, cost_usd: spent.cost_usd };
            } catch (error) {
              if (!(error instanceof BadOutputError)) throw error;
              if (ask >= MAX_ASKS) {
                const earlier = first !== undefined && first !== error.message ? `; first answer: ${first}` : '';
                throw new LlmItemError(`${error.message} (after ${MAX_ASKS} asks${earlier})`);
              }
              first = error.message;
              request.logger?.warn({ format: request.name, reason: error.message }, `unusable LLM answer (${error.message}); asking once more`);
            }
          }
        },
      };
    },
  };
}

/** How an attempt's error is told on the event seam. */
function outcomeOf(error: Error, signal: AbortSignal | undefined): SchedulerEventMap['llm:call']['outcome'] {
  if (signal?.aborted) return 'aborted';
  if (error instanceof BadOutputError) return 'bad_output';
  if (error instanceof TransientError) return 'transient';
  if (error instanceof LlmUnavailableError) return 'unavailable';
  return 'rejected';
}

/**
 * The ledger's outcome of an attempt: a transient failure is `retry` when a retry follows and
 * `error` when retries are spent; rejected (other 4xx) and unavailable (key, model) are `error`;
 * ok, bad_output and aborted are kept.
 */
function ledgerOutcomeOf(outcome: SchedulerEventMap['llm:call']['outcome'], last: boolean): LedgerOutcome {
  if (outcome === 'transient') return last ? 'error' : 'retry';
  if (outcome === 'rejected' || outcome === 'unavailable') return 'error';
  return outcome;
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
