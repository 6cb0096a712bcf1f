/**
 * A bounded in-memory history of the series the dashboard and `agent top` show: one timestamp ring
 * shared by every series (all are sampled on the same tick) and one Float64Array ring per series.
 * Memory is fixed by `capacity` (points per series) and `maxSeries`; a series that has had no value
 * for a whole window (an nginx instance gone, a mount unmounted) is forgotten.
 */

export interface HistorySample {
  readonly name: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface HistoryOptions {
  /** Time between two samples (ms): the collection interval. */
  intervalMs: number;
  /** How far back the history goes (ms); capacity = windowMs / intervalMs. */
  windowMs: number;
  /** Most series kept at once; new series beyond it are refused and counted. */
  maxSeries: number;
}

export interface SeriesQueryResult {
  name: string;
  interval_ms: number;
  /** Sample times, Unix ms, oldest first. */
  times: number[];
  /** One entry per series of that name; `values[i]` belongs to `times[i]` (null: no value then). */
  series: { attributes: Record<string, string>; values: (number | null)[] }[];
}

interface Series {
  readonly name: string;
  readonly attributes: Record<string, string>;
  readonly values: Float64Array;
  /** Tick number of the last finite value. */
  lastTick: number;
}

export interface HistoryStats {
  series: number;
  capacity: number;
  maxSeries: number;
  refusedSeries: number;
  /** Bytes held by the rings (timestamps and values), not counting the Map and key strings. */
  ringBytes: number;
}

export class HistoryStore {
  readonly capacity: number;
  readonly intervalMs: number;
  readonly #maxSeries: number;
  readonly #times: Float64Array;
  /** Ticks recorded so far; the newest is at (ticks - 1) % capacity. */
  #ticks = 0;
  readonly #series = new Map<string, Series>();
  #refused = 0;

  constructor(opts: HistoryOptions) {
    if (!(opts.intervalMs > 0)) throw new Error(`history: intervalMs must be positive, got ${opts.intervalMs}`);
    this.intervalMs = opts.intervalMs;
    this.capacity = Math.max(2, Math.ceil(opts.windowMs / opts.intervalMs));
    this.#maxSeries = opts.maxSeries;
    this.#times = new Float64Array(this.capacity);
  }

  /** Records one tick: every sample given gets this time; every other known series gets no value. */
  record(time: number, samples: Iterable<HistorySample>): void {
    const slot = this.#ticks % this.capacity;
    const tick = this.#ticks;
    this.#ticks++;
    this.#times[slot] = time;
    for (const s of this.#series.values()) s.values[slot] = Number.NaN;
    for (const sample of samples) {
      if (!Number.isFinite(sample.value)) continue;
      const key = seriesKey(sample.name, sample.attributes);
      let series = this.#series.get(key);
      if (!series) {
        if (this.#series.size >= this.#maxSeries) {
          this.#refused++;
          continue;
        }
        series = {
          name: sample.name,
          attributes: { ...sample.attributes },
          values: new Float64Array(this.capacity).fill(Number.NaN),
          lastTick: tick,
        };
        this.#series.set(key, series);
      }
      series.values[slot] = sample.value;
      series.lastTick = tick;
    }
    for (const [key, s] of this.#series) if (tick - s.lastTick >= this.capacity) this.#series.delete(key);
  }

  /** Names of the series held now, sorted. */
  names(): string[] {
    return [...new Set([...this.#series.values()].map((s) => s.name))].sort();
  }

  /**
   * The series named `name` (all of them, or those whose attributes include every `match` pair),
   * from `since` (Unix ms, inclusive) on.
   */
  query(name: string, since = 0, match: Record<string, string> = {}): SeriesQueryResult {
    const slots = this.#slotsSince(since);
    const times = slots.map((slot) => this.#times[slot]);
    const series = [];
    for (const s of this.#series.values()) {
      if (s.name !== name) continue;
      if (!Object.entries(match).every(([k, v]) => s.attributes[k] === v)) continue;
      const values = slots.map((slot) => {
        const v = s.values[slot];
        return Number.isNaN(v) ? null : v;
      });
      series.push({ attributes: { ...s.attributes }, values });
    }
    series.sort((a, b) => compareKeys(seriesKey(name, a.attributes), seriesKey(name, b.attributes)));
    return { name, interval_ms: this.intervalMs, times, series };
  }

  /** The finite values of one series from `since` on, oldest first (for the summary's averages). */
  values(name: string, attributes: Record<string, string>, since = 0): number[] {
    const s = this.#series.get(seriesKey(name, attributes));
    if (!s) return [];
    return this.#slotsSince(since)
      .map((slot) => s.values[slot])
      .filter((v) => !Number.isNaN(v));
  }

  /** The newest value of a series, or undefined when it had none in the last tick. */
  latest(name: string, attributes: Record<string, string>): number | undefined {
    if (this.#ticks === 0) return undefined;
    const v = this.#series.get(seriesKey(name, attributes))?.values[(this.#ticks - 1) % this.capacity];
    return v === undefined || Number.isNaN(v) ? undefined : v;
  }

  /** Every series of `name` with its newest value (series without one in the last tick are left out). */
  latestAll(name: string): { attributes: Record<string, string>; value: number }[] {
    if (this.#ticks === 0) return [];
    const slot = (this.#ticks - 1) % this.capacity;
    const out = [];
    for (const s of this.#series.values()) {
      if (s.name !== name || Number.isNaN(s.values[slot])) continue;
      out.push({ attributes: s.attributes, value: s.values[slot] });
    }
    return out;
  }

  stats(): HistoryStats {
    return {
      series: this.#series.size,
      capacity: this.capacity,
      maxSeries: this.#maxSeries,
      refusedSeries: this.#refused,
      ringBytes: (this.#series.size + 1) * this.capacity * Float64Array.BYTES_PER_ELEMENT,
    };
  }

  /** Ring slots of the ticks at or after `since`, oldest first. */
  #slotsSince(since: number): number[] {
    const held = Math.min(this.#ticks, this.capacity);
    const slots: number[] = [];
    for (let age = held - 1; age >= 0; age--) {
      const slot = (this.#ticks - 1 - age) % this.capacity;
      if (this.#times[slot] >= since) slots.push(slot);
    }
    return slots;
  }
}

export function seriesKey(name: string, attributes: Readonly<Record<string, string>>): string {
  const keys = Object.keys(attributes).sort();
  let key = name;
  for (const k of keys) key += `\u0000${k}=${attributes[k]}`;
  return key;
}

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
