import OpenAI from 'openai';
import { ContentFilterFinishReasonError, LengthFinishReasonError } from 'openai/error';
import { zodResponseFormat } from 'openai/helpers/zod';
import type { z } from 'zod';

export type LlmConfig = {
  apiKey?: string;
  baseURL?: string;
  model: string;
  timeoutMs: number;
  maxRetries: number;
};

export type LlmUsage = { calls: number; prompt_tokens: number; completion_tokens: number; total_tokens: number };

export type StructuredRequest<T> = {
  schema: z.ZodType<T>;
  /** Name of the response format, e.g. "exam_blueprint". */
  name: string;
  system: string;
  user: string;
  signal?: AbortSignal;
};

/** One run's access to the model: Structured Outputs calls, with the usage they add up to. */
export type LlmSession = {
  model: string;
  usage: LlmUsage;
  structured<T>(request: StructuredRequest<T>): Promise<{ data: T; raw: unknown }>;
};

export type Llm = { model: string; session(): LlmSession };

/** The job cannot do its work (no key, key rejected, model unknown): fail the run, touch no item. */
export class LlmUnavailableError extends Error {}

/** This one item could not be answered (invalid output, refusal, truncated, upstream errors). */
export class LlmItemError extends Error {}

export function createLlm(config: LlmConfig): Llm {
  const client = config.apiKey
    ? new OpenAI({
        apiKey: config.apiKey,
        baseURL: config.baseURL,
        timeout: config.timeoutMs,
        // pg-boss retries the job; the SDK only smooths over a single blip.
        maxRetries: config.maxRetries,
      })
    : undefined;

  return {
    model: config.model,
    session() {
      if (!client) throw new LlmUnavailableError('OPENAI_API_KEY is not set');
      const usage: LlmUsage = { calls: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
      return {
        model: config.model,
        usage,
        async structured<T>({ schema, name, system, user, signal }: StructuredRequest<T>) {
          usage.calls += 1;
          try {
            const completion = await client.chat.completions.parse(
              {
                model: config.model,
                messages: [
                  { role: 'system', content: system },
                  { role: 'user', content: user },
                ],
                response_format: zodResponseFormat(schema, name),
              },
              { signal },
            );
            usage.prompt_tokens += completion.usage?.prompt_tokens ?? 0;
            usage.completion_tokens += completion.usage?.completion_tokens ?? 0;
            usage.total_tokens += completion.usage?.total_tokens ?? 0;
            const message = completion.choices[0]?.message;
            if (message?.refusal) throw new LlmItemError(`model refused: ${message.refusal}`);
            if (message?.parsed == null) throw new LlmItemError('model returned no structured output');
            return { data: message.parsed as T, raw: JSON.parse(message.content ?? 'null') };
          } catch (error) {
            throw classify(error, signal);
          }
        },
      };
    },
  };
}

/** Sorts an SDK failure into "stop the job" or "give up on this item". */
function classify(error: unknown, signal?: AbortSignal): Error {
  if (error instanceof LlmItemError) return error;
  if (signal?.aborted) return signal.reason instanceof Error ? signal.reason : new Error('run aborted');
  if (error instanceof OpenAI.AuthenticationError || error instanceof OpenAI.PermissionDeniedError) {
    return new LlmUnavailableError(`OpenAI rejected the API key (${error.status})`);
  }
  if (error instanceof OpenAI.NotFoundError) return new LlmUnavailableError(`model or endpoint not found (404)`);
  if (error instanceof LengthFinishReasonError) return new LlmItemError('output truncated (finish_reason=length)');
  if (error instanceof ContentFilterFinishReasonError) return new LlmItemError('output blocked by the content filter');
  if (error instanceof OpenAI.APIConnectionError) return new LlmItemError(`LLM unreachable: ${error.message}`);
  if (error instanceof OpenAI.APIError) return new LlmItemError(`LLM error ${error.status ?? ''}: ${error.message}`.trim());
  if (error instanceof SyntaxError) return new LlmItemError(`model output is not valid JSON: ${error.message}`);
  if (error instanceof Error && error.name === 'ZodError') return new LlmItemError(`model output does not match the schema: ${error.message}`);
  return error instanceof Error ? error : new Error(String(error));
}
