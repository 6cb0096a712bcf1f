/**
 * Writes docs/metrics.md: every metric family a running agent serves, read from its /metrics (HELP
 * carries the description, the OTel name and the unit; samples carry the attribute names).
 * It starts a real nginx with some traffic and the agent from source with every built-in enabled that
 * can run here (OTLP pointed at a closed local port so its self-metrics exist), waits for two
 * collection rounds, and renders the table.
 *
 *   node --import tsx scripts/gen-metrics-doc.ts [--wait 20s] [--out docs/metrics.md]
 */
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDuration } from '../core/config/schema.js';
import { EXPORTER_FAMILIES } from '../core/metrics/exporter-compat.js';
import { REPO_ROOT, startAgent } from '../core/testing/agent-process.js';
import { freePort, TestNginx } from '../core/testing/nginx.js';

export interface FamilyDoc {
  prom: string;
  type: string;
  otel: string;
  unit: string;
  description: string;
  attributes: string[];
}

/** Families of a text exposition, with the HELP format of core/metrics/prometheus.ts taken apart. */
export function describeFamilies(text: string): FamilyDoc[] {
  const fams = new Map<string, FamilyDoc>();
  for (const line of text.split('\n')) {
    let m = /^# HELP (\S+) (.*)$/.exec(line);
    if (m) {
      const help = m[2].replace(/\\n/g, ' ').replace(/\\\\/g, '\\');
      const parts = /^(.*) \((\S+), unit (.*)\)$/.exec(help);
      fams.set(m[1], {
        prom: m[1],
        type: '',
        otel: parts ? parts[2] : '',
        unit: parts ? (parts[3] === 'none' ? '' : parts[3]) : '',
        description: parts ? parts[1] : help,
        attributes: [],
      });
      continue;
    }
    m = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (m) {
      const f = fams.get(m[1]);
      if (f) f.type = m[2];
      continue;
    }
    const s = /^([a-zA-Z_:][\w:]*)\{(.*)\} \S+$/.exec(line);
    if (!s) continue;
    const base = fams.get(s[1]) ?? fams.get(s[1].replace(/_(bucket|sum|count)$/, ''));
    if (!base) continue;
    for (const l of s[2].matchAll(/([a-zA-Z_]\w*)="(?:[^"\\]|\\.)*"/g)) {
      if (l[1] !== 'le' && !base.attributes.includes(l[1])) base.attributes.push(l[1]);
    }
  }
  return [...fams.values()].sort((a, b) => (a.otel || a.prom).localeCompare(b.otel || b.prom));
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|');
}

export function renderDoc(fams: FamilyDoc[]): string {
  const groups: [string, (f: FamilyDoc) => boolean][] = [
    ['Host (`host-metrics`)', (f) => f.otel.startsWith('system.') || f.otel.startsWith('process.')],
    ['NGINX', (f) => f.otel.startsWith('nginx.')],
    ['Wasm plugins', (f) => f.otel.startsWith('wasm.') || f.otel.startsWith('agent.wasm.')],
    ['The agent itself', (f) => f.otel.startsWith('agent.')],
  ];
  const placed = new Set<FamilyDoc>();
  let out = `# Metrics

Every metric the agent serves, generated from a running agent's \`/metrics\` by
\`node --import tsx scripts/gen-metrics-doc.ts\` (re-run it when a plugin adds a metric).

Names: the OpenTelemetry name is what OTLP exports carry; the Prometheus name is derived from it
mechanically (dots to \`_\`, the unit spelled out as a suffix, \`_total\` on counters; \`{...}\` units
add no suffix). Attributes become Prometheus labels with dots turned into \`_\`. Counters and
histograms are cumulative. Units are UCUM as OpenTelemetry uses them.

`;
  for (const [title, pick] of groups) {
    const rows = fams.filter((f) => !placed.has(f) && pick(f));
    if (!rows.length) continue;
    rows.forEach((r) => placed.add(r));
    out += `## ${title}\n\n| OpenTelemetry name | Prometheus name | type | unit | attributes | description |\n|---|---|---|---|---|---|\n`;
    for (const f of rows) {
      out += `| \`${f.otel}\` | \`${f.prom}\` | ${f.type} | ${f.unit ? `\`${cell(f.unit)}\`` : ''} | ${f.attributes.map((a) => `\`${a}\``).join(', ')} | ${cell(f.description)} |\n`;
    }
    out += '\n';
  }
  const rest = fams.filter((f) => !placed.has(f));
  if (rest.length) {
    out += `## Other\n\n| OpenTelemetry name | Prometheus name | type | unit | attributes | description |\n|---|---|---|---|---|---|\n`;
    for (const f of rest) out += `| \`${f.otel}\` | \`${f.prom}\` | ${f.type} | ${f.unit ? `\`${cell(f.unit)}\`` : ''} | ${f.attributes.map((a) => `\`${a}\``).join(', ')} | ${cell(f.description)} |\n`;
    out += '\n';
  }
  out += `## nginx-prometheus-exporter compatibility

With \`prometheus.exporter_compat: true\`, \`/metrics\` also serves these families exactly as
nginx-prometheus-exporter does (same names, TYPEs and HELP), so its Grafana dashboard works unchanged.
Attributes other than \`outcome\` (such as the nginx instance id) stay as labels.

| Prometheus name | type | from the agent metric | description |
|---|---|---|---|
`;
  for (const f of EXPORTER_FAMILIES) {
    out += `| \`${f.name}\` | ${f.type} | \`${f.from}\`${f.outcome ? `{outcome="${f.outcome}"}` : ''} | ${f.help} |\n`;
  }
  return out;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opt = (name: string, def: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : def;
  };
  const waitMs = parseDuration(opt('--wait', '20s')) ?? 20_000;
  const out = opt('--out', join(REPO_ROOT, 'docs', 'metrics.md'));
  const nginx = await TestNginx.start();
  const dir = mkdtempSync(join(tmpdir(), 'metrics-doc-'));
  const cfg = join(dir, 'agent.yaml');
  writeFileSync(cfg, `otlp_exporter:\n  enabled: true\n  endpoint: http://127.0.0.1:${await freePort()}/v1/metrics\n  interval: 1s\n  retry_max_elapsed: 1s\n`);
  const agent = await startAgent(['--config', cfg, '--api-port', '0']);
  try {
    const end = Date.now() + waitMs;
    while (Date.now() < end) {
      await nginx.get('/ok', 5);
      await nginx.get('/s/404', 1);
      await new Promise((r) => setTimeout(r, 1000));
    }
    await (await fetch(`${agent.url}/metrics`)).text(); // the first scrape gives the API counters a sample
    const text = await (await fetch(`${agent.url}/metrics`)).text();
    const fams = describeFamilies(text);
    writeFileSync(out, renderDoc(fams));
    console.log(`wrote ${out}: ${fams.length} families`);
  } finally {
    await agent.stop();
    await nginx.stop();
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) await main();
