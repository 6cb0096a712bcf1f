/**
 * The Alertmanager sink: firing conditions at or above `events.alertmanager.min_severity` are POSTed
 * to `<url>/api/v2/alerts`. Each alert carries labels alertname, severity, instance (the host),
 * nginx_instance_id where known, key, kind and source, and annotations.summary. While it fires it is
 * re-sent every `resend_interval` with endsAt = now + 4 x that interval (so an alert the agent stops
 * sending expires on its own); a `resolved` event sends it once more with endsAt = now.
 * A failed POST is retried with a backoff; the sink reports `failing` in /health meanwhile.
 */
import type { Logger } from 'pino';
import type { SinkReport } from './log.js';
import { SinkQueue } from './queue.js';
import { type AgentEvent, type Severity, severityAtLeast } from './types.js';

export interface AlertmanagerSinkOptions {
  /** Base URL, e.g. http://127.0.0.1:9093 */
  url: string;
  minSeverity: Severity;
  resendIntervalMs: number;
  timeoutMs: number;
  /** Events queued for the sink; also the most alerts tracked at once. */
  capacity: number;
  hostname: string;
  logger: Logger;
  now?: () => number;
}

/** Alertmanager API v2 `postableAlert`. */
export interface PostableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
}

interface Tracked {
  event: AgentEvent;
  startsAt: string;
  /** Unix ms of the resolution; absent while firing. */
  resolvedAt?: number;
}

const MAX_BACKOFF_MS = 60_000;

export class AlertmanagerSink {
  readonly queue: SinkQueue;
  readonly #opts: AlertmanagerSinkOptions;
  readonly #endpoint: string;
  readonly #now: () => number;
  /** By key: what fires (and what resolved but is not yet sent). */
  readonly #alerts = new Map<string, Tracked>();
  readonly #dirty = new Set<string>();
  readonly #resend: NodeJS.Timeout;
  #sending: Promise<void> | undefined;
  #retry: NodeJS.Timeout | undefined;
  #backoff = 1000;
  #failures = 0;
  #lastError: string | undefined;
  #posts = 0;
  #sent = 0;
  #evicted = 0;
  #closed = false;

  constructor(opts: AlertmanagerSinkOptions) {
    let base: URL;
    try {
      base = new URL(opts.url);
    } catch {
      throw new Error(`events.alertmanager.url: ${JSON.stringify(opts.url)} is not a URL (expected http://host:9093)`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:')
      throw new Error(`events.alertmanager.url: ${JSON.stringify(opts.url)} must be http:// or https://`);
    this.#opts = opts;
    this.#endpoint = `${opts.url.replace(/\/+$/, '')}/api/v2/alerts`;
    this.#now = opts.now ?? Date.now;
    this.queue = new SinkQueue({ capacity: opts.capacity, handle: (batch) => this.#take(batch) });
    this.#resend = setInterval(() => {
      for (const [key, a] of this.#alerts) if (a.resolvedAt === undefined) this.#dirty.add(key);
      this.#kick();
    }, opts.resendIntervalMs);
    this.#resend.unref();
  }

  get endpoint(): string {
    return this.#endpoint;
  }

  report(): SinkReport {
    const firing = [...this.#alerts.values()].filter((a) => a.resolvedAt === undefined).length;
    return this.queue.report(
      this.#failures > 0 ? 'failing' : 'ok',
      this.#failures > 0 ? `${this.#endpoint}: ${this.#lastError} (retrying)` : undefined,
      {
        url: this.#endpoint,
        firing,
        pending: this.#dirty.size,
        posts: this.#posts,
        alerts_sent: this.#sent,
        evicted: this.#evicted,
        ...(this.#lastError ? { last_error: this.#lastError } : {}),
      },
    );
  }

  /** Sends what is pending (resolutions above all) within the deadline, then stops. */
  async close(timeoutMs: number): Promise<void> {
    clearInterval(this.#resend);
    const end = Date.now() + timeoutMs;
    await this.queue.flush(timeoutMs);
    const deadline = new Promise<void>((r) => setTimeout(r, Math.max(0, end - Date.now())).unref());
    this.#kick();
    await Promise.race([this.#sending ?? Promise.resolve(), deadline]);
    this.#closed = true;
    if (this.#retry) clearTimeout(this.#retry);
    this.queue.close();
  }

  #take(batch: AgentEvent[]): void {
    for (const event of batch) {
      if (event.state === 'firing') {
        if (!severityAtLeast(event.severity, this.#opts.minSeverity)) continue;
        const prev = this.#alerts.get(event.key);
        const startsAt = prev && prev.resolvedAt === undefined ? prev.startsAt : event.time;
        this.#alerts.delete(event.key);
        this.#alerts.set(event.key, { event, startsAt });
        this.#dirty.add(event.key);
        if (this.#alerts.size > this.queue.capacity) {
          const oldest = this.#alerts.keys().next().value as string;
          this.#alerts.delete(oldest);
          this.#dirty.delete(oldest);
          this.#evicted++;
        }
      } else if (event.state === 'resolved') {
        const tracked = this.#alerts.get(event.key);
        if (!tracked) continue;
        tracked.resolvedAt = Date.parse(event.time);
        tracked.event = { ...tracked.event, summary: event.summary };
        this.#dirty.add(event.key);
      }
    }
    this.#kick();
  }

  /** Starts a send unless one runs or a retry waits. */
  #kick(): void {
    if (this.#sending || this.#retry || this.#dirty.size === 0 || this.#closed) return;
    this.#sending = this.#send().finally(() => {
      this.#sending = undefined;
      if (this.#failures === 0) this.#kick();
    });
  }

  async #send(): Promise<void> {
    const keys = [...this.#dirty];
    this.#dirty.clear();
    const now = this.#now();
    const alerts: PostableAlert[] = [];
    for (const key of keys) {
      const a = this.#alerts.get(key);
      if (a) alerts.push(this.#toAlert(a, now));
    }
    if (alerts.length === 0) return;
    try {
      this.#posts++;
      const res = await fetch(this.#endpoint, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(alerts),
        signal: AbortSignal.timeout(this.#opts.timeoutMs),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`answered ${res.status}: ${text.trim().slice(0, 300)}`);
      this.#sent += alerts.length;
      for (const key of keys) {
        const a = this.#alerts.get(key);
        // A resolution is sent once; a newer firing event since then keeps it (it is dirty again).
        if (a?.resolvedAt !== undefined && !this.#dirty.has(key)) this.#alerts.delete(key);
      }
      if (this.#failures > 0)
        this.#opts.logger.info(
          `Alertmanager at ${this.#endpoint} accepts alerts again (after ${this.#failures} failures)`,
        );
      this.#failures = 0;
      this.#lastError = undefined;
      this.#backoff = 1000;
    } catch (err) {
      for (const key of keys) if (this.#alerts.has(key)) this.#dirty.add(key);
      this.#failures++;
      this.#lastError = (err as Error).message;
      if (this.#failures <= 3 || this.#failures % 100 === 0)
        this.#opts.logger.warn(
          { failures: this.#failures, url: this.#endpoint },
          `cannot send ${alerts.length} alert(s) to Alertmanager at ${this.#endpoint}: ${this.#lastError}; retrying in ${this.#backoff} ms`,
        );
      this.#retry = setTimeout(() => {
        this.#retry = undefined;
        this.#kick();
      }, this.#backoff);
      this.#retry.unref();
      this.#backoff = Math.min(this.#backoff * 2, MAX_BACKOFF_MS, this.#opts.resendIntervalMs);
    }
  }

  #toAlert(a: Tracked, now: number): PostableAlert {
    const e = a.event;
    const attrs = e.attributes;
    const labels: Record<string, string> = {
      alertname: typeof attrs.alertname === 'string' && attrs.alertname !== '' ? attrs.alertname : e.kind,
      severity: e.severity,
      instance: this.#opts.hostname,
      key: e.key,
      kind: e.kind,
      source: e.source,
    };
    if (typeof attrs.instance_id === 'string' && attrs.instance_id !== '') labels.nginx_instance_id = attrs.instance_id;
    const endsAt = a.resolvedAt ?? now + 4 * this.#opts.resendIntervalMs;
    return {
      labels,
      annotations: { summary: e.summary },
      startsAt: a.startsAt,
      endsAt: new Date(endsAt).toISOString(),
    };
  }
}
