import { request, type Agent } from 'node:http';
import type { Json } from './http.ts';

export type RawResponse = { status: number; body: Json; headers: Record<string, string | string[] | undefined> };

export type RawRequest = {
  method: string;
  /** Sent exactly as given: no URL normalisation, no percent-encoding. */
  path: string;
  headers?: Record<string, string | number>;
  /** Written one by one; with no Content-Length header node sends them chunked. */
  chunks?: Iterable<Buffer | string>;
  agent?: Agent | false;
  /** The client's own address, e.g. 127.0.0.2, to look like another client on loopback. */
  localAddress?: string;
};

/**
 * Real HTTP with node:http, for what fetch cannot send: a path as it is, header bytes outside
 * ASCII, a body streamed without Content-Length, a chosen source address.
 */
export function rawRequest(url: string, { method, path, headers = {}, chunks = [], agent = false, localAddress }: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const base = new URL(url);
    const req = request({ hostname: base.hostname, port: base.port, path, method, headers, agent, localAddress }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        settled = true;
        let body: Json = text;
        try {
          body = JSON.parse(text);
        } catch {}
        resolve({ status: res.statusCode!, body, headers: res.headers });
      });
    });
    // The server may answer (413) and close before the whole body is written: the answer still counts.
    req.on('error', (error) => {
      if (!settled) setTimeout(() => !settled && reject(error), 1_000);
    });
    (async () => {
      for (const chunk of chunks) {
        if (req.destroyed) return;
        if (!req.write(chunk)) {
          await new Promise<void>((resume) => {
            const done = () => {
              req.off('drain', done);
              req.off('close', done);
              resume();
            };
            req.on('drain', done);
            req.on('close', done);
          });
        }
      }
      req.end();
    })().catch(() => {});
  });
}

export function* repeat(chunk: Buffer, times: number): Generator<Buffer> {
  for (let i = 0; i < times; i++) yield chunk;
}
