/**
 * nginx-prometheus-exporter compatibility: with `prometheus.exporter_compat: true`, `/metrics` also
 * serves the exporter's exact families (names, TYPEs and HELP as nginx-prometheus-exporter 0.11 serves
 * them for stub_status), derived from the agent's own nginx metrics, so the exporter's official
 * Grafana dashboard works unchanged.
 *
 * The exporter's two connection counters have no `_total` suffix; promtool's linter flags exactly
 * those on the exporter too. That is the price of "exact", and why the switch is off by default.
 */
import type { NumberPoint } from './model.js';
import { formatLabels, formatValue, renderFamilies, toFamilies, type ExpositionFamily } from './prometheus.js';
import type { StoredMetric } from './store.js';

interface CompatFamily {
  /** The exporter's family name. */
  name: string;
  type: 'counter' | 'gauge';
  help: string;
  /** The agent metric it is read from. */
  from: string;
  /** When set, only points with this `outcome` attribute, which is then dropped. */
  outcome?: string;
}

/** The exporter's stub_status families (checked against prometheus-nginx-exporter in a test). */
export const EXPORTER_FAMILIES: readonly CompatFamily[] = [
  {
    name: 'nginx_connections_accepted',
    type: 'counter',
    help: 'Accepted client connections',
    from: 'nginx.http.connections',
    outcome: 'accepted',
  },
  {
    name: 'nginx_connections_active',
    type: 'gauge',
    help: 'Active client connections',
    from: 'nginx.http.connection.count',
    outcome: 'active',
  },
  {
    name: 'nginx_connections_handled',
    type: 'counter',
    help: 'Handled client connections',
    from: 'nginx.http.connections',
    outcome: 'handled',
  },
  {
    name: 'nginx_connections_reading',
    type: 'gauge',
    help: 'Connections where NGINX is reading the request header',
    from: 'nginx.http.connection.count',
    outcome: 'reading',
  },
  {
    name: 'nginx_connections_waiting',
    type: 'gauge',
    help: 'Idle client connections',
    from: 'nginx.http.connection.count',
    outcome: 'waiting',
  },
  {
    name: 'nginx_connections_writing',
    type: 'gauge',
    help: 'Connections where NGINX is writing the response back to the client',
    from: 'nginx.http.connection.count',
    outcome: 'writing',
  },
  { name: 'nginx_http_requests_total', type: 'counter', help: 'Total http requests', from: 'nginx.http.requests' },
  { name: 'nginx_up', type: 'gauge', help: 'Status of the last metric scrape', from: 'nginx.up' },
];

/**
 * The exporter's families from the agent's metrics. Point attributes other than `outcome` (e.g. the
 * nginx instance id) stay as labels, so several nginx instances stay apart. With no nginx known,
 * `nginx_up` is 0, as the exporter serves it when stub_status cannot be read.
 */
export function exporterCompatFamilies(metrics: readonly StoredMetric[]): ExpositionFamily[] {
  const byName = new Map(metrics.map((m) => [m.name, m]));
  const out: ExpositionFamily[] = [];
  for (const f of EXPORTER_FAMILIES) {
    const src = byName.get(f.from);
    const lines: string[] = [];
    const seen = new Set<string>();
    for (const p of (src?.type === 'histogram' ? [] : (src?.points ?? [])) as NumberPoint[]) {
      const { outcome, ...rest } = p.attributes;
      if (f.outcome !== undefined && outcome !== f.outcome) continue;
      const key = formatLabels(f.outcome === undefined ? p.attributes : rest);
      if (seen.has(key)) continue;
      seen.add(key);
      lines.push(`${f.name}${key} ${formatValue(p.value)}`);
    }
    if (lines.length === 0 && f.name === 'nginx_up') lines.push('nginx_up 0');
    if (lines.length) out.push({ name: f.name, type: f.type, help: f.help, lines });
  }
  return out;
}

/**
 * The agent's families plus the exporter's. A family the agent already serves under the same name and
 * type (`nginx_http_requests_total`) is served once, from the agent's own metric.
 */
export function withExporterCompat(metrics: readonly StoredMetric[]): ExpositionFamily[] {
  const fams = toFamilies(metrics);
  const native = new Map(fams.map((f) => [f.name, f]));
  for (const c of exporterCompatFamilies(metrics)) {
    const n = native.get(c.name);
    if (!n) fams.push(c);
    else if (n.type !== c.type) native.set(c.name, Object.assign(n, c));
  }
  return fams;
}

/** The agent's exposition plus the exporter's families, in the text format. */
export function renderWithExporterCompat(metrics: readonly StoredMetric[]): string {
  return renderFamilies(withExporterCompat(metrics));
}
