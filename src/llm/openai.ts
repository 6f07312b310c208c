import OpenAI from 'openai';
import { ContentFilterFinishReasonError, LengthFinishReasonError } from 'openai/error';
import { zodResponseFormat } from 'openai/helpers/zod';
import type { z } from 'zod';
import { ConfigurationError } from '../errors.ts';
import type { Logger } from '../logger.ts';

export type LlmConfig = {
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

export type Llm = { model: string; session(): LlmSession };

/**
 * The job cannot do its work (no key, key rejected, model unknown): fail the run, touch no item,
 * and do not retry: the message says which setting to fix.
 */
export class LlmUnavailableError extends ConfigurationError {}

/** This one item could not be answered (invalid output, refusal, truncated, upstream errors). */
export class LlmItemError extends Error {
  /** The HTTP status the server answered with, when that is why. */
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.status = status;
  }
}

/** An answer that is there but unusable: worth asking once more. */
class BadOutputError extends Error {}

/** A failure that may pass by itself: worth a retry after a wait. */
class TransientError extends Error {
  /** What failed, e.g. "LLM error 429" (the message adds the details). */
  readonly summary: string;
  readonly detail: string;
  /** The wait the server asked for (Retry-After), if any. */
  readonly retryAfterMs: number | undefined;
  constructor(summary: string, detail: string, retryAfterMs?: number) {
    super(detail ? `${summary}: ${detail}` : summary);
    this.summary = summary;
    this.detail = detail;
    this.retryAfterMs = retryAfterMs;
  }
}

/** Statuses worth a retry; 401/403/404 stop the job, other 4xx fail the item at once. */
const isTransientStatus = (status: number) => status === 408 || status === 429 || status >= 500;

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
  const retryAfterMaxMs = config.retryAfterMaxMs ?? 30_000;
  const backoffBaseMs = config.backoffBaseMs ?? 1_000;

  return {
    model: config.model,
    session() {
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

      /** One HTTP attempt, its answer checked. */
      async function attempt<T>({ schema, validate, name, system, user, signal }: StructuredRequest<T>): Promise<{ data: T; raw: unknown }> {
        signal?.throwIfAborted();
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
          usage.prompt_tokens += completion.usage?.prompt_tokens ?? 0;
          usage.completion_tokens += completion.usage?.completion_tokens ?? 0;
          usage.total_tokens += completion.usage?.total_tokens ?? 0;
          const message = completion.choices[0]?.message;
          if (message?.refusal) throw new BadOutputError(`model refused: ${message.refusal}`);
          if (message?.parsed == null) throw new BadOutputError('model returned no structured output');
          const raw: unknown = JSON.parse(message.content ?? 'null');
          if (!validate) return { data: message.parsed as T, raw };
          const checked = validate.safeParse(message.parsed);
          if (!checked.success) throw new BadOutputError(`model output breaks the rules: ${checked.error.issues.map((i) => i.message).join('; ')}`);
          return { data: checked.data, raw };
        } catch (error) {
          throw classify(error, signal, config.timeoutMs, config.model);
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

/** base, 2×base, 4×base… less up to 25 % jitter, so parallel calls do not retry in step. */
function backoffMs(baseMs: number, retry: number): number {
  return baseMs * 2 ** (retry - 1) * (1 - Math.random() * 0.25);
}

/** The wait a response asks for: `retry-after-ms`, or `retry-after` in seconds or as an HTTP date. */
function retryAfterOf(headers: Headers | undefined): number | undefined {
  const ms = Number.parseFloat(headers?.get('retry-after-ms') ?? '');
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const value = headers?.get('retry-after');
  if (!value) return undefined;
  const seconds = Number.parseFloat(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
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

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('run aborted');
}

/** Sorts an SDK failure: stop the job, retry later, ask again, or give up on this item. */
function classify(error: unknown, signal: AbortSignal | undefined, timeoutMs: number, model: string): Error {
  if (signal?.aborted) return abortReason(signal);
  if (error instanceof BadOutputError || error instanceof LlmItemError) return error;
  if (error instanceof OpenAI.AuthenticationError || error instanceof OpenAI.PermissionDeniedError) {
    return new LlmUnavailableError(`the model server rejected the API key (${error.status}): check OPENAI_API_KEY (and OPENAI_BASE_URL, if the key is for another server)`, ['OPENAI_API_KEY', 'OPENAI_BASE_URL']);
  }
  if (error instanceof OpenAI.NotFoundError) {
    return new LlmUnavailableError(`model "${model}" or endpoint not found (404): check OPENAI_MODEL and OPENAI_BASE_URL`, ['OPENAI_MODEL', 'OPENAI_BASE_URL']);
  }
  if (error instanceof LengthFinishReasonError) return new BadOutputError('output truncated (finish_reason=length)');
  if (error instanceof ContentFilterFinishReasonError) return new BadOutputError('output blocked by the content filter');
  if (error instanceof OpenAI.APIConnectionTimeoutError) return new TransientError(`LLM request timed out (${timeoutMs / 1000} s)`, '');
  if (error instanceof OpenAI.APIConnectionError) return new TransientError('LLM unreachable', error.message);
  if (error instanceof OpenAI.APIError) {
    const status = error.status;
    // The SDK's message starts with the status again ("429 Rate limit reached…").
    const detail = error.message.replace(/^\d{3}\s+/, '');
    if (status !== undefined && isTransientStatus(status)) return new TransientError(`LLM error ${status}`, detail, retryAfterOf(error.headers));
    return new LlmItemError(`LLM error ${status ?? '(no status)'}: ${detail}`, status);
  }
  if (error instanceof SyntaxError) return new BadOutputError(`model output is not valid JSON: ${error.message}`);
  if (error instanceof Error && error.name === 'ZodError' && 'issues' in error && Array.isArray(error.issues)) {
    const issues = (error.issues as Array<{ path: PropertyKey[]; message: string }>).map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`);
    return new BadOutputError(`model output does not match the schema: ${issues.join('; ')}`);
  }
  return error instanceof Error ? error : new Error(String(error));
}
