/**
 * Sends OTLP/HTTP export requests one at a time from a bounded queue.
 *
 * - Bounded: at most `queueSize` requests wait; when full, the oldest is dropped and its data points
 *   are counted (`reason: queue_full`), so an unreachable collector never grows memory without limit.
 * - Retry: 429, 502, 503, 504, network errors and timeouts are retried with exponential backoff
 *   (initial interval doubling up to the max, randomised by +-50%), honouring `Retry-After`, until
 *   `maxElapsedMs` has passed since the first attempt; then the request is dropped (`retries_exhausted`).
 * - Any other non-2xx answer is final: the request is dropped (`rejected`) and the status logged once.
 */
import type { Logger } from 'pino';

export interface ExportRequest {
  /** Body as sent (already compressed when `gzip`). */
  body: Uint8Array;
  contentType: string;
  gzip: boolean;
  /** Data points in the request, for the exported/dropped counters. */
  points: number;
}

export interface RetrySettings {
  initialMs: number;
  maxMs: number;
  maxElapsedMs: number;
}

export interface SenderSettings {
  endpoint: string;
  headers: Readonly<Record<string, string>>;
  timeoutMs: number;
  queueSize: number;
  retry: RetrySettings;
  logger: Logger;
  /** Injected for tests; default: global fetch, setTimeout, Math.random, Date.now. */
  fetch?: typeof fetch;
  random?: () => number;
  now?: () => number;
}

export type DropReason = 'queue_full' | 'rejected' | 'retries_exhausted' | 'shutdown';

export interface SenderStats {
  exportedPoints: number;
  sentBytes: number;
  /** Requests by answer: HTTP status code, `network_error` or `timeout`. */
  requests: Map<string, number>;
  dropped: Map<DropReason, number>;
  queueDepth: number;
  lastError: string | undefined;
  lastSuccess: number | undefined;
  /** True from a failed attempt until the next success. */
  failing: boolean;
}

const RETRYABLE = new Set([429, 502, 503, 504]);

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/** Backoff before retry number `attempt` (1-based): initial * 2^(attempt-1), capped, times 0.5..1.5. */
export function backoffMs(attempt: number, r: RetrySettings, random: number): number {
  const base = Math.min(r.maxMs, r.initialMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(base * (0.5 + random));
}

export class OtlpSender {
  readonly #settings: SenderSettings;
  readonly #queue: ExportRequest[] = [];
  readonly #stats: SenderStats = {
    exportedPoints: 0,
    sentBytes: 0,
    requests: new Map(),
    dropped: new Map(),
    queueDepth: 0,
    lastError: undefined,
    lastSuccess: undefined,
    failing: false,
  };
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #abort = new AbortController();
  #loggedError: string | undefined;
  #current: ExportRequest | undefined;

  constructor(s: SenderSettings) {
    this.#settings = s;
  }

  get stats(): Readonly<SenderStats> {
    this.#stats.queueDepth = this.#queue.length;
    return this.#stats;
  }

  /** Queues a request; drops (and counts) the oldest when the queue is full. */
  enqueue(req: ExportRequest): void {
    this.#queue.push(req);
    while (this.#queue.length > this.#settings.queueSize) {
      // A request on the wire stays; the oldest of the others goes (one waiting for a retry may go).
      const i = this.#queue[0] === this.#current && this.#queue.length > 1 ? 1 : 0;
      this.#drop(this.#queue.splice(i, 1)[0], 'queue_full');
    }
    this.#wake?.();
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Stops retrying, then tries each queued request once within `deadlineMs`; the rest is dropped and counted. */
  async stop(deadlineMs: number): Promise<void> {
    this.#abort.abort();
    this.#wake?.();
    await this.#loop;
    const end = Date.now() + deadlineMs;
    while (this.#queue.length) {
      const left = end - Date.now();
      const req = this.#queue.shift()!;
      if (left <= 0) {
        this.#drop(req, 'shutdown');
        continue;
      }
      const r = await this.#attempt(req, Math.min(left, this.#settings.timeoutMs));
      if (!r.ok) this.#drop(req, r.retryable ? 'shutdown' : 'rejected');
    }
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      const req = this.#queue[0];
      if (!req) {
        await new Promise<void>((r) => (this.#wake = r));
        this.#wake = undefined;
        continue;
      }
      const first = this.#now();
      for (let attempt = 1; !signal.aborted; attempt++) {
        this.#current = req;
        const r = await this.#attempt(req, this.#settings.timeoutMs);
        this.#current = undefined;
        if (r.ok || !r.retryable) {
          if (!r.ok) this.#drop(req, 'rejected');
          this.#remove(req);
          break;
        }
        const delay =
          r.retryAfterMs ?? backoffMs(attempt, this.#settings.retry, (this.#settings.random ?? Math.random)());
        if (this.#now() + delay - first > this.#settings.retry.maxElapsedMs) {
          this.#drop(req, 'retries_exhausted');
          this.#remove(req);
          break;
        }
        await sleep(delay, signal);
        // While waiting, the queue may have overflowed past this request: it was dropped and counted.
        if (this.#queue[0] !== req) break;
      }
    }
  }

  #remove(req: ExportRequest): void {
    const i = this.#queue.indexOf(req);
    if (i >= 0) this.#queue.splice(i, 1);
  }

  async #attempt(
    req: ExportRequest,
    timeoutMs: number,
  ): Promise<{ ok: boolean; retryable: boolean; retryAfterMs?: number }> {
    const headers: Record<string, string> = { ...this.#settings.headers, 'Content-Type': req.contentType };
    if (req.gzip) headers['Content-Encoding'] = 'gzip';
    let res: Response;
    try {
      res = await (this.#settings.fetch ?? fetch)(this.#settings.endpoint, {
        method: 'POST',
        headers,
        body: req.body as unknown as BodyInit,
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
    } catch (err) {
      const timeout = (err as Error).name === 'TimeoutError';
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      this.#failed(
        timeout ? 'timeout' : 'network_error',
        `${this.#settings.endpoint}: ${timeout ? `no answer within ${timeoutMs} ms` : (cause?.code ?? cause?.message ?? (err as Error).message)}`,
      );
      return { ok: false, retryable: true };
    }
    const code = String(res.status);
    if (res.ok) {
      this.#count(code);
      this.#stats.exportedPoints += req.points;
      this.#stats.sentBytes += req.body.byteLength;
      this.#stats.lastSuccess = this.#now();
      if (this.#stats.failing) this.#settings.logger.info(`OTLP export to ${this.#settings.endpoint} works again`);
      this.#stats.failing = false;
      this.#loggedError = undefined;
      return { ok: true, retryable: false };
    }
    const retryable = RETRYABLE.has(res.status);
    this.#failed(
      code,
      `${this.#settings.endpoint} answered ${res.status} ${res.statusText}${retryable ? ' (will retry)' : ' (request dropped; check endpoint, headers and protocol)'}`,
    );
    return {
      ok: false,
      retryable,
      retryAfterMs: retryable ? parseRetryAfter(res.headers.get('retry-after'), this.#now()) : undefined,
    };
  }

  #failed(code: string, message: string): void {
    this.#count(code);
    this.#stats.lastError = message;
    this.#stats.failing = true;
    if (this.#loggedError !== code) {
      // One line per kind of failure, not per attempt; counts are in agent_otlp_requests_total.
      this.#loggedError = code;
      this.#settings.logger.warn(`OTLP export failed: ${message}`);
    }
  }

  #count(code: string): void {
    this.#stats.requests.set(code, (this.#stats.requests.get(code) ?? 0) + 1);
  }

  #drop(req: ExportRequest, reason: DropReason): void {
    this.#stats.dropped.set(reason, (this.#stats.dropped.get(reason) ?? 0) + req.points);
  }

  #now(): number {
    return (this.#settings.now ?? Date.now)();
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
