/**
 * `agent status` output: the summary of GET /v1/summary for a person. Colour only when stdout is a
 * terminal and NO_COLOR is unset. Shared with `agent top` (cmd/run/top.ts).
 */
import type { Summary, SummaryInstance } from '../../core/views/summary-types.js';
import { askAgent, type ConfigFlags } from '../commands/common.js';

/** Prints the human summary, or with --json GET /v1/status as before. */
export async function status(opts: ConfigFlags & { json?: boolean }): Promise<void> {
  if (opts.json) {
    process.stdout.write(await askAgent(opts, '/v1/status'));
    return;
  }
  const summary = JSON.parse(await askAgent(opts, '/v1/summary')) as Summary;
  process.stdout.write(renderStatus(summary, { color: useColor(process.stdout, process.env) }));
}

/** Colour when writing to a terminal, unless NO_COLOR is set to anything (https://no-color.org). */
export function useColor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  return stream.isTTY === true && !env.NO_COLOR;
}

export interface Paint {
  ok(text: string): string;
  warn(text: string): string;
  bad(text: string): string;
  dim(text: string): string;
  bold(text: string): string;
}

export function paint(color: boolean): Paint {
  const sgr = (code: string) => (text: string) => (color ? `\x1b[${code}m${text}\x1b[0m` : text);
  return { ok: sgr('32'), warn: sgr('33'), bad: sgr('31'), dim: sgr('2'), bold: sgr('1') };
}

export function renderStatus(s: Summary, opts: { color: boolean }): string {
  const p = paint(opts.color);
  const out: string[] = [];
  const a = s.agent;
  const stateText = a.state === 'running' ? p.ok(a.state) : p.warn(a.state);
  out.push(
    `${p.bold(`nginx-agent ${a.version}`)} on ${a.hostname} · ${stateText} · up ${formatUptime(a.uptime_seconds)}`,
  );
  out.push('');
  if (!s.nginx.length) out.push(`nginx: ${p.warn('no nginx instance found')} (is nginx running on this host?)`);
  for (const inst of s.nginx) out.push(...renderInstance(inst, p));
  out.push('');
  out.push(`${p.bold('host')}     ${renderHost(s, p)}`);
  const notRunning = s.plugins.filter((x) => x.state !== 'running');
  out.push(
    `${p.bold('plugins')}  ${
      notRunning.length
        ? notRunning.map((x) => p.warn(`${x.name} ${x.state}${x.reason ? ` (${x.reason})` : ''}`)).join('; ')
        : p.ok(`all ${s.plugins.length} running`)
    }`,
  );
  out.push(
    `${p.bold('events')}   ${s.events.length ? 'latest warning and worse:' : s.events_available ? 'no warning or worse' : p.dim('(this agent has no events pipeline)')}`,
  );
  for (const e of s.events) {
    const sev = e.severity === 'warning' ? p.warn(e.severity.toUpperCase()) : p.bad(e.severity.toUpperCase());
    out.push(
      `  ${e.time.slice(0, 19).replace('T', ' ')} ${sev} ${e.kind}${e.state ? ` [${e.state}]` : ''}: ${e.summary}`,
    );
  }
  return `${out.join('\n')}\n`;
}

function renderInstance(inst: SummaryInstance, p: Paint): string[] {
  const lines: string[] = [];
  const up = inst.up === null ? p.dim('?') : inst.up ? p.ok('up') : p.bad('DOWN');
  const health =
    inst.health === 'HEALTHY' ? '' : ` ${p.warn(inst.health)}${inst.health_reason ? ` (${inst.health_reason})` : ''}`;
  lines.push(
    `${p.bold('nginx')} ${inst.id.slice(0, 8)}  ${inst.conf_path ?? '?'}  ${inst.version ? `nginx/${inst.version}` : ''}  ${up}${health}`,
  );
  const traffic: string[] = [];
  traffic.push(inst.requests_per_second === null ? 'req/s -' : `${formatNumber(inst.requests_per_second)} req/s`);
  if (inst.status_mix) {
    traffic.push(
      ['2xx', '3xx', '4xx', '5xx']
        .map((k) => {
          const text = `${k} ${formatPercent(inst.status_mix?.[k] ?? 0)}`;
          return k === '5xx' && (inst.status_mix?.[k] ?? 0) > 0 ? p.bad(text) : text;
        })
        .join(' '),
    );
  } else traffic.push(p.dim('status mix - (no access log read)'));
  traffic.push(
    inst.request_time_p95_seconds === null ? 'p95 -' : `p95 ${formatSeconds(inst.request_time_p95_seconds)}`,
  );
  traffic.push(inst.connections ? `${inst.connections.active ?? 0} active conn` : 'conn -');
  lines.push(`    ${traffic.join(' · ')}`);
  const c = inst.config;
  const test = c.last_test
    ? c.last_test.ok
      ? p.ok('nginx -t ok')
      : p.bad('nginx -t FAILED')
    : p.dim('nginx -t not run');
  const findings = c.findings.length
    ? p.warn(`${c.findings.length} finding${c.findings.length === 1 ? '' : 's'}`)
    : 'no findings';
  const parse = c.status === 'failed' ? ` · ${p.bad('parse failed')}` : '';
  lines.push(`    config ${c.version ? c.version.slice(0, 12) : '-'} · ${test}${parse} · ${findings}`);
  const certs = inst.certificates.slice(0, 2);
  if (certs.length)
    lines.push(
      `    certificates: ${certs
        .map((x) => {
          const text = `${x.path} ${x.days_left < 0 ? 'EXPIRED' : `${x.days_left} days left`} (${x.expires_at.slice(0, 10)})`;
          return x.days_left < 7 ? p.bad(text) : x.days_left < 30 ? p.warn(text) : text;
        })
        .join('; ')}`,
    );
  return lines;
}

function renderHost(s: Summary, p: Paint): string {
  const h = s.host;
  const level = (x: number | null, text: string) => (x !== null && x >= 0.9 ? p.bad(text) : text);
  const parts = [
    level(h.cpu_utilization, `cpu ${formatPercent(h.cpu_utilization)}`),
    level(h.memory_utilization, `memory ${formatPercent(h.memory_utilization)}`),
    h.filesystem
      ? level(h.filesystem.utilization, `disk ${h.filesystem.mountpoint} ${formatPercent(h.filesystem.utilization)}`)
      : 'disk -',
  ];
  if (h.network_bytes_per_second)
    parts.push(
      `net rx ${formatBytes(h.network_bytes_per_second.receive)}/s tx ${formatBytes(h.network_bytes_per_second.transmit)}/s`,
    );
  return parts.join(' · ');
}

export function formatUptime(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  return `${m}m ${seconds % 60}s`;
}

export function formatPercent(x: number | null | undefined): string {
  return x === null || x === undefined ? '-' : `${(x * 100).toFixed(1)}%`;
}

export function formatSeconds(x: number): string {
  return x < 1 ? `${(x * 1000).toFixed(1)} ms` : `${x.toFixed(2)} s`;
}

export function formatNumber(x: number): string {
  return x >= 100 ? x.toFixed(0) : x.toFixed(1);
}

export function formatBytes(x: number): string {
  const units = ['B', 'KB', 'MB', 'GB'];
  let i = 0;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${x.toFixed(i ? 1 : 0)} ${units[i]}`;
}
