/**
 * One small HTTP(S) GET with a time limit, on node:http rather than fetch. Why: on Node 20 the first
 * fetch loads undici (~30 ms of CPU and a few MB of heap at start) and each fetch costs more CPU than
 * node:http; the agent's own requests (stub_status every few seconds, the CLI asking the API) are
 * small GETs that need none of what fetch adds. Redirects are not followed.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';

const requireHere = createRequire(import.meta.url);

export interface HttpGetResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Thrown when no complete answer came within the time limit (`name` is `TimeoutError`, like fetch's). */
export class HttpTimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

/**
 * GETs `url` and resolves with the status and the body as text, whatever the status. Rejects on a
 * network error (the error carries Node's `code`, e.g. ECONNREFUSED) or with HttpTimeoutError.
 */
export async function httpGet(
  url: string,
  opts: { timeoutMs: number; headers?: Record<string, string>; maxBytes?: number },
): Promise<HttpGetResult> {
  const target = new URL(url);
  // Required on first use (TLS is not loaded for plain http); require, not import(), because V8 loses
  // the dynamic-import callback of the code-cached dist/agent.cjs (bin/agent.js).
  const { request } = (
    target.protocol === 'https:' ? requireHere('node:https') : requireHere('node:http')
  ) as typeof import('node:http');
  const maxBytes = opts.maxBytes ?? 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      req.destroy(new HttpTimeoutError(`no answer within ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
    const req = request(target, { method: 'GET', headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) req.destroy(new Error(`answer larger than ${maxBytes} bytes`));
        else chunks.push(chunk);
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end();
  });
}
