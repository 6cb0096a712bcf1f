/**
 * Cumulative counters read from nginx (stub_status, the Plus API) with reset handling: a value lower
 * than the previous one for the same series means nginx restarted (or the zone was recreated), so the
 * series gets a new start time instead of a negative rate.
 */
import type { Attributes, NumberPoint } from '../../core/metrics/model.js';

interface Series {
  value: number;
  startTime: number;
}

function seriesKey(name: string, attrs: Attributes): string {
  const keys = Object.keys(attrs).sort();
  return `${name}\0${keys.map((k) => `${k}=${attrs[k]}`).join('\0')}`;
}

export class CounterTracker {
  readonly #series = new Map<string, Series>();
  readonly #seen = new Set<string>();
  /** Series that went backwards since this tracker was made. */
  resets = 0;

  /** Start time for series seen for the first time. */
  constructor(private readonly firstStart: () => number) {}

  /**
   * The point for `value` now, with its start time; and the increase since the previous read
   * (the whole value after a reset, undefined on the first read).
   */
  read(name: string, attributes: Attributes, value: number, now: number): { point: NumberPoint; delta?: number } {
    const k = seriesKey(name, attributes);
    this.#seen.add(k);
    const prev = this.#series.get(k);
    if (!prev) {
      const s = { value, startTime: Math.min(this.firstStart(), now) };
      this.#series.set(k, s);
      return { point: { attributes, value, startTime: s.startTime } };
    }
    if (value < prev.value) {
      this.resets++;
      prev.startTime = now;
      prev.value = value;
      return { point: { attributes, value, startTime: now }, delta: value };
    }
    const delta = value - prev.value;
    prev.value = value;
    return { point: { attributes, value, startTime: prev.startTime }, delta };
  }

  /** Forgets series not read since the last call (peers and zones that disappeared). */
  sweep(): void {
    for (const k of this.#series.keys()) if (!this.#seen.has(k)) this.#series.delete(k);
    this.#seen.clear();
  }
}
