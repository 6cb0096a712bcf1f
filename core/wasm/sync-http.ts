/**
 * A blocking HTTP client for host functions (a Wasm import cannot await): the request runs in a
 * helper thread (started at the first request, so plugins that never call `http_request` pay
 * nothing) while the plugin worker waits on a shared flag; the answer comes back over a
 * MessagePort read synchronously. Redirects are not followed (a redirect could leave
 * `allowed_hosts`); the status and `location` are the plugin's to act on.
 */
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { trustDeferredExtraCaCerts } from '../extra-ca-certs.js';

export interface SyncHttpRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: Uint8Array;
  timeoutMs: number;
  maxBytes: number;
}

export interface SyncHttpResponse {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

/** Runs in the helper thread (as eval'd CommonJS: no imports, only `require`). */
function helperMain(): void {
  const { workerData } = require('node:worker_threads') as any;
  const signal = new Int32Array(workerData.signal);
  const port = workerData.port;
  port.on('message', async (m: SyncHttpRequest & { seq: number }) => {
    let reply: Record<string, unknown>;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), m.timeoutMs);
    try {
      const res = await fetch(m.url, {
        method: m.method,
        headers: m.headers,
        body: m.body?.byteLength ? (m.body as Uint8Array<ArrayBuffer>) : undefined,
        redirect: 'manual',
        signal: abort.signal,
      });
      const chunks: Uint8Array[] = [];
      let size = 0;
      if (res.body) {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          size += chunk.byteLength;
          if (size > m.maxBytes) {
            abort.abort();
            throw new Error(`the response is larger than ${m.maxBytes} bytes (http_max_response_bytes)`);
          }
          chunks.push(chunk);
        }
      }
      const body = new Uint8Array(size);
      let at = 0;
      for (const c of chunks) {
        body.set(c, at);
        at += c.byteLength;
      }
      const headers: Record<string, string> = {};
      res.headers.forEach((v, k) => {
        headers[k] = v;
      });
      reply = { seq: m.seq, status: res.status, headers, body };
    } catch (e) {
      const err = e as Error & { cause?: Error };
      reply = {
        seq: m.seq,
        error:
          abort.signal.aborted && !/http_max_response_bytes/.test(err.message)
            ? `no answer within ${m.timeoutMs} ms (http_timeout_ms)`
            : `${err.message}${err.cause?.message ? `: ${err.cause.message}` : ''}`,
      };
    } finally {
      clearTimeout(timer);
    }
    port.postMessage(reply);
    Atomics.store(signal, 0, 1);
    Atomics.notify(signal, 0);
  });
}

export class SyncHttp {
  #worker: Worker | undefined;
  #port: MessagePort | undefined;
  readonly #flag = new Int32Array(new SharedArrayBuffer(4));
  #seq = 0;

  /** Performs the request, blocking this thread; throws with the reason (timeout, size, network). */
  request(req: SyncHttpRequest): SyncHttpResponse {
    const port = this.#start();
    const seq = ++this.#seq;
    Atomics.store(this.#flag, 0, 0);
    port.postMessage({ seq, ...req });
    const deadline = Date.now() + req.timeoutMs + 1000;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0 || Atomics.wait(this.#flag, 0, 0, left) === 'timed-out')
        throw new Error(`no answer within ${req.timeoutMs} ms (http_timeout_ms)`);
      Atomics.store(this.#flag, 0, 0);
      let m: { message: { seq: number; error?: string } & Partial<SyncHttpResponse> } | undefined;
      while ((m = receiveMessageOnPort(port) as typeof m)) {
        if (m.message.seq !== seq) continue; // the answer to a request that timed out
        if (m.message.error !== undefined) throw new Error(m.message.error);
        return { status: m.message.status!, headers: m.message.headers!, body: m.message.body! };
      }
    }
  }

  close(): void {
    void this.#worker?.terminate();
    this.#port?.close();
    this.#worker = undefined;
    this.#port = undefined;
  }

  #start(): MessagePort {
    if (this.#port) return this.#port;
    const { port1, port2 } = new MessageChannel();
    // The helper runs from source text, so what it needs comes as source: the certificates
    // bin/agent.js deferred (core/extra-ca-certs.ts), then the request loop. `__name` is for tsx
    // (the tests), which wraps named functions in it.
    const source = [
      'const __name = (fn) => fn;',
      `(${trustDeferredExtraCaCerts.toString()})(() => require('node:tls'), process.env,`,
      "  (file) => require('node:fs').readFileSync(file, 'latin1'), (message) => console.error(`agent: ${message}`));",
      `(${helperMain.toString()})();`,
    ].join('\n');
    const worker = new Worker(source, {
      eval: true,
      workerData: { signal: this.#flag.buffer, port: port2 },
      transferList: [port2],
      resourceLimits: { maxOldGenerationSizeMb: 64 },
    });
    worker.unref();
    worker.on('error', () => undefined);
    this.#worker = worker;
    this.#port = port1;
    return port1;
  }
}
