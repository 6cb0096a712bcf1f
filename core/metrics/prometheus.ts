/**
 * Prometheus text exposition (format 0.0.4) of the metric store, with names derived mechanically
 * from the OpenTelemetry names, following OTel's Prometheus compatibility rules:
 *   name: every character outside [a-zA-Z0-9_:] becomes `_` (`nginx.http.requests` -> `nginx_http_requests`);
 *   unit: `{annotations}` are dropped, known units spelled out (`s` -> `seconds`, `By` -> `bytes`,
 *         `1` on a gauge -> `ratio`, `X/Y` -> `X_per_Y`) and appended unless the name ends with it;
 *   counters end in `_total`; histograms expose `_bucket{le}`, `_sum`, `_count`;
 *   a gauge whose name would end in `_count`, `_sum` or `_bucket` (suffixes Prometheus reserves for
 *         histograms and summaries; promtool rejects them elsewhere) gets `_current` appended:
 *         `nginx.http.connection.count` -> `nginx_http_connection_count_current`.
 * Units that are not Prometheus base units (`ms`, `min`, `KiBy`, `bit`...) are spelled out but promtool
 * flags them: sources should publish `s` and `By`.
 */
import type { HistogramPoint, MetricType, NumberPoint } from './model.js';
import type { StoredMetric } from './store.js';

const UNIT_WORDS: Record<string, string> = {
  s: 'seconds',
  ms: 'milliseconds',
  us: 'microseconds',
  ns: 'nanoseconds',
  min: 'minutes',
  h: 'hours',
  d: 'days',
  By: 'bytes',
  KiBy: 'kibibytes',
  MiBy: 'mebibytes',
  GiBy: 'gibibytes',
  KBy: 'kilobytes',
  MBy: 'megabytes',
  GBy: 'gigabytes',
  bit: 'bits',
  Hz: 'hertz',
  '%': 'percent',
  Cel: 'celsius',
};

/** The part after `/` is singular: `By/s` -> `bytes_per_second`. */
const PER_WORDS: Record<string, string> = {
  s: 'second',
  min: 'minute',
  m: 'minute',
  h: 'hour',
  d: 'day',
  w: 'week',
  mo: 'month',
  y: 'year',
};

function unitWord(u: string): string {
  return UNIT_WORDS[u] ?? u.replace(/[^a-zA-Z0-9_]/g, '_');
}

/** The unit part of a Prometheus name ('' when the unit adds nothing). */
export function unitSuffix(unit: string, type: MetricType): string {
  const u = unit.replace(/\{[^}]*\}/g, '').trim();
  if (u === '') return '';
  if (u === '1') return type === 'gauge' ? 'ratio' : '';
  const [num, per] = u.split('/', 2);
  if (per !== undefined)
    return [num ? unitWord(num) : '', 'per', PER_WORDS[per] ?? unitWord(per)].filter(Boolean).join('_');
  return unitWord(u);
}

export function sanitizeName(name: string): string {
  let n = name.replace(/[^a-zA-Z0-9_:]/g, '_').replace(/__+/g, '_');
  if (/^[0-9]/.test(n)) n = `_${n}`;
  return n;
}

export function sanitizeLabel(name: string): string {
  if (PLAIN_LABEL.test(name)) return name; // the usual case, without building new strings
  let n = name.replace(/[^a-zA-Z0-9_]/g, '_').replace(/__+/g, '_');
  if (/^[0-9]/.test(n)) n = `_${n}`;
  return n;
}

/** `nginx.http.requests` + `{request}` + counter -> `nginx_http_requests_total`. */
export function prometheusName(name: string, unit: string, type: MetricType): string {
  let n = sanitizeName(name);
  const suffix = unitSuffix(unit, type);
  if (n.endsWith('_total')) n = n.slice(0, -'_total'.length);
  if (suffix && !n.endsWith(`_${suffix}`)) n += `_${suffix}`;
  if (type === 'counter') n += '_total';
  else if (type === 'gauge' && /_(count|sum|bucket)$/.test(n)) n += '_current';
  return n;
}

/** A label name that sanitising leaves as it is (no character to replace, no `__`, no leading digit). */
const PLAIN_LABEL = /^(?!.*__)[a-zA-Z_][a-zA-Z0-9_]*$/;
const NEEDS_ESCAPE = /[\\\n"]/;

function escapeLabelValue(v: string): string {
  if (!NEEDS_ESCAPE.test(v)) return v;
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** `{a="1",b="2"}` with sorted, sanitised names and escaped values ('' when empty). */
export function formatLabels(attrs: Readonly<Record<string, string>>, extra?: [string, string]): string {
  return labels(attrs, extra);
}

function labels(attrs: Readonly<Record<string, string>>, extra?: [string, string]): string {
  const parts: string[] = [];
  for (const k of Object.keys(attrs).sort()) parts.push(`${sanitizeLabel(k)}="${escapeLabelValue(attrs[k])}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export interface ExpositionFamily {
  name: string;
  type: 'counter' | 'gauge' | 'histogram';
  help: string;
  lines: string[];
}

/** One family per metric; families whose names collide after sanitising are merged (first type wins). */
export function toFamilies(metrics: readonly StoredMetric[]): ExpositionFamily[] {
  const out = new Map<string, ExpositionFamily>();
  for (const m of metrics) {
    const name = prometheusName(m.name, m.unit, m.type);
    let fam = out.get(name);
    if (!fam) {
      fam = { name, type: m.type, help: `${m.description || m.name} (${m.name}, unit ${m.unit || 'none'})`, lines: [] };
      out.set(name, fam);
    } else if (fam.type !== m.type) continue;
    const seen = new Set<string>();
    for (const p of m.points) {
      const key = labels(p.attributes);
      if (seen.has(key)) continue; // Two sources published the same series: keep the first.
      seen.add(key);
      if (m.type === 'histogram') {
        const h = p as HistogramPoint;
        // `le` goes last, after the sorted attributes: the point's labels with it appended.
        const open = key ? `${key.slice(0, -1)},le="` : '{le="';
        let cum = 0;
        for (let i = 0; i < h.bounds.length; i++) {
          cum += h.buckets[i] ?? 0;
          fam.lines.push(`${name}_bucket${open}${formatValue(h.bounds[i])}"} ${cum}`);
        }
        fam.lines.push(`${name}_bucket${open}+Inf"} ${h.count}`);
        fam.lines.push(`${name}_sum${key} ${formatValue(h.sum)}`);
        fam.lines.push(`${name}_count${key} ${h.count}`);
      } else {
        fam.lines.push(`${name}${key} ${formatValue((p as NumberPoint).value)}`);
      }
    }
  }
  return [...out.values()];
}

export function renderFamilies(fams: readonly ExpositionFamily[]): string {
  let text = '';
  for (const f of fams) {
    text += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
    for (const l of f.lines) text += `${l}\n`;
  }
  return text;
}

export function renderPrometheus(metrics: readonly StoredMetric[]): string {
  return renderFamilies(toFamilies(metrics));
}
