/**
 * Real Prometheus-side tools for the packaging tests and scripts/e2e.sh: promtool, a Prometheus server
 * and nginx-prometheus-exporter (Debian packages `prometheus` and `prometheus-nginx-exporter`), each
 * on 127.0.0.1 and a free port, stopped by the caller.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from '../../core/testing/nginx.js';
import { needTool } from '../../core/testing/tools.js';

export const PROMTOOL = process.env.PROMTOOL ?? '/usr/bin/promtool';
export const PROMETHEUS = process.env.PROMETHEUS ?? '/usr/bin/prometheus';
export const NGINX_EXPORTER = process.env.NGINX_EXPORTER ?? '/usr/bin/prometheus-nginx-exporter';

/** `skip` options of tests that run promtool, a Prometheus server or the exporter (core/testing/tools.ts). */
export const needPromtool = (): false | string => needTool(PROMTOOL, 'prometheus');
export const needPrometheus = (): false | string => needTool(PROMETHEUS, 'prometheus');
export const needNginxExporter = (): false | string => needTool(NGINX_EXPORTER, 'prometheus-nginx-exporter');

/** `promtool check metrics` on an exposition: exit code and its complaints, one per line. */
export function promtoolCheck(text: string): { code: number | null; problems: string[] } {
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw new Error(`cannot run ${PROMTOOL}: ${r.error.message} (Debian package "prometheus")`);
  const problems = `${r.stdout}${r.stderr}`
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return { code: r.status, problems };
}

/**
 * promtool (2.42 here) lints only the Prometheus text format. An OpenMetrics exposition is checked in
 * two steps: its OpenMetrics structure here (`openMetricsProblems`), then promtool on the same
 * families spelled the text way (a counter family `x` with samples `x_total` becomes family
 * `x_total`, `unknown` becomes `untyped`, `# EOF` goes): names, units, HELP and TYPE get the
 * same lint as the text format.
 */
export function promtoolCheckOpenMetrics(text: string): { code: number | null; problems: string[] } {
  const structural = openMetricsProblems(text);
  const counters = new Set([...text.matchAll(/^# TYPE (\S+) counter$/gm)].map((m) => m[1]));
  const asText = text
    .split('\n')
    .filter((l) => l !== '# EOF')
    .map((l) => {
      const m = /^# (TYPE|HELP) (\S+) (.*)$/.exec(l);
      if (!m) return l;
      // HELP escapes `"` in OpenMetrics, not in the text format.
      const rest = m[1] === 'HELP' ? m[3].replace(/\\(.)/g, (e, c) => (c === '"' ? '"' : e)) : m[3];
      const name = counters.has(m[2]) ? `${m[2]}_total` : m[2];
      return `# ${m[1]} ${name} ${m[1] === 'TYPE' && rest === 'unknown' ? 'untyped' : rest}`;
    })
    .join('\n');
  const lint = promtoolCheck(asText);
  return { code: structural.length ? 1 : lint.code, problems: [...structural, ...lint.problems] };
}

const OM_SUFFIXES: Record<string, string[]> = {
  counter: ['_total', '_created'],
  gauge: [''],
  unknown: [''],
  histogram: ['_bucket', '_count', '_sum', '_created'],
};

/** What breaks the OpenMetrics 1.0 text rules this project relies on ([] when none). */
export function openMetricsProblems(text: string): string[] {
  const problems: string[] = [];
  const lines = text.split('\n');
  if (lines.pop() !== '' || lines.at(-1) !== '# EOF') problems.push('the exposition does not end with "# EOF\\n"');
  else lines.pop();
  const seen = new Set<string>();
  let family = '';
  let type = '';
  lines.forEach((l, i) => {
    const at = `line ${i + 1}`;
    if (l === '') return problems.push(`${at}: empty line`);
    const t = /^# TYPE (\S+) (\S+)$/.exec(l);
    if (t) {
      if (seen.has(t[1])) problems.push(`${at}: family ${t[1]} appears twice`);
      seen.add(t[1]);
      [family, type] = [t[1], t[2]];
      if (!OM_SUFFIXES[type]) problems.push(`${at}: type ${type} not used by this agent`);
      if (type === 'counter' && family.endsWith('_total'))
        problems.push(`${at}: counter family ${family} ends in _total`);
      return;
    }
    const h = /^# (HELP|UNIT) (\S+) /.exec(l);
    if (h) {
      if (h[2] !== family) problems.push(`${at}: ${h[1]} of ${h[2]} outside its family`);
      return;
    }
    if (l.startsWith('#')) return problems.push(`${at}: unknown comment line`);
    const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)?.[0] ?? '';
    if (!(OM_SUFFIXES[type] ?? []).some((suffix) => name === `${family}${suffix}`))
      problems.push(`${at}: sample ${name} does not belong to the ${type} family ${family}`);
  });
  return problems;
}

/** Family name -> TYPE from a text exposition. */
export function familyTypes(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1], m[2]);
  return out;
}

export interface Proc {
  url: string;
  child: ChildProcess;
  output: () => string;
  stop(): Promise<void>;
}

function spawnProc(bin: string, args: string[], url: string, cleanup?: () => void): Proc {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  child.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  process.once('exit', () => child.kill('SIGKILL'));
  return {
    url,
    child,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      cleanup?.();
    },
  };
}

async function answers(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok;
  } catch {
    return false;
  }
}

/** Debian's nginx-prometheus-exporter scraping `scrapeUri` (a stub_status URL). */
export async function startNginxExporter(scrapeUri: string): Promise<Proc> {
  const port = await freePort();
  const p = spawnProc(
    NGINX_EXPORTER,
    ['-nginx.scrape-uri', scrapeUri, '-web.listen-address', `127.0.0.1:${port}`],
    `http://127.0.0.1:${port}`,
  );
  await waitFor(() => answers(`${p.url}/metrics`), `${NGINX_EXPORTER} to answer`, 15_000);
  return p;
}

/** A Prometheus server scraping `targets` (host:port) every second into a temporary TSDB. */
export async function startPrometheus(
  targets: string[],
  job = 'nginx-agent',
): Promise<Proc & { query(q: string): Promise<PromSample[]> }> {
  const dir = mkdtempSync(join(tmpdir(), 'prom-'));
  const port = await freePort();
  const cfg = join(dir, 'prometheus.yml');
  writeFileSync(
    cfg,
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      `  - job_name: ${job}`,
      '    static_configs:',
      `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`,
      '',
    ].join('\n'),
  );
  const p = spawnProc(
    PROMETHEUS,
    [
      `--config.file=${cfg}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    `http://127.0.0.1:${port}`,
    () => rmSync(dir, { recursive: true, force: true }),
  );
  await waitFor(
    () => answers(`${p.url}/-/ready`),
    `${PROMETHEUS} to be ready (output: ${p.output().slice(-500)})`,
    30_000,
  );
  return {
    ...p,
    async query(q: string) {
      const res = await fetch(`${p.url}/api/v1/query?query=${encodeURIComponent(q)}`, {
        signal: AbortSignal.timeout(5000),
      });
      const body = (await res.json()) as { status: string; error?: string; data?: { result: PromSample[] } };
      if (body.status !== 'success') throw new Error(`Prometheus query ${q} failed: ${body.error}`);
      return body.data!.result;
    },
  };
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}
