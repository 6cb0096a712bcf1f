/**
 * The one metric model every source publishes and every sink reads.
 *
 * Names are OpenTelemetry-style dotted names (`system.cpu.utilization`, `nginx.http.requests`);
 * units are UCUM strings as OpenTelemetry uses them (`s`, `By`, `1`, `{request}`).
 * Counters and histograms are cumulative: a source publishes the running total, never a delta,
 * and a reset (process restart) is visible as a new `startTime`.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram';

/** Attribute values are strings: they become Prometheus labels and OTLP string attributes. */
export type Attributes = Readonly<Record<string, string>>;

export interface MetricDescriptor {
  /** OTel dotted name, e.g. `nginx.http.requests`. */
  readonly name: string;
  readonly type: MetricType;
  /** UCUM unit as OTel uses it: `s`, `ms`, `By`, `1`, `{request}`, `{connection}`. */
  readonly unit: string;
  readonly description: string;
}

export interface NumberPoint {
  readonly attributes: Attributes;
  readonly value: number;
  /** Unix ms when a cumulative series started (counters); absent for gauges. */
  readonly startTime?: number;
}

export interface HistogramPoint {
  readonly attributes: Attributes;
  readonly count: number;
  readonly sum: number;
  /** Upper bounds, ascending; the last bucket (+Inf) is implied. */
  readonly bounds: readonly number[];
  /** Per-bucket counts (not cumulative), length bounds.length + 1. */
  readonly buckets: readonly number[];
  readonly startTime?: number;
}

export interface CounterMetric extends MetricDescriptor {
  readonly type: 'counter';
  readonly points: readonly NumberPoint[];
}
export interface GaugeMetric extends MetricDescriptor {
  readonly type: 'gauge';
  readonly points: readonly NumberPoint[];
}
export interface HistogramMetric extends MetricDescriptor {
  readonly type: 'histogram';
  readonly points: readonly HistogramPoint[];
}

export type Metric = CounterMetric | GaugeMetric | HistogramMetric;

/**
 * What a source publishes on the `metrics` topic.
 *
 * Replacement rule used by the store: for every metric name present in a batch, the points of
 * that name previously published under the same `source` are replaced by the batch's points
 * (so a series that disappears from the source disappears from `/metrics`).
 * `final: true` removes everything the source published before (the source went away).
 */
export interface MetricBatch {
  /** Stable identity of the publisher, e.g. `host-metrics` or `nginx-status:<instance id>`. */
  readonly source: string;
  /** Unix ms of collection. */
  readonly time: number;
  /** Attributes that apply to every point of the batch (e.g. `nginx.instance.id`). */
  readonly resource?: Attributes;
  readonly metrics: readonly Metric[];
  readonly final?: boolean;
  /**
   * How often this source publishes, in ms, for a source that publishes on a timer. The store drops
   * a source not heard from for 3 intervals (it hung, or went away without a `final` batch), as
   * Prometheus marks a series stale. Sources that publish on events leave it out.
   */
  readonly interval?: number;
}

/** Small constructors so sources do not repeat the descriptor boilerplate. */
export function counter(d: Omit<MetricDescriptor, 'type'>, points: NumberPoint[]): CounterMetric {
  return { ...d, type: 'counter', points };
}
export function gauge(d: Omit<MetricDescriptor, 'type'>, points: NumberPoint[]): GaugeMetric {
  return { ...d, type: 'gauge', points };
}
export function histogram(d: Omit<MetricDescriptor, 'type'>, points: HistogramPoint[]): HistogramMetric {
  return { ...d, type: 'histogram', points };
}
