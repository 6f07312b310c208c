import OpenAI from 'openai';
import { ContentFilterFinishReasonError, LengthFinishReasonError } from 'openai/error';
import { ConfigurationError } from '../errors.ts';

/**
 * What a failed LLM call means for the run, decided without I/O so it can be tested as plain
 * functions (test/llm-errors.test.ts): the client in openai.ts only acts on the verdict.
 */

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
export class BadOutputError extends Error {}

/** A failure that may pass by itself: worth a retry after a wait. */
export class TransientError extends Error {
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
export const isTransientStatus = (status: number) => status === 408 || status === 429 || status >= 500;

/**
 * base, 2×base, 4×base… less up to 25 % jitter, so parallel calls do not retry in step.
 * `random` (in [0, 1), as Math.random) is a parameter so tests can pin the jitter.
 */
export function backoffMs(baseMs: number, retry: number, random: () => number = Math.random): number {
  return baseMs * 2 ** (retry - 1) * (1 - random() * 0.25);
}

/**
 * The wait a response asks for: `retry-after-ms`, or `retry-after` in seconds or as an HTTP date
 * (counted from `now`). Undefined when it names none that can be read.
 */
export function retryAfterOf(headers: Headers | undefined, now: number = Date.now()): number | undefined {
  const ms = Number.parseFloat(headers?.get('retry-after-ms') ?? '');
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const value = headers?.get('retry-after');
  if (!value) return undefined;
  // Only the two forms RFC 9110 allows: a number of seconds, or an HTTP date. Date.parse alone
  // would read "-5" as a date in 2001 (a retry at once) and parseFloat "12 apples" as 12 s.
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Number.parseFloat(value) * 1000;
  if (!HTTP_DATE.test(value.trim())) return undefined;
  return Math.max(0, Date.parse(value) - now);
}

/** IMF-fixdate, the HTTP date every server sends: `Sun, 14 Mar 2027 12:00:30 GMT`. */
const HTTP_DATE = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/** The error a run aborted with: the signal's reason when it is one, else a generic one. */
export function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('run aborted');
}

/** Sorts an SDK failure: stop the job, retry later, ask again, or give up on this item. */
export function classify(error: unknown, signal: AbortSignal | undefined, timeoutMs: number, model: string): Error {
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
