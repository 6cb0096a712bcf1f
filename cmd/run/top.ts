/**
 * `agent top`: a full-screen live view of a running agent, refreshed every 2 s from GET /v1/summary
 * and GET /v1/series. Keys: ←/→ (or Tab, n/p, 1-9) switch nginx instance, q or Ctrl-C quit. The
 * terminal (alternate screen, cursor, raw mode) is restored on every way out. Needs a terminal.
 */
import type { SeriesQueryResult } from '../../core/views/history.js';
import type { Summary, SummaryInstance } from '../../core/views/summary-types.js';
import { askAgent, type ConfigFlags, fail } from '../commands/common.js';
import {
  formatBytes,
  formatNumber,
  formatPercent,
  formatSeconds,
  formatUptime,
  type Paint,
  paint,
  useColor,
} from './status.js';

export const REFRESH_MS = 2000;
const SPARK = '▁▂▃▄▅▆▇█';

export const NO_TTY =
  'agent top needs a terminal (stdin and stdout must be a TTY); in scripts use "agent status" or "agent status --json"';

export interface AgentClient {
  get(path: string): Promise<unknown>;
}

export async function top(opts: ConfigFlags): Promise<void> {
  if (!process.stdout.isTTY || !process.stdin.isTTY) {
    process.stderr.write(`agent: ${NO_TTY}\n`);
    process.exit(1);
  }
  const client: AgentClient = { get: async (path) => JSON.parse(await askAgent(opts, path)) };
  try {
    await client.get('/v1/summary');
  } catch (err) {
    fail(err);
  }
  await runTop(client, process.stdin, process.stdout);
}

interface TopState {
  selected: number;
  /** The instance shown, kept by id so that instances coming and going do not move the view. */
  selectedId?: string;
  summary?: Summary;
  rates?: SeriesQueryResult;
  error?: string;
}

async function runTop(client: AgentClient, input: NodeJS.ReadStream, output: NodeJS.WriteStream): Promise<void> {
  const color = useColor(output, process.env);
  const state: TopState = { selected: 0 };
  let timer: NodeJS.Timeout | undefined;
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    clearTimeout(timer);
    if (input.isTTY) input.setRawMode(false);
    input.pause();
    output.write('\x1b[0m\x1b[?25h\x1b[?1049l');
  };
  const quit = (code = 0) => {
    restore();
    process.exit(code);
  };
  process.on('exit', restore);
  process.on('SIGINT', () => quit(130));
  process.on('SIGTERM', () => quit(143));
  process.on('SIGHUP', () => quit(129));
  process.on('uncaughtException', (err) => {
    restore();
    process.stderr.write(`agent top: ${err.stack ?? err.message}\n`);
    process.exit(1);
  });
  output.write('\x1b[?1049h\x1b[?25l');
  input.setRawMode(true);
  input.setEncoding('utf8');
  input.resume();

  const draw = () => {
    output.write(
      `\x1b[H\x1b[2J${renderTop(state, { width: output.columns || 100, height: output.rows || 30, color }).join('\r\n')}`,
    );
  };
  const refresh = async () => {
    try {
      state.summary = (await client.get('/v1/summary')) as Summary;
      const kept = state.summary.nginx.findIndex((i) => i.id === state.selectedId);
      if (kept >= 0) state.selected = kept;
      const inst = state.summary.nginx[Math.min(state.selected, state.summary.nginx.length - 1)];
      state.selectedId = inst?.id;
      state.rates = inst
        ? ((await client.get(
            `/v1/series?name=nginx.requests.rate&since=3m&instance=${encodeURIComponent(inst.id)}`,
          )) as SeriesQueryResult)
        : undefined;
      state.error = undefined;
    } catch (err) {
      state.error = (err as Error).message;
    }
    if (restored) return;
    draw();
    timer = setTimeout(() => void refresh(), REFRESH_MS);
  };
  input.on('data', (key: string) => {
    const count = state.summary?.nginx.length ?? 0;
    if (key === 'q' || key === 'Q' || key === '\x1b') quit(0);
    else if (key === '\x03') quit(130);
    else if (count === 0) return;
    else if (key === '\x1b[C' || key === '\t' || key === 'n' || key === 'l')
      state.selected = (state.selected + 1) % count;
    else if (key === '\x1b[D' || key === '\x1b[Z' || key === 'p' || key === 'h')
      state.selected = (state.selected - 1 + count) % count;
    else if (/^[1-9]$/.test(key) && Number(key) <= count) state.selected = Number(key) - 1;
    else return;
    state.selectedId = state.summary?.nginx[state.selected]?.id;
    state.rates = undefined;
    draw();
    clearTimeout(timer);
    void refresh();
  });
  output.on('resize', draw);
  await refresh();
  await new Promise<never>(() => {
    // runs until a key or a signal quits
  });
}

export function renderTop(state: TopState, opts: { width: number; height: number; color: boolean }): string[] {
  const p = paint(opts.color);
  const lines: string[] = [];
  const s = state.summary;
  const clock = new Date().toTimeString().slice(0, 8);
  if (!s) {
    lines.push(`agent top · ${clock}`, '', state.error ? p.bad(state.error) : 'waiting for the agent...');
    return fit(lines, opts);
  }
  const a = s.agent;
  lines.push(
    `${p.bold(`nginx-agent ${a.version}`)} · ${a.hostname} · ${a.state} · up ${formatUptime(a.uptime_seconds)} · ${clock} · every ${REFRESH_MS / 1000} s`,
  );
  if (state.error) lines.push(p.bad(`last refresh failed: ${state.error}`));
  const count = s.nginx.length;
  const index = Math.min(state.selected, Math.max(0, count - 1));
  const inst = s.nginx[index];
  lines.push('');
  if (!inst) lines.push(p.warn('no nginx instance found'));
  else lines.push(...renderInstance(inst, index, count, state.rates, p, opts.width));
  lines.push('');
  const h = s.host;
  lines.push(
    `${p.bold('host'.padEnd(12))} cpu ${formatPercent(h.cpu_utilization)} · memory ${formatPercent(h.memory_utilization)} · ${
      h.filesystem ? `disk ${h.filesystem.mountpoint} ${formatPercent(h.filesystem.utilization)}` : 'disk -'
    }${h.network_bytes_per_second ? ` · net rx ${formatBytes(h.network_bytes_per_second.receive)}/s tx ${formatBytes(h.network_bytes_per_second.transmit)}/s` : ''}`,
  );
  const notRunning = s.plugins.filter((x) => x.state !== 'running');
  lines.push(
    `${p.bold('plugins'.padEnd(12))} ${notRunning.length ? p.warn(notRunning.map((x) => `${x.name} ${x.state}`).join(', ')) : `all ${s.plugins.length} running`}`,
  );
  const latest = s.events[0];
  lines.push(
    `${p.bold('events'.padEnd(12))} ${
      latest
        ? `${latest.time.slice(11, 19)} ${latest.severity === 'warning' ? p.warn(latest.severity.toUpperCase()) : p.bad(latest.severity.toUpperCase())} ${latest.kind}: ${latest.summary}`
        : s.events_available
          ? 'no warning or worse'
          : p.dim('(no events pipeline)')
    }`,
  );
  lines.push('');
  lines.push(p.dim(`←/→ or Tab switch instance (${count} known) · 1-9 pick · q quit`));
  return fit(lines, opts);
}

function renderInstance(
  inst: SummaryInstance,
  index: number,
  count: number,
  rates: SeriesQueryResult | undefined,
  p: Paint,
  width: number,
): string[] {
  const lines: string[] = [];
  const up = inst.up === null ? p.dim('?') : inst.up ? p.ok('up') : p.bad('DOWN');
  lines.push(
    `${p.bold(`instance ${index + 1}/${count}`)}  ${inst.id}  ${inst.conf_path ?? '?'}  ${inst.version ? `nginx/${inst.version}` : ''}  ${up}  ${inst.health}`,
  );
  const values = (rates?.series[0]?.values ?? []).filter((v): v is number => v !== null);
  const spark = sparkline(values.slice(-Math.max(10, width - 40)));
  lines.push(
    `${'requests/s'.padEnd(12)} ${(inst.requests_per_second === null ? '-' : formatNumber(inst.requests_per_second)).padStart(8)}  ${spark}`,
  );
  const mix = inst.status_mix;
  lines.push(
    `${'status mix'.padEnd(12)} ${
      mix
        ? ['2xx', '3xx', '4xx', '5xx']
            .map((k) => {
              const text = `${k} ${formatPercent(mix[k] ?? 0)}`;
              return k === '5xx' && (mix[k] ?? 0) > 0
                ? p.bad(text)
                : k === '4xx' && (mix[k] ?? 0) > 0
                  ? p.warn(text)
                  : text;
            })
            .join('  ')
        : p.dim('- (no access log read)')
    }`,
  );
  lines.push(
    `${'latency'.padEnd(12)} p50 ${inst.request_time_p50_seconds === null ? '-' : formatSeconds(inst.request_time_p50_seconds)}  p95 ${
      inst.request_time_p95_seconds === null ? '-' : formatSeconds(inst.request_time_p95_seconds)
    }`,
  );
  const c = inst.connections;
  lines.push(
    `${'connections'.padEnd(12)} ${c ? ['active', 'reading', 'writing', 'waiting'].map((k) => `${k} ${c[k] ?? 0}`).join('  ') : '-'}`,
  );
  lines.push(...renderTopUris(inst, p));
  const cfg = inst.config;
  lines.push(
    `${'config'.padEnd(12)} ${cfg.version ? cfg.version.slice(0, 12) : '-'}  ${
      cfg.last_test ? (cfg.last_test.ok ? p.ok('nginx -t ok') : p.bad('nginx -t FAILED')) : 'nginx -t not run'
    }  ${cfg.findings.length ? p.warn(`${cfg.findings.length} findings`) : 'no findings'}`,
  );
  for (const f of cfg.findings.slice(0, 3))
    lines.push(`${''.padEnd(12)} ${f.file ? `${f.file}:${f.line ?? ''}` : ''} ${f.severity}: ${f.message}`);
  const cert = inst.certificates[0];
  if (cert) lines.push(`${'certificate'.padEnd(12)} ${cert.path} ${cert.days_left} days left`);
  return lines;
}

/** The instance's most requested URIs lately, from its access logs, when the log format has the request. */
function renderTopUris(inst: SummaryInstance, p: Paint): string[] {
  const top = inst.top_uris;
  const head = 'top URIs'.padEnd(12);
  if (!top)
    return [
      `${head} ${p.dim(
        inst.status_mix ? '- (the access log format has no $request, $request_uri or $uri)' : '- (no access log read)',
      )}`,
    ];
  if (!top.uris.length) return [`${head} ${p.dim(`- (no requests in the last ${top.window_seconds} s)`)}`];
  const width = Math.min(60, Math.max(...top.uris.map((u) => u.uri.length)));
  const lines = [`${head} ${p.dim(`last ${top.window_seconds} s, ${top.requests} requests`)}`];
  for (const u of top.uris) {
    const uri = u.uri.length > width ? `${u.uri.slice(0, width - 1)}…` : u.uri.padEnd(width);
    const errors = `5xx ${u.errors_5xx}`;
    lines.push(
      `${''.padEnd(12)} ${uri}  ${String(u.requests).padStart(7)}  ${formatPercent(u.share).padStart(6)}  ${
        u.errors_5xx > 0 ? p.bad(errors) : errors
      }`,
    );
  }
  return lines;
}

export function sparkline(values: readonly number[]): string {
  if (!values.length) return '';
  const max = Math.max(...values);
  if (max <= 0) return SPARK[0].repeat(values.length);
  return values.map((v) => SPARK[Math.min(SPARK.length - 1, Math.floor((v / max) * (SPARK.length - 1)))]).join('');
}

/** Cuts lines to the terminal (ANSI colour codes do not count towards the width). */
function fit(lines: string[], opts: { width: number; height: number }): string[] {
  return lines.slice(0, opts.height - 1).map((l) => truncate(l, opts.width));
}

function truncate(line: string, width: number): string {
  let visible = 0;
  let out = '';
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\x1b') {
      const end = line.indexOf('m', i);
      if (end < 0) break;
      out += line.slice(i, end + 1);
      i = end;
      continue;
    }
    if (visible >= width) continue;
    out += line[i];
    visible++;
  }
  return out;
}
