/**
 * The most requested URIs per nginx instance, from the `nginx.access.top` messages of the access-log
 * plugin (one per log): the latest message of each log is kept and the logs of an instance are
 * merged when the summary asks. A log that stopped publishing (gone, or its plugin stopped) is
 * forgotten once its message is older than twice its window.
 */
import type { AccessTop } from '../nginx/types.js';
import type { SummaryTopUris } from './summary-types.js';

export const TOP_URIS_TOPIC = 'nginx.access.top';
/** URIs shown per instance. */
export const TOP_URIS_SHOWN = 10;

interface Received {
  time: number;
  top: AccessTop;
}

export class TopUrisState {
  /** instance id -> log path -> latest message. */
  readonly #byInstance = new Map<string, Map<string, Received>>();

  handle(top: AccessTop, time: number): void {
    if (!top?.instanceId || !top.logPath || !Array.isArray(top.uris)) return;
    let logs = this.#byInstance.get(top.instanceId);
    if (!logs) this.#byInstance.set(top.instanceId, (logs = new Map()));
    logs.set(top.logPath, { time, top });
  }

  /** Forgets messages older than twice their window. */
  prune(now: number): void {
    for (const [id, logs] of this.#byInstance) {
      for (const [path, r] of logs) if (now - r.time > 2 * r.top.windowSeconds * 1000) logs.delete(path);
      if (logs.size === 0) this.#byInstance.delete(id);
    }
  }

  /**
   * The instance's top URIs across its access logs, or null when none of its logs says (no access
   * log, or a log_format without `$request`, `$request_uri` or `$uri`).
   */
  forInstance(id: string, now: number, limit = TOP_URIS_SHOWN): SummaryTopUris | null {
    this.prune(now);
    const logs = this.#byInstance.get(id);
    if (!logs?.size) return null;
    const merged = new Map<string, { requests: number; errors5xx: number }>();
    let requests = 0;
    let windowSeconds = 0;
    for (const { top } of logs.values()) {
      requests += top.requests;
      windowSeconds = Math.max(windowSeconds, top.windowSeconds);
      for (const u of top.uris) {
        const have = merged.get(u.uri);
        if (have) {
          have.requests += u.requests;
          have.errors5xx += u.errors5xx;
        } else merged.set(u.uri, { requests: u.requests, errors5xx: u.errors5xx });
      }
    }
    const uris = [...merged]
      .sort(([ua, a], [ub, b]) => b.requests - a.requests || (ua < ub ? -1 : ua > ub ? 1 : 0))
      .slice(0, limit)
      .map(([uri, c]) => ({
        uri,
        requests: c.requests,
        share: requests > 0 ? Math.round((c.requests / requests) * 10_000) / 10_000 : 0,
        errors_5xx: c.errors5xx,
      }));
    return { window_seconds: windowSeconds, requests, logs: [...logs.keys()].sort(), uris };
  }
}
