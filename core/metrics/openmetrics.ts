/**
 * OpenMetrics 1.0 text of the same families the Prometheus text format serves (core/metrics/prometheus.ts),
 * for scrapers that ask for it (`Accept: application/openmetrics-text`). The samples are the same lines;
 * what differs:
 *   - a counter family is named without `_total` (`# TYPE nginx_http_requests counter`), its samples keep it;
 *   - a counter whose name does not end in `_total` (the exporter-compat families
 *     `nginx_connections_accepted` and `_handled`) is typed `unknown`, so its sample names stay exact;
 *   - HELP escapes `"` too, and the exposition ends with `# EOF`.
 */
import type { ExpositionFamily } from './prometheus.js';

export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export function renderOpenMetrics(fams: readonly ExpositionFamily[]): string {
  let text = '';
  for (const f of fams) {
    let name = f.name;
    let type: string = f.type;
    if (f.type === 'counter') {
      if (name.endsWith('_total')) name = name.slice(0, -'_total'.length);
      else type = 'unknown';
    }
    text += `# TYPE ${name} ${type}\n# HELP ${name} ${escapeHelp(f.help)}\n`;
    for (const l of f.lines) text += `${l}\n`;
  }
  return `${text}# EOF\n`;
}
