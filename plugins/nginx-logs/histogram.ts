/** A cumulative explicit-bucket histogram that observes without allocating. */
import type { HistogramPoint } from '../../core/metrics/model.js';

/** Latency bounds in seconds: nginx logs times with millisecond resolution, requests can take a minute. */
export const DEFAULT_LATENCY_BOUNDS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

/** Explicit-bucket histogram with fixed bounds. */
export class Histogram {
  readonly bounds: Float64Array;
  /** Per-bucket counts (not cumulative); the last one is +Inf. */
  readonly buckets: Float64Array;
  count = 0;
  sum = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = Float64Array.from(bounds);
    this.buckets = new Float64Array(bounds.length + 1);
  }

  /** Adds one value; the bucket is the first whose upper bound is >= v (OTel and Prometheus `le`). */
  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]) i++;
    this.buckets[i]++;
    this.count++;
    this.sum += v;
  }

  point(startTime: number): HistogramPoint {
    return {
      attributes: {},
      count: this.count,
      sum: this.sum,
      bounds: Array.from(this.bounds),
      buckets: Array.from(this.buckets),
      startTime,
    };
  }
}
