/**
 * Keeps the latest state of every series for the sinks (`/metrics`, OTLP).
 * It applies the replacement rule documented on MetricBatch, and forgets a source when
 * - it publishes a `final` batch, or `drop(source)` is called (the plugin host does it when the
 *   plugin that published the source closes), or
 * - it declared an `interval` and nothing came from it for STALE_INTERVALS intervals (at least STALE_MIN_MS).
 */
import type { Attributes, HistogramPoint, Metric, MetricBatch, MetricDescriptor, NumberPoint } from './model.js';

export interface StoredMetric extends MetricDescriptor {
  /** Points from every source, with the batch's resource attributes merged into each point. */
  points: (NumberPoint | HistogramPoint)[];
}

export interface MetricStoreReader {
  /** All metrics, merged across sources by name, sorted by name. */
  snapshot(): StoredMetric[];
  /**
   * The metrics of these names that sources published, merged like `snapshot()`; the read-time
   * collectors (the agent's own counters) are not run. What the views sample every interval.
   */
  publishedSnapshot(names: ReadonlySet<string>): StoredMetric[];
  /** Resource attributes are merged into points; this returns one source's raw batch state. */
  sources(): string[];
}

/** A source that declared its interval is dropped after this many intervals without a batch... */
export const STALE_INTERVALS = 3;
/** ...and never sooner than this (a loaded machine delays timers; a 100 ms interval is not dropped after 300 ms). */
export const STALE_MIN_MS = 2000;

export interface MetricStoreOptions {
  /** Clock for staleness (ms). */
  now?: () => number;
  /** Told when a source is dropped for staleness (the agent logs it). */
  onStale?: (source: string, silentMs: number, intervalMs: number) => void;
}

interface SourceState {
  resource: Attributes | undefined;
  metrics: Map<string, Metric>;
  /** When the last batch arrived (store clock). */
  lastSeen: number;
  interval: number | undefined;
}

export class MetricStore implements MetricStoreReader {
  readonly #sources = new Map<string, SourceState>();
  /** Descriptor conflicts (same name, different type) seen; the first type wins. */
  readonly conflicts = new Map<string, string>();
  readonly #collectors: (() => readonly Metric[])[] = [];
  readonly #now: () => number;
  readonly #onStale: MetricStoreOptions['onStale'];
  #generation = 0;

  constructor(opts: MetricStoreOptions = {}) {
    this.#now = opts.now ?? Date.now;
    this.#onStale = opts.onStale;
  }

  /** Adds metrics computed at read time (the bus's and the plugin host's own counters). */
  addCollector(collect: () => readonly Metric[]): void {
    this.#collectors.push(collect);
  }

  apply(batch: MetricBatch): void {
    this.#generation++;
    if (batch.final) {
      this.#sources.delete(batch.source);
      return;
    }
    let state = this.#sources.get(batch.source);
    if (!state) {
      state = { resource: batch.resource, metrics: new Map(), lastSeen: 0, interval: undefined };
      this.#sources.set(batch.source, state);
    }
    state.resource = batch.resource;
    state.lastSeen = this.#now();
    state.interval = batch.interval !== undefined && batch.interval > 0 ? batch.interval : undefined;
    for (const m of batch.metrics) state.metrics.set(m.name, m);
  }

  /** Forgets everything a source published. */
  drop(source: string): boolean {
    const had = this.#sources.delete(source);
    if (had) this.#generation++;
    return had;
  }

  sources(): string[] {
    this.#expire();
    return [...this.#sources.keys()].sort();
  }

  /** A number that changes whenever the stored series change (a batch applied, a source dropped). */
  version(): number {
    this.#expire();
    return this.#generation;
  }

  snapshot(): StoredMetric[] {
    this.#expire();
    const states: Pick<SourceState, 'resource' | 'metrics'>[] = [...this.#sources.values()];
    for (const collect of this.#collectors)
      states.push({ resource: undefined, metrics: new Map(collect().map((m) => [m.name, m])) });
    return this.#merge(states, (state) => state.metrics.values());
  }

  publishedSnapshot(names: ReadonlySet<string>): StoredMetric[] {
    this.#expire();
    return this.#merge(this.#sources.values(), (state) => {
      const out: Metric[] = [];
      for (const name of names) {
        const m = state.metrics.get(name);
        if (m) out.push(m);
      }
      return out;
    });
  }

  /** The metrics `pick` takes from each state, merged by name (resource attributes into points), sorted by name. */
  #merge<S extends Pick<SourceState, 'resource' | 'metrics'>>(
    states: Iterable<S>,
    pick: (state: S) => Iterable<Metric>,
  ): StoredMetric[] {
    const byName = new Map<string, StoredMetric>();
    for (const state of states) {
      for (const m of pick(state)) {
        let out = byName.get(m.name);
        if (!out) {
          out = { name: m.name, type: m.type, unit: m.unit, description: m.description, points: [] };
          byName.set(m.name, out);
        } else if (out.type !== m.type) {
          this.conflicts.set(m.name, `${out.type} vs ${m.type}`);
          continue;
        }
        const res = state.resource;
        for (const p of m.points) {
          out.points.push(
            res ? ({ ...p, attributes: { ...res, ...p.attributes } } as NumberPoint | HistogramPoint) : p,
          );
        }
      }
    }
    return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  #expire(): void {
    const now = this.#now();
    for (const [source, state] of this.#sources) {
      if (state.interval === undefined) continue;
      const silent = now - state.lastSeen;
      if (silent <= Math.max(STALE_INTERVALS * state.interval, STALE_MIN_MS)) continue;
      this.#sources.delete(source);
      this.#generation++;
      this.#onStale?.(source, silent, state.interval);
    }
  }
}
