import OpenAI from 'openai';
import { ContentFilterFinishReasonError, LengthFinishReasonError } from 'openai/error';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigurationError } from '../src/errors.ts';
import { BadOutputError, backoffMs, classify, isTransientStatus, LlmItemError, LlmUnavailableError, retryAfterOf, TransientError } from '../src/llm/errors.ts';

/**
 * How a failed LLM call is read, as pure functions: no HTTP, no database. The SDK's errors are
 * built the way the SDK builds them from a response (`APIError.generate`), so the classes are the
 * ones a real answer would produce. test/llm-resilience.test.ts checks the same rules end to end.
 */

const MODEL = 'gpt-test';
const TIMEOUT_MS = 60_000;
const classifyOf = (error: unknown, signal?: AbortSignal) => classify(error, signal, TIMEOUT_MS, MODEL);

/** The error the SDK throws for an HTTP answer with this status, body message and headers. */
const apiError = (status: number, message: string, headers: Record<string, string> = {}) =>
  OpenAI.APIError.generate(status, { error: { message } }, undefined, new Headers(headers));

/** The ZodError a schema throws for this value. */
function zodErrorOf(schema: z.ZodType, value: unknown): Error {
  const result = schema.safeParse(value);
  if (result.success) throw new Error('expected the value to break the schema');
  return result.error;
}

describe('classify: what a failed call means for the run', () => {
  it.each([401, 403])('%i: the key is rejected, the job cannot work (a configuration error naming OPENAI_API_KEY)', (status) => {
    const error = classifyOf(apiError(status, 'Incorrect API key provided'));
    expect(error).toBeInstanceOf(LlmUnavailableError);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error.message).toBe(`the model server rejected the API key (${status}): check OPENAI_API_KEY (and OPENAI_BASE_URL, if the key is for another server)`);
    expect((error as LlmUnavailableError).variables).toEqual(['OPENAI_API_KEY', 'OPENAI_BASE_URL']);
  });

  it('404: the model or endpoint is unknown, the job cannot work (a configuration error naming OPENAI_MODEL)', () => {
    const error = classifyOf(apiError(404, 'The model `gpt-test` does not exist'));
    expect(error).toBeInstanceOf(LlmUnavailableError);
    expect(error.message).toBe('model "gpt-test" or endpoint not found (404): check OPENAI_MODEL and OPENAI_BASE_URL');
    expect((error as LlmUnavailableError).variables).toEqual(['OPENAI_MODEL', 'OPENAI_BASE_URL']);
  });

  it.each([408, 429, 500, 502, 503, 504])('%i: transient, retried after the wait the server asks for', (status) => {
    const error = classifyOf(apiError(status, 'Slow down', { 'retry-after': '7' }));
    expect(error).toBeInstanceOf(TransientError);
    const transient = error as TransientError;
    expect(transient.summary).toBe(`LLM error ${status}`);
    // The SDK's message repeats the status ("429 Slow down"); the detail does not.
    expect(transient.detail).toBe('Slow down');
    expect(transient.message).toBe(`LLM error ${status}: Slow down`);
    expect(transient.retryAfterMs).toBe(7_000);
  });

  it('a transient status with no Retry-After leaves the wait to the backoff', () => {
    expect((classifyOf(apiError(503, 'Service Unavailable')) as TransientError).retryAfterMs).toBeUndefined();
    expect((classifyOf(apiError(429, 'Rate limit reached', { 'retry-after-ms': '250' })) as TransientError).retryAfterMs).toBe(250);
  });

  it.each([400, 409, 413, 422])('%i: this item cannot be answered; the error carries the status', (status) => {
    const error = classifyOf(apiError(status, 'context_length_exceeded'));
    expect(error).toBeInstanceOf(LlmItemError);
    expect(error).not.toBeInstanceOf(ConfigurationError);
    expect(error.message).toBe(`LLM error ${status}: context_length_exceeded`);
    expect((error as LlmItemError).status).toBe(status);
  });

  it('a connection error is transient, with the reason as detail', () => {
    const error = classifyOf(new OpenAI.APIConnectionError({ message: 'Connection error.', cause: new Error('ECONNREFUSED') }));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toBe('LLM unreachable: Connection error.');
    expect((error as TransientError).retryAfterMs).toBeUndefined();
  });

  it('a connection timeout is transient and says how long the call waited', () => {
    const error = classifyOf(new OpenAI.APIConnectionTimeoutError());
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toBe('LLM request timed out (60 s)');
    expect((error as TransientError).detail).toBe('');
    expect(classify(new OpenAI.APIConnectionTimeoutError(), undefined, 1_500, MODEL).message).toBe('LLM request timed out (1.5 s)');
  });

  it('a truncated or filtered answer is bad output (asked once more)', () => {
    expect(classifyOf(new LengthFinishReasonError())).toEqual(new BadOutputError('output truncated (finish_reason=length)'));
    expect(classifyOf(new ContentFilterFinishReasonError())).toEqual(new BadOutputError('output blocked by the content filter'));
    expect(classifyOf(new LengthFinishReasonError())).toBeInstanceOf(BadOutputError);
    expect(classifyOf(new ContentFilterFinishReasonError())).toBeInstanceOf(BadOutputError);
  });

  it('invalid JSON is bad output', () => {
    let syntax: unknown;
    try {
      JSON.parse('{"exam_name":');
    } catch (error) {
      syntax = error;
    }
    const error = classifyOf(syntax);
    expect(error).toBeInstanceOf(BadOutputError);
    expect(error.message).toBe('model output is not valid JSON: Unexpected end of JSON input');
  });

  it('a schema violation (ZodError) is bad output naming each path', () => {
    const schema = z.object({ topics: z.array(z.object({ code: z.string(), name: z.string() })) });
    const error = classifyOf(zodErrorOf(schema, { topics: [{ code: 1, name: 'Crase' }, { code: 'LP-2' }] }));
    expect(error).toBeInstanceOf(BadOutputError);
    expect(error.message).toBe(
      'model output does not match the schema: topics.0.code: Invalid input: expected string, received number; topics.1.name: Invalid input: expected string, received undefined',
    );
    expect(classifyOf(zodErrorOf(z.string(), 1)).message).toBe('model output does not match the schema: (root): Invalid input: expected string, received number');
  });

  it('errors already classified pass through as they are', () => {
    const bad = new BadOutputError('model refused: no');
    const item = new LlmItemError('LLM error 429 after 3 attempts', 429);
    expect(classifyOf(bad)).toBe(bad);
    expect(classifyOf(item)).toBe(item);
  });

  it('anything else is passed on unchanged (an Error) or wrapped (anything thrown)', () => {
    const other = new TypeError('fetch is not a function');
    expect(classifyOf(other)).toBe(other);
    const wrapped = classifyOf('a string');
    expect(wrapped).toBeInstanceOf(Error);
    expect(wrapped.message).toBe('a string');
  });

  describe('an aborted signal wins over everything', () => {
    const failures: Array<[string, unknown]> = [
      ['401', apiError(401, 'Incorrect API key provided')],
      ['404', apiError(404, 'not found')],
      ['429', apiError(429, 'Rate limit reached', { 'retry-after': '1' })],
      ['400', apiError(400, 'bad request')],
      ['a connection error', new OpenAI.APIConnectionError({ message: 'Connection error.' })],
      ['a timeout', new OpenAI.APIConnectionTimeoutError()],
      ['the SDK abort', new OpenAI.APIUserAbortError()],
      ['a truncated answer', new LengthFinishReasonError()],
      ['bad output', new BadOutputError('model returned no structured output')],
      ['invalid JSON', new SyntaxError('Unexpected token')],
      ['a ZodError', zodErrorOf(z.string(), 1)],
      ['something else', new Error('boom')],
    ];

    it.each(failures)('%s: the signal’s reason is the answer', (_, failure) => {
      const controller = new AbortController();
      const reason = new Error('job expired');
      controller.abort(reason);
      expect(classifyOf(failure, controller.signal)).toBe(reason);
    });

    it('a reason that is not an Error becomes "run aborted"', () => {
      const controller = new AbortController();
      controller.abort('shutdown');
      const error = classifyOf(apiError(500, 'oops'), controller.signal);
      expect(error).toBeInstanceOf(Error);
      expect(error.message).toBe('run aborted');
    });

    it('a signal not aborted changes nothing', () => {
      expect(classifyOf(apiError(500, 'oops'), new AbortController().signal)).toBeInstanceOf(TransientError);
    });
  });
});

describe('isTransientStatus: which statuses are worth a retry', () => {
  it.each([408, 429, 500, 501, 502, 503, 504, 599])('%i is transient', (status) => {
    expect(isTransientStatus(status)).toBe(true);
  });
  it.each([400, 401, 403, 404, 409, 413, 422, 499])('%i is not', (status) => {
    expect(isTransientStatus(status)).toBe(false);
  });
});

describe('retryAfterOf: the wait a response asks for', () => {
  /** A fixed "now", so HTTP dates give exact waits. */
  const NOW = Date.parse('2027-03-14T12:00:00Z');
  const wait = (headers: Record<string, string>) => retryAfterOf(new Headers(headers), NOW);

  it('retry-after-ms, in milliseconds, fractional too', () => {
    expect(wait({ 'retry-after-ms': '1500' })).toBe(1_500);
    expect(wait({ 'retry-after-ms': '12.5' })).toBe(12.5);
    expect(wait({ 'retry-after-ms': '0' })).toBe(0);
  });

  it('retry-after-ms wins over retry-after', () => {
    expect(wait({ 'retry-after-ms': '250', 'retry-after': '9' })).toBe(250);
  });

  it('retry-after in seconds, integer and fractional', () => {
    expect(wait({ 'retry-after': '2' })).toBe(2_000);
    expect(wait({ 'retry-after': '120' })).toBe(120_000);
    expect(wait({ 'retry-after': '1.5' })).toBe(1_500);
    expect(wait({ 'retry-after': '0.25' })).toBe(250);
    expect(wait({ 'retry-after': '0' })).toBe(0);
  });

  it('retry-after as an HTTP date: the time left until then, never negative', () => {
    expect(wait({ 'retry-after': 'Sun, 14 Mar 2027 12:00:30 GMT' })).toBe(30_000);
    expect(wait({ 'retry-after': 'Sun, 14 Mar 2027 12:05:00 GMT' })).toBe(300_000);
    expect(wait({ 'retry-after': 'Sun, 14 Mar 2027 12:00:00 GMT' })).toBe(0);
    expect(wait({ 'retry-after': 'Sun, 14 Mar 2027 11:59:00 GMT' })).toBe(0);
  });

  it('"now" defaults to the clock', () => {
    const inAMinute = new Date(Date.now() + 60_000).toUTCString();
    const ms = retryAfterOf(new Headers({ 'retry-after': inAMinute }));
    expect(ms).toBeGreaterThan(55_000);
    expect(ms).toBeLessThanOrEqual(60_000);
  });

  it('a negative or unreadable retry-after-ms is ignored (retry-after is read instead)', () => {
    expect(wait({ 'retry-after-ms': '-100' })).toBeUndefined();
    expect(wait({ 'retry-after-ms': 'soon' })).toBeUndefined();
    expect(wait({ 'retry-after-ms': 'Infinity' })).toBeUndefined();
    expect(wait({ 'retry-after-ms': '-100', 'retry-after': '3' })).toBe(3_000);
    expect(wait({ 'retry-after-ms': 'soon', 'retry-after': '3' })).toBe(3_000);
  });

  it('an unreadable retry-after is ignored', () => {
    expect(wait({ 'retry-after': 'soon' })).toBeUndefined();
    expect(wait({ 'retry-after': 'Infinity' })).toBeUndefined();
    expect(wait({ 'retry-after': 'NaN' })).toBeUndefined();
    expect(wait({ 'retry-after': '' })).toBeUndefined();
  });

  it('no header, or no headers at all: undefined', () => {
    expect(wait({})).toBeUndefined();
    expect(wait({ 'x-request-id': 'req_1' })).toBeUndefined();
    expect(retryAfterOf(undefined, NOW)).toBeUndefined();
  });

  // Once a bug: V8's lenient Date.parse read "-5" as a date in 2001 (a retry at once instead of the
  // backoff), and parseFloat read "12 apples" as 12 s. Only a number of seconds or an HTTP date count.
  it.each(['-5', '-1.5', 'abc 5', '12 apples', '2027-03-14T12:00:30Z', '1e3'])('retry-after %j is ignored', (value) => {
    expect(wait({ 'retry-after': value })).toBeUndefined();
  });
});

describe('backoffMs: base·2^(n−1), less at most 25 % jitter', () => {
  it.each([
    [1, 1_000, 750],
    [2, 2_000, 1_500],
    [3, 4_000, 3_000],
    [4, 8_000, 6_000],
  ])('retry %i: at most %i ms, at least %i ms', (retry, most, least) => {
    expect(backoffMs(1_000, retry, () => 0)).toBe(most);
    expect(backoffMs(1_000, retry, () => 0.5)).toBe(most * 0.875);
    // Math.random() < 1, so the 75 % floor is a limit, not a value.
    expect(backoffMs(1_000, retry, () => 0.999)).toBeGreaterThan(least);
    expect(backoffMs(1_000, retry, () => 1)).toBe(least);
  });

  it('scales with the base', () => {
    expect(backoffMs(200, 3, () => 0)).toBe(800);
    expect(backoffMs(200, 3, () => 1)).toBe(600);
  });

  it('with Math.random, every wait stays in its bounds', () => {
    for (let i = 0; i < 1_000; i += 1) {
      const retry = (i % 5) + 1;
      const most = 1_000 * 2 ** (retry - 1);
      const ms = backoffMs(1_000, retry);
      expect(ms).toBeLessThanOrEqual(most);
      expect(ms).toBeGreaterThan(most * 0.75);
    }
  });
});
