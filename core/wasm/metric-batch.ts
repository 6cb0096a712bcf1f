/**
 * The shape check for a MetricBatch published by a Wasm plugin on `metrics` (core/metrics/model.ts).
 * Pure; returns what is wrong, or undefined. The source must be the plugin's own (`wasm:<name>` or
 * `wasm:<name>:<anything>`), so a plugin can never replace another source's series, and names under
 * `agent.` stay the agent's.
 */
const NAME = /^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram']);
const MAX_METRICS = 1000;
const MAX_POINTS = 10_000;

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function attrs(v: unknown): boolean {
  return isObj(v) && Object.values(v).every((x) => typeof x === 'string');
}

export function metricBatchProblem(plugin: string, d: unknown): string | undefined {
  if (!isObj(d)) return 'data is not a MetricBatch object';
  const src = d.source;
  if (typeof src !== 'string' || (src !== `wasm:${plugin}` && !src.startsWith(`wasm:${plugin}:`)))
    return `source must be "wasm:${plugin}" (or start with "wasm:${plugin}:")`;
  if (!finite(d.time)) return 'time must be Unix ms';
  if (d.resource !== undefined && !attrs(d.resource)) return 'resource must map strings to strings';
  if (d.final !== undefined && typeof d.final !== 'boolean') return 'final must be a boolean';
  if (d.interval !== undefined && !(finite(d.interval) && d.interval > 0))
    return 'interval, when given, must be a positive number of ms';
  if (!Array.isArray(d.metrics) || d.metrics.length > MAX_METRICS)
    return `metrics must be a list of at most ${MAX_METRICS}`;
  for (const [i, m] of d.metrics.entries()) {
    const at = `metrics[${i}]`;
    if (!isObj(m)) return `${at} is not an object`;
    if (typeof m.name !== 'string' || !NAME.test(m.name))
      return `${at}.name must be a dotted lower-case name like "myplugin.requests"`;
    if (m.name.startsWith('agent.')) return `${at}.name: names under agent. belong to the agent`;
    if (typeof m.type !== 'string' || !TYPES.has(m.type)) return `${at}.type must be counter, gauge or histogram`;
    if (typeof m.unit !== 'string') return `${at}.unit must be a string (UCUM, e.g. "s", "By", "{request}")`;
    if (m.description !== undefined && typeof m.description !== 'string')
      return `${at}.description, when given, must be a string`;
    if (!Array.isArray(m.points) || m.points.length > MAX_POINTS)
      return `${at}.points must be a list of at most ${MAX_POINTS}`;
    for (const [j, p] of m.points.entries()) {
      const pat = `${at}.points[${j}]`;
      if (!isObj(p) || !attrs(p.attributes)) return `${pat}.attributes must map strings to strings`;
      if (p.startTime !== undefined && !finite(p.startTime)) return `${pat}.startTime must be Unix ms`;
      if (m.type === 'histogram') {
        const { count, sum, bounds, buckets } = p;
        if (!finite(count) || !finite(sum) || !Array.isArray(bounds) || !Array.isArray(buckets))
          return `${pat} needs count, sum, bounds and buckets`;
        if (!bounds.every(finite) || !buckets.every(finite) || buckets.length !== bounds.length + 1)
          return `${pat}: buckets must have one more entry than bounds, all numbers`;
      } else if (!finite(p.value)) return `${pat}.value must be a number`;
    }
  }
  return undefined;
}

/** Fills what a well-formed batch may leave out (`description`), in place, before it reaches the bus. */
export function withMetricDefaults(d: unknown): void {
  for (const m of (d as { metrics: Record<string, unknown>[] }).metrics) m.description ??= '';
}
