import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import type { z } from 'zod';
import type { CompletionUsage } from 'openai/resources/completions';
import { noEvents, type SchedulerEventMap, type SchedulerEvents } from '../events.ts';
import type { Logger } from '../logger.ts';
import { abortReason, backoffMs, BadOutputError, classify, LlmItemError, LlmUnavailableError, TransientError } from './errors.ts';

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
};

export type LlmUsage = { calls: number; prompt_tokens: number; completion_tokens: number; total_tokens: number };

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
};

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
  structured<T>(request: StructuredRequest<T>): Promise<{ data: T; raw: unknown }>;
};

/** What a session's calls are told as on the event seam. */
export type LlmSessionContext = { job?: string };

export type Llm = { model: string; session(context?: LlmSessionContext): LlmSession };

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

  return {
    model: config.model,
    session(context: LlmSessionContext = {}) {
      if (!config.apiKey) throw new LlmUnavailableError('OPENAI_API_KEY is not set: set it in the environment of the process that runs the jobs, and restart it', ['OPENAI_API_KEY']);
      const usage: LlmUsage = { calls: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
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

      /** One HTTP attempt, its answer checked; told to the event seam when it left. */
      async function attempt<T>({ schema, validate, name, system, user, signal }: StructuredRequest<T>): Promise<{ data: T; raw: unknown }> {
        signal?.throwIfAborted();
        const sentBefore = usage.calls;
        const started = performance.now();
        let tokens: CompletionUsage | undefined;
        const told = (outcome: SchedulerEventMap['llm:call']['outcome'], status: number | null) => {
          if (usage.calls === sentBefore) return; // aborted before it left: no call was made
          events.emit('llm:call', {
            job: context.job ?? null,
            model: config.model,
            outcome,
            status,
            latencyMs: performance.now() - started,
            promptTokens: tokens?.prompt_tokens ?? 0,
            completionTokens: tokens?.completion_tokens ?? 0,
            cachedTokens: tokens?.prompt_tokens_details?.cached_tokens ?? 0,
          });
        };
        try {
          const completion = await client.chat.completions.parse(
            {
              model: config.model,
              messages: [
                { role: 'system', content: system },
                { role: 'user', content: user },
              ],
              response_format: responseFormatOf(schema, name),
            },
            { signal },
          );
          tokens = completion.usage;
          usage.prompt_tokens += completion.usage?.prompt_tokens ?? 0;
          usage.completion_tokens += completion.usage?.completion_tokens ?? 0;
          usage.total_tokens += completion.usage?.total_tokens ?? 0;
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
      async function withRetries<T>(request: StructuredRequest<T>): Promise<{ data: T; raw: unknown }> {
        for (let attempts = 1; ; attempts += 1) {
          try {
            return await attempt(request);
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
        async structured<T>(request: StructuredRequest<T>) {
          let first: string | undefined;
          for (let ask = 1; ; ask += 1) {
            try {
              return await withRetries(request);
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
