/**
 * Keeps the latest state of every series for the sinks (`/metrics`, OTLP).
 * It applies the replacement rule documented on MetricBatch.
 */
import type { Attributes, HistogramPoint, Metric, MetricBatch, MetricDescriptor, NumberPoint } from './model.js';

export interface StoredMetric extends MetricDescriptor {
  /** Points from every source, with the batch's resource attributes merged into each point. */
  points: (NumberPoint | HistogramPoint)[];
}

export interface MetricStoreReader {
  /** All metrics, merged across sources by name, sorted by name. */
  snapshot(): StoredMetric[];
  /** Resource attributes are merged into points; this returns one source's raw batch state. */
  sources(): string[];
}

interface SourceState {
  resource: Attributes | undefined;
  metrics: Map<string, Metric>;
}

export class MetricStore implements MetricStoreReader {
  readonly #sources = new Map<string, SourceState>();
  /** Descriptor conflicts (same name, different type) seen; the first type wins. */
  readonly conflicts = new Map<string, string>();
  readonly #collectors: (() => readonly Metric[])[] = [];

  /** Adds metrics computed at read time (the bus's and the plugin host's own counters). */
  addCollector(collect: () => readonly Metric[]): void {
    this.#collectors.push(collect);
  }

  apply(batch: MetricBatch): void {
    if (batch.final) {
      this.#sources.delete(batch.source);
      return;
    }
    let state = this.#sources.get(batch.source);
    if (!state) {
      state = { resource: batch.resource, metrics: new Map() };
      this.#sources.set(batch.source, state);
    }
    state.resource = batch.resource;
    for (const m of batch.metrics) state.metrics.set(m.name, m);
  }

  sources(): string[] {
    return [...this.#sources.keys()].sort();
  }

  snapshot(): StoredMetric[] {
    const byName = new Map<string, StoredMetric>();
    const states: SourceState[] = [...this.#sources.values()];
    for (const collect of this.#collectors)
      states.push({ resource: undefined, metrics: new Map(collect().map((m) => [m.name, m])) });
    for (const state of states) {
      for (const m of state.metrics.values()) {
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
}
