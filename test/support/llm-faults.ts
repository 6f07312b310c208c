import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FakeReply, FakeRequest } from '../../testkit/fake-openai.ts';
import { itemKeyOf, userMessage } from './pipeline.ts';

/**
 * Fault injection for the LLM resilience tests: scripted replies per item or topic, and a proxy
 * in front of the fake OpenAI server that cuts connections (the fake itself always answers).
 */

/** What a request is about: the item key for extract-blueprints, `topic:<name>` for generate-drops. */
export function subjectOf(req: Pick<FakeRequest, 'messages' | 'responseFormatName'>): string {
  if (req.responseFormatName === 'topic_drops') return `topic:${/^Topic: (.*)$/m.exec(userMessage(req as FakeRequest))?.[1] ?? '?'}`;
  return itemKeyOf(req as FakeRequest) ?? '?';
}

export type Script = {
  respond(req: FakeRequest): FakeReply;
  /** How many requests the fake got about `subject`. */
  count(subject: string): number;
  /** Every request the fake got about `subject`, in order. */
  requests(subject: string): FakeRequest[];
};

/**
 * The n-th request about a subject gets `replies[subject][n]`; past the end, the last reply repeats.
 * Subjects without a script get `fallback`.
 */
export function script(replies: Record<string, FakeReply[]>, fallback: (req: FakeRequest) => FakeReply): Script {
  const seen = new Map<string, FakeRequest[]>();
  return {
    respond(req) {
      const subject = subjectOf(req);
      const list = seen.get(subject) ?? [];
      list.push(req);
      seen.set(subject, list);
      const own = replies[subject];
      if (!own || own.length === 0) return fallback(req);
      return own[Math.min(list.length - 1, own.length - 1)]!;
    },
    count: (subject) => seen.get(subject)?.length ?? 0,
    requests: (subject) => seen.get(subject) ?? [],
  };
}

export type ProxyRequest = { subject: string; at: number; dropped: boolean };

export type DroppingProxy = {
  /** Base URL to give the service instead of the fake's (…/v1). */
  url: string;
  /** Every request the proxy got (what the SDK sent), in order, with its arrival time. */
  requests: ProxyRequest[];
  /** Arrival times (ms) of the requests about `subject`. */
  arrivals(subject: string): number[];
  /** Decides, per request, whether to cut the connection instead of forwarding; `n` counts from 0 per subject. */
  dropWhen(fn: (subject: string, n: number) => boolean): void;
  close(): Promise<void>;
};

/** A proxy to `targetUrl` (the fake's …/v1 URL) that can close the socket without answering: a connection error. */
export async function startDroppingProxy(targetUrl: string): Promise<DroppingProxy> {
  const target = new URL(targetUrl);
  const requests: ProxyRequest[] = [];
  let shouldDrop: (subject: string, n: number) => boolean = () => false;

  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    let subject = '?';
    try {
      const parsed = JSON.parse(body);
      subject = subjectOf({
        responseFormatName: parsed?.response_format?.json_schema?.name,
        messages: (parsed?.messages ?? []).map((m: any) => ({ role: String(m?.role), content: typeof m?.content === 'string' ? m.content : '' })),
      });
    } catch {
      // not JSON: forwarded as it is
    }
    const n = requests.filter((r) => r.subject === subject).length;
    const dropped = shouldDrop(subject, n);
    requests.push({ subject, at: Date.now(), dropped });
    if (dropped) {
      req.socket.destroy();
      return;
    }
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    try {
      const upstream = await fetch(new URL(`${target.pathname.replace(/\/v1$/, '')}${req.url}`, target.origin), {
        method: req.method,
        headers: { 'content-type': 'application/json', authorization: String(req.headers.authorization ?? '') },
        body: req.method === 'GET' || req.method === 'HEAD' ? undefined : body,
        signal: abort.signal,
      });
      const text = await upstream.text();
      const headers: Record<string, string> = {};
      upstream.headers.forEach((value, name) => {
        if (!['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'content-encoding'].includes(name)) headers[name] = value;
      });
      res.writeHead(upstream.status, headers);
      res.end(text);
    } catch {
      if (!res.destroyed) res.destroy();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    arrivals: (subject) => requests.filter((r) => r.subject === subject).map((r) => r.at),
    dropWhen(fn) {
      shouldDrop = fn;
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

/** The gaps (ms) between consecutive times. */
export const gaps = (times: number[]) => times.slice(1).map((at, i) => at - times[i]!);
