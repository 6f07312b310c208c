import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { countPromptTokens, encodingOf, loadEncoding, type Encoding, type EncodingName } from '../src/llm/estimate-tokens.ts';

/** What the fake answers to one chat.completions request. */
export type FakeReply =
  /** An object is JSON.stringify'd into message.content; a string is used as-is (lets tests send invalid JSON). */
  | { content: unknown; usage?: { prompt_tokens: number; completion_tokens: number; cached_tokens?: number } }
  /** message.content null, message.refusal set. */
  | { refusal: string }
  /** An HTTP error, e.g. 500, 429, 401; body defaults to an OpenAI-style { error: { message, type, code } }. */
  | { status: number; body?: unknown; headers?: Record<string, string> }
  | { finishReason: 'length'; content: string }
  /** Never answers (until the client aborts or the server closes). */
  | { hang: true };

export type FakeRequest = {
  model: string;
  messages: { role: string; content: string }[];
  responseFormatName?: string;
  body: any;
  headers: Record<string, string | string[] | undefined>;
};

export type FakeOpenAI = {
  /** Base URL to give the SDK (…/v1). */
  url: string;
  /** Every chat.completions request received, in order. */
  requests: FakeRequest[];
  /** How to answer: called per request; default answers 500 "no responder set". */
  respond(fn: (req: FakeRequest) => FakeReply | Promise<FakeReply>): void;
  close(): Promise<void>;
};

type Responder = (req: FakeRequest) => FakeReply | Promise<FakeReply>;

const noResponder: Responder = () => ({
  status: 500,
  body: { error: { message: 'no responder set', type: 'server_error', code: null } },
});

export type FakeOpenAIOptions = {
  /**
   * 'tokenizer': `usage` is counted with the model's real tokenizer by the estimate's rule
   * (src/llm/estimate-tokens.ts: messages with their framing, plus response_format's JSON), and
   * completion tokens over the answer's content. The same rule on both sides makes a comparison
   * with the estimate a check of plumbing and of the prompt builders, not of OpenAI's real
   * overhead. Default 'rough': about 4 characters a token.
   */
  usage?: 'rough' | 'tokenizer';
  /**
   * Simulates the provider's automatic prompt caching, as OpenAI describes it: a prompt of at least
   * `minTokens` reports as cached the longest prefix it shares with an earlier request, in whole
   * `step`s (OpenAI: 1024 and 128). The prefix is the response schema, then each message's role and
   * content in order, tokenized; so only a layout with the fixed part first gets cache hits.
   */
  promptCache?: { minTokens: number; step: number };
};

/** Length of the common prefix of two token sequences. */
function sharedPrefix(a: number[], b: number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n += 1;
  return n;
}

/** Starts an HTTP server on 127.0.0.1 that speaks enough of the Chat Completions API for the openai SDK. */
export async function startFakeOpenAI(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const requests: FakeRequest[] = [];
  const prefixes: number[][] = [];
  let responder: Responder = noResponder;
  // Loaded up front so counting stays synchronous; both encodings, since the model is per request.
  const encodings = new Map<EncodingName, Encoding>();
  if (options.usage === 'tokenizer' || options.promptCache) {
    for (const name of ['o200k_base', 'cl100k_base'] as const) encodings.set(name, await loadEncoding(name));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent && !res.destroyed) {
        sendJson(res, 500, errorBody(500, `fake-openai responder failed: ${String(error)}`));
      }
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const raw = await readBody(req);
    if (req.method !== 'POST' || path !== '/v1/chat/completions') {
      sendJson(res, 404, {
        error: { message: `Unknown request URL: ${req.method} ${path}`, type: 'invalid_request_error', code: 'unknown_url' },
      });
      return;
    }

    let body: any;
    try {
      body = JSON.parse(raw);
    } catch {
      sendJson(res, 400, {
        error: { message: 'We could not parse the JSON body of your request.', type: 'invalid_request_error', code: null },
      });
      return;
    }

    const request: FakeRequest = {
      model: String(body?.model ?? ''),
      messages: Array.isArray(body?.messages)
        ? body.messages.map((m: any) => ({ role: String(m?.role ?? ''), content: textOf(m?.content) }))
        : [],
      responseFormatName: body?.response_format?.json_schema?.name,
      body,
      headers: { ...req.headers },
    };
    requests.push(request);

    const reply = await responder(request);
    if (res.destroyed) return; // the client gave up meanwhile

    if ('hang' in reply) return; // answered only by close() or the client aborting

    if ('status' in reply) {
      const body = reply.body === undefined ? errorBody(reply.status) : reply.body;
      sendJson(res, reply.status, body, reply.headers);
      return;
    }

    let content: string | null = null;
    let refusal: string | null = null;
    let finishReason = 'stop';
    if ('refusal' in reply) {
      refusal = reply.refusal;
    } else {
      content = typeof reply.content === 'string' ? reply.content : JSON.stringify(reply.content);
      if ('finishReason' in reply) finishReason = reply.finishReason;
    }

    const encoding = encodings.get(encodingOf(request.model).name);
    let promptTokens = encoding
      ? countPromptTokens(encoding, request.messages, body?.response_format)
      : tokens(request.messages.map((m) => m.content).join('\n')) + 3 * request.messages.length + 3;
    let completionTokens = encoding ? encoding.count(content ?? refusal ?? '') : tokens(content ?? refusal ?? '');
    let cachedTokens = options.promptCache ? cachedPrefix(encoding!, request, options.promptCache) : 0;
    // A reply may set its usage, for a known cost per call (the budget tests).
    if ('usage' in reply && reply.usage) {
      ({ prompt_tokens: promptTokens, completion_tokens: completionTokens } = reply.usage);
      cachedTokens = reply.usage.cached_tokens ?? 0;
    }
    sendJson(res, 200, {
      id: `chatcmpl-${randomBytes(12).toString('base64url')}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: request.model,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content, refusal, annotations: [] },
          finish_reason: finishReason,
          logprobs: null,
        },
      ],
      usage: {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
        prompt_tokens_details: { cached_tokens: Math.min(cachedTokens, promptTokens), audio_tokens: 0 },
      },
      system_fingerprint: 'fp_fake',
    });
  }

  function cachedPrefix(encoding: Encoding, request: FakeRequest, { minTokens, step }: { minTokens: number; step: number }): number {
    const schema = request.body?.response_format === undefined ? [] : encoding.encode(JSON.stringify(request.body.response_format));
    const tokens = [...schema, ...request.messages.flatMap((m) => encoding.encode(`${m.role}\n${m.content}`))];
    const longest = Math.max(0, ...prefixes.map((earlier) => sharedPrefix(earlier, tokens)));
    prefixes.push(tokens);
    return tokens.length < minTokens ? 0 : Math.floor(longest / step) * step;
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    respond(fn) {
      responder = fn;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Hanging requests and idle keep-alive connections would hold close() open.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-request-id': `req_${randomBytes(12).toString('hex')}`,
    'openai-processing-ms': '1',
    ...headers,
  });
  res.end(text);
}

function errorBody(status: number, message?: string): unknown {
  const [type, code, fallback] =
    status === 400 ? ['invalid_request_error', null, 'Bad request']
    : status === 401 ? ['invalid_request_error', 'invalid_api_key', 'Incorrect API key provided.']
    : status === 403 ? ['permission_error', null, 'You are not allowed to use this model.']
    : status === 404 ? ['invalid_request_error', 'model_not_found', 'The model does not exist.']
    : status === 429 ? ['requests', 'rate_limit_exceeded', 'Rate limit reached. Please try again later.']
    : ['server_error', null, 'The server had an error while processing your request.'];
  return { error: { message: message ?? fallback, type, param: null, code } };
}

/** Message content may be a string or an array of content parts; the fake keeps the text. */
function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.map((part: any) => (typeof part?.text === 'string' ? part.text : '')).join('');
  }
  return content == null ? '' : JSON.stringify(content);
}

/** A rough token count (≈ 4 characters per token), never zero. */
function tokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}
