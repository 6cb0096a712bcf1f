/**
 * Turns the metric store's cumulative state into the series a person looks at: requests per second,
 * responses per second by status class, p50/p95 request time, connections, host CPU, memory,
 * filesystem, disk and network. Counters become rates between two samples; request-time histograms
 * are differenced between samples and read as quantiles. A counter that went down (nginx restarted)
 * gives no point for that tick rather than a negative rate.
 */
import type { Attributes, HistogramPoint, NumberPoint } from '../metrics/model.js';
import type { StoredMetric } from '../metrics/store.js';
import type { HistorySample } from './history.js';
import { seriesKey } from './history.js';

/** The names served by `GET /v1/series` (what the dashboard and `agent top` plot). */
export const SERIES = {
  up: 'nginx.up',
  requestRate: 'nginx.requests.rate',
  responseRate: 'nginx.responses.rate',
  requestTimeP50: 'nginx.request.time.p50',
  requestTimeP95: 'nginx.request.time.p95',
  connections: 'nginx.connections',
  cpu: 'host.cpu.utilization',
  memory: 'host.memory.utilization',
  filesystem: 'host.filesystem.utilization',
  diskIo: 'host.disk.io.rate',
  networkIo: 'host.network.io.rate',
} as const;

export const INSTANCE_ATTR = 'nginx.instance.id';

/** The store's metrics `sample` reads (all published by plugins): what the views take from the store. */
export const SAMPLED_METRICS: ReadonlySet<string> = new Set([
  'nginx.up',
  'nginx.http.requests',
  'nginx.http.responses',
  'nginx.http.connection.count',
  'nginx.http.request.time',
  'system.cpu.utilization',
  'system.memory.utilization',
  'system.filesystem.usage',
  'system.disk.io',
  'system.network.io',
]);

interface HistogramState {
  time: number;
  bounds: readonly number[];
  buckets: number[];
  count: number;
}

export interface Quantiles {
  p50: number;
  p95: number;
  count: number;
}

export class SeriesSampler {
  /** Previous cumulative value per derived counter key. */
  #previous = new Map<string, { time: number; value: number }>();
  /** Recent merged request-time histograms per instance, oldest first, covering `#windowMs`. */
  readonly #histograms = new Map<string, HistogramState[]>();
  readonly #windowMs: number;

  /** `windowMs`: how far back `quantilesOver` can look (the summary's "last minute"). */
  constructor(windowMs = 60_000) {
    this.#windowMs = windowMs;
  }

  sample(snapshot: readonly StoredMetric[], now: number): HistorySample[] {
    const byName = new Map(snapshot.map((m) => [m.name, m]));
    const out: HistorySample[] = [];
    const numbers = (name: string): readonly NumberPoint[] => {
      const m = byName.get(name);
      return m && m.type !== 'histogram' ? (m.points as NumberPoint[]) : [];
    };
    const seenCounters = new Set<string>();
    const rate = (name: string, attributes: Attributes, total: number) => {
      const key = seriesKey(name, attributes);
      seenCounters.add(key);
      const prev = this.#previous.get(key);
      this.#previous.set(key, { time: now, value: total });
      if (!prev || now <= prev.time || total < prev.value) return;
      out.push({ name, attributes, value: ((total - prev.value) * 1000) / (now - prev.time) });
    };

    // nginx: requests from stub_status when read, else from the access logs.
    for (const p of numbers('nginx.up')) {
      const id = p.attributes[INSTANCE_ATTR];
      if (id) out.push({ name: SERIES.up, attributes: { [INSTANCE_ATTR]: id }, value: p.value });
    }
    const requests = sumBy(numbers('nginx.http.requests'), (a) => instanceKey(a));
    const responses = sumBy(numbers('nginx.http.responses'), (a) =>
      a[INSTANCE_ATTR] && a.status_range ? { [INSTANCE_ATTR]: a[INSTANCE_ATTR], status_range: a.status_range } : null,
    );
    const responseTotals = sumBy(numbers('nginx.http.responses'), (a) => instanceKey(a));
    for (const { attributes, value } of requests.values()) rate(SERIES.requestRate, attributes, value);
    for (const [key, { attributes, value }] of responseTotals)
      if (!requests.has(key)) rate(SERIES.requestRate, attributes, value);
    for (const { attributes, value } of responses.values()) rate(SERIES.responseRate, attributes, value);
    for (const p of numbers('nginx.http.connection.count')) {
      const id = p.attributes[INSTANCE_ATTR];
      if (id && p.attributes.outcome)
        out.push({
          name: SERIES.connections,
          attributes: { [INSTANCE_ATTR]: id, state: p.attributes.outcome },
          value: p.value,
        });
    }
    this.#requestTimes(byName.get('nginx.http.request.time'), now, out);

    // host
    const cpu = numbers('system.cpu.utilization');
    const idle = cpu.find((p) => p.attributes.state === 'idle');
    if (idle) out.push({ name: SERIES.cpu, attributes: {}, value: Math.max(0, 1 - idle.value) });
    const memory = numbers('system.memory.utilization').find((p) => p.attributes.state === 'used');
    if (memory) out.push({ name: SERIES.memory, attributes: {}, value: memory.value });
    const fs = new Map<string, { used: number; free: number }>();
    for (const p of numbers('system.filesystem.usage')) {
      const mount = p.attributes.mountpoint;
      if (!mount) continue;
      const entry = fs.get(mount) ?? { used: 0, free: 0 };
      if (p.attributes.state === 'used') entry.used = p.value;
      else if (p.attributes.state === 'free') entry.free = p.value;
      fs.set(mount, entry);
    }
    for (const [mountpoint, { used, free }] of fs)
      if (used + free > 0)
        out.push({ name: SERIES.filesystem, attributes: { mountpoint }, value: used / (used + free) });
    for (const { attributes, value } of sumBy(numbers('system.disk.io'), (a) =>
      a.direction ? { direction: a.direction } : null,
    ).values())
      rate(SERIES.diskIo, attributes, value);
    for (const { attributes, value } of sumBy(numbers('system.network.io'), (a) =>
      a.direction && a.device !== 'lo' ? { direction: a.direction } : null,
    ).values())
      rate(SERIES.networkIo, attributes, value);

    for (const key of this.#previous.keys()) if (!seenCounters.has(key)) this.#previous.delete(key);
    return out;
  }

  /** p50/p95 of the request times logged in the last `windowMs` (from the kept histograms). */
  quantilesOver(instanceId: string): Quantiles | undefined {
    const ring = this.#histograms.get(instanceId);
    if (!ring || ring.length < 2) return undefined;
    const first = ring[0];
    const last = ring[ring.length - 1];
    const delta = difference(last, first);
    if (!delta || delta.count <= 0) return undefined;
    return { p50: quantile(delta, 0.5), p95: quantile(delta, 0.95), count: delta.count };
  }

  #requestTimes(metric: StoredMetric | undefined, now: number, out: HistorySample[]): void {
    const merged = new Map<string, HistogramState>();
    if (metric?.type === 'histogram') {
      for (const p of metric.points as HistogramPoint[]) {
        const id = p.attributes[INSTANCE_ATTR];
        if (!id) continue;
        const m = merged.get(id);
        if (!m) merged.set(id, { time: now, bounds: p.bounds, buckets: [...p.buckets], count: p.count });
        else if (sameBounds(m.bounds, p.bounds)) {
          for (let i = 0; i < m.buckets.length; i++) m.buckets[i] += p.buckets[i] ?? 0;
          m.count += p.count;
        }
      }
    }
    for (const id of this.#histograms.keys()) if (!merged.has(id)) this.#histograms.delete(id);
    for (const [id, state] of merged) {
      const ring = this.#histograms.get(id) ?? [];
      const prev = ring[ring.length - 1];
      ring.push(state);
      while (ring.length > 2 && now - ring[1].time >= this.#windowMs) ring.shift();
      this.#histograms.set(id, ring);
      const delta = prev ? difference(state, prev) : undefined;
      if (!delta || delta.count <= 0) continue;
      const attributes = { [INSTANCE_ATTR]: id };
      out.push({ name: SERIES.requestTimeP50, attributes, value: quantile(delta, 0.5) });
      out.push({ name: SERIES.requestTimeP95, attributes, value: quantile(delta, 0.95) });
    }
  }
}

function instanceKey(a: Attributes): Record<string, string> | null {
  return a[INSTANCE_ATTR] ? { [INSTANCE_ATTR]: a[INSTANCE_ATTR] } : null;
}

function sumBy(
  points: readonly NumberPoint[],
  group: (a: Attributes) => Record<string, string> | null,
): Map<string, { attributes: Record<string, string>; value: number }> {
  const out = new Map<string, { attributes: Record<string, string>; value: number }>();
  for (const p of points) {
    const attributes = group(p.attributes);
    if (!attributes) continue;
    const key = seriesKey('', attributes);
    const entry = out.get(key);
    if (entry) entry.value += p.value;
    else out.set(key, { attributes, value: p.value });
  }
  return out;
}

function sameBounds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** later - earlier, or undefined when the bounds changed or a counter went down (reset). */
function difference(later: HistogramState, earlier: HistogramState): HistogramState | undefined {
  if (!sameBounds(later.bounds, earlier.bounds) || later.count < earlier.count) return undefined;
  const buckets = later.buckets.map((v, i) => v - (earlier.buckets[i] ?? 0));
  if (buckets.some((v) => v < 0)) return undefined;
  return { time: later.time, bounds: later.bounds, buckets, count: later.count - earlier.count };
}

/** The q-quantile of a histogram, linear within the bucket (Prometheus' histogram_quantile rule). */
export function quantile(
  h: { bounds: readonly number[]; buckets: readonly number[]; count: number },
  q: number,
): number {
  const rank = q * h.count;
  let seen = 0;
  for (let i = 0; i < h.buckets.length; i++) {
    const inBucket = h.buckets[i];
    if (seen + inBucket >= rank && inBucket > 0) {
      if (i >= h.bounds.length) return h.bounds[h.bounds.length - 1] ?? 0;
      const lower = i === 0 ? 0 : h.bounds[i - 1];
      const upper = h.bounds[i];
      return lower + ((upper - lower) * (rank - seen)) / inBucket;
    }
    seen += inBucket;
  }
  return h.bounds[h.bounds.length - 1] ?? 0;
}
