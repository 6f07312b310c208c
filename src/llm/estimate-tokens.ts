/**
 * How many prompt tokens a Chat Completions request costs, counted locally with a real BPE
 * tokenizer (gpt-tokenizer). The counting rule (COUNTING_RULE) follows OpenAI's cookbook for the
 * chat format: each message costs 3 tokens of framing plus its role and content, the reply is
 * primed with 3 more, and a Structured Outputs `response_format` adds its JSON as sent. OpenAI does
 * not publish how it bills the response schema; counting its serialized JSON is our approximation.
 */

export type EncodingName = 'o200k_base' | 'cl100k_base';

export type Encoding = { name: EncodingName; count(text: string): number; encode(text: string): number[] };

export type ChatMessage = { role: string; content: string };

export const TOKENS_PER_MESSAGE = 3;
export const REPLY_PRIMER_TOKENS = 3;

export const COUNTING_RULE =
  'per message 3 + tokens(role) + tokens(content), plus 3 for the reply, plus tokens(JSON of response_format as sent)';

// gpt-4o, gpt-4.1, gpt-4.5, gpt-5 and the o-series (o1, o3, o4…) use o200k_base; gpt-4, gpt-4-turbo and gpt-3.5 use cl100k_base.
const O200K = /^(gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o\d|chatgpt-4o)/;
const CL100K = /^(gpt-4|gpt-3\.5)/;

/** The encoding of `model` (its snapshot suffix ignored); `known: false` when we guessed o200k_base. */
export function encodingOf(model: string): { name: EncodingName; known: boolean } {
  if (O200K.test(model)) return { name: 'o200k_base', known: true };
  if (CL100K.test(model)) return { name: 'cl100k_base', known: true };
  return { name: 'o200k_base', known: false };
}

const AS_PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

/** The tokenizer's tables take ~0.5 s to load: on first use, not at startup; Node's module cache keeps them for the process. */
export async function loadEncoding(name: EncodingName): Promise<Encoding> {
  const module = name === 'o200k_base' ? await import('gpt-tokenizer/encoding/o200k_base') : await import('gpt-tokenizer/encoding/cl100k_base');
  return {
    name,
    // Special-token text in a notice is plain text to the API: count it as such, never throw.
    count: (text: string) => module.countTokens(text, AS_PLAIN_TEXT),
    encode: (text: string) => module.encode(text, AS_PLAIN_TEXT),
  };
}

/** Prompt tokens of one request by COUNTING_RULE; `responseFormat` is the object sent (undefined: none). */
export function countPromptTokens(encoding: Encoding, messages: readonly ChatMessage[], responseFormat?: unknown): number {
  let total = REPLY_PRIMER_TOKENS;
  for (const message of messages) total += TOKENS_PER_MESSAGE + encoding.count(message.role) + encoding.count(message.content);
  if (responseFormat !== undefined) total += encoding.count(JSON.stringify(responseFormat));
  return total;
}
