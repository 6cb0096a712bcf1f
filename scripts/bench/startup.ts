/**
 * Start-up benchmark (issue 17): how long the CLI and the daemon take, side by side with a bare
 * `node -e 0` and Debian's prometheus-node-exporter and prometheus-nginx-exporter; then /metrics
 * bytes (plain and gzipped) and CPU per scrape of each daemon. Prints figures; asserts nothing.
 *
 *   npm run build:ts && node --import tsx scripts/bench/startup.ts [--runs 10] [--scrapes 200]
 *
 * Runs the compiled CLI (bin/agent.js -> dist/) as installed, executed as a shell, npx and the systemd
 * unit's wrapper run it (its launcher, /bin/sh, then Node). CPU per command is user+sys from
 * /usr/bin/time; wall time is from spawn to exit. Daemons: exec to the first HTTP 200 on /metrics and
 * to `nginx_up 1` for a real nginx (polled every 2 ms), with the daemon's CPU at those moments.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { TestNginx } from '../../core/testing/nginx.js';
import {
  AGENT_BIN,
  cpuMs,
  type Daemon,
  get,
  isolate,
  median,
  range,
  startAgent,
  startNginxExporter,
  startNodeExporter,
  tools,
  waitForMetrics,
} from './daemons.js';
import { numberArg } from './args.js';

await isolate(import.meta.filename);
const RUNS = numberArg('--runs', 10);
const SCRAPES = numberArg('--scrapes', 200);
const missing = tools().missing;
if (missing.length) {
  console.error(`missing: ${missing.join(', ')} (scripts/install-test-deps.sh installs them)`);
  process.exit(1);
}

/** One command to completion: wall ms, CPU ms (user+sys), max RSS MB, from /usr/bin/time. */
function timeCommand(argv: string[]): { wall: number; cpu: number; rss: number; code: number } {
  const dir = mkdtempSync(join(tmpdir(), 'bench-time-'));
  const out = join(dir, 'time');
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-o', out, '-f', '%U %S %M', ...argv], { stdio: 'ignore' });
  const wall = performance.now() - t0;
  const [user, sys, kb] = readFileSync(out, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
  rmSync(dir, { recursive: true, force: true });
  return { wall, cpu: (user! + sys!) * 1000, rss: kb! / 1024, code: r.status ?? -1 };
}

const rows: string[][] = [];
const row = (...cells: string[]) => rows.push(cells);
const fmt = (xs: number[]) => `${median(xs).toFixed(0)} (${range(xs)})`;

function commandRow(label: string, argv: string[], baseline?: number): number {
  const runs = Array.from({ length: RUNS }, () => timeCommand(argv));
  const failed = runs.filter((r) => r.code !== 0).length;
  const wall = runs.map((r) => r.wall);
  row(
    label,
    fmt(wall),
    fmt(runs.map((r) => r.cpu)),
    median(runs.map((r) => r.rss)).toFixed(0),
    baseline ? `${(median(wall) / baseline).toFixed(2)}x` : '1x',
    failed ? `${failed} of ${RUNS} failed` : '',
  );
  return median(wall);
}

const nginx = await TestNginx.start();
const node = process.execPath;
console.log(`# startup bench, ${new Date().toISOString()}, node ${process.version}, ${RUNS} runs each`);

// 1. The CLI.
const base = commandRow('node -e 0', [node, '-e', '0']);
// Set on some machines (this one) for every process: Node then parses the whole CA bundle before any
// user code, on every start. bin/agent.js, executed, starts under /bin/sh and execs Node without it
// (core/extra-ca-certs.ts); `node bin/agent.js` pays it. The systemd unit and the image do not set it.
const extraCa = process.env.NODE_EXTRA_CA_CERTS;
if (extraCa)
  commandRow('node -e 0, NODE_EXTRA_CA_CERTS unset', ['env', '-u', 'NODE_EXTRA_CA_CERTS', node, '-e', '0'], base);
// Executed, as a shell, npx and install.sh's wrapper run it.
commandRow('agent version', [AGENT_BIN, 'version'], base);
if (extraCa) commandRow('node bin/agent.js version (Node parses the CA file)', [node, AGENT_BIN, 'version'], base);
commandRow('agent --help', [AGENT_BIN, '--help'], base);
const running = await startAgent({ wasm: false });
await waitForMetrics(running, performance.now(), (s) => s === 200);
const port = new URL(running.metricsUrl).port;
commandRow('agent status (running agent)', [AGENT_BIN, 'status', '--api-port', port], base);
commandRow('agent plugins list (running agent)', [AGENT_BIN, 'plugins', 'list', '--api-port', port], base);
await running.stop();
printTable(['command', 'wall ms median (range)', 'CPU ms', 'max RSS MB', 'vs node -e 0', ''], rows.splice(0));

// 2. Daemons: exec to the first /metrics 200 and to nginx_up 1.
const daemonKinds: [string, () => Promise<Daemon>][] = [
  ['agent (shipped Wasm plugins)', () => startAgent({ wasm: true })],
  ['agent (no Wasm)', () => startAgent({ wasm: false })],
  ['node_exporter', () => startNodeExporter()],
  ['nginx exporter', () => startNginxExporter(nginx.url('/nginx_status'))],
];
const startKinds = [...daemonKinds];
if (extraCa)
  startKinds.splice(2, 0, [
    'agent (no Wasm), as node bin/agent.js: Node parses NODE_EXTRA_CA_CERTS',
    () => startAgent({ wasm: false, viaNode: true }),
  ]);
for (const [label, start] of startKinds) {
  const first: number[] = [];
  const up: number[] = [];
  const cpuFirst: number[] = [];
  const cpuUp: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    const d = await start();
    first.push(await waitForMetrics(d, t0, (s) => s === 200));
    cpuFirst.push(cpuMs(d.pid));
    if (d.nginxUp) {
      const re = d.nginxUp;
      up.push(await waitForMetrics(d, t0, (s, text) => s === 200 && re.test(text)));
      cpuUp.push(cpuMs(d.pid));
    }
    await d.stop();
  }
  row(label, fmt(first), fmt(cpuFirst), up.length ? fmt(up) : '-', up.length ? fmt(cpuUp) : '-');
}
printTable(
  ['daemon', 'exec to first /metrics 200, ms', 'its CPU then, ms', 'exec to nginx_up 1, ms', 'its CPU then, ms'],
  rows.splice(0),
);

// 3. /metrics size and CPU per scrape.
for (const [label, start] of daemonKinds) {
  const d = await start();
  const t0 = performance.now();
  if (d.nginxUp) {
    const re = d.nginxUp;
    await waitForMetrics(d, t0, (s, text) => s === 200 && re.test(text));
  } else await waitForMetrics(d, t0, (s) => s === 200);
  // Let start-up work (first collections, Wasm loads) settle so it is not counted as scrape cost.
  await new Promise((r) => setTimeout(r, 3000));
  const plain = await get(d.metricsUrl);
  const series = plain.text.split('\n').filter((l) => l && !l.startsWith('#')).length;
  const idleCpu0 = cpuMs(d.pid);
  await new Promise((r) => setTimeout(r, 2000));
  const idlePerMs = (cpuMs(d.pid) - idleCpu0) / 2000;
  const perScrape = async (gzip: boolean) => {
    const c0 = cpuMs(d.pid);
    const w0 = performance.now();
    let bytes = 0;
    let encoding = '';
    for (let i = 0; i < SCRAPES; i++) {
      const r = await get(d.metricsUrl, { gzip });
      bytes = r.bytes;
      encoding = r.encoding;
    }
    const wall = performance.now() - w0;
    // The daemon's own background work during the scrapes is taken out at its idle rate.
    return { cpu: Math.max(0, cpuMs(d.pid) - c0 - idlePerMs * wall) / SCRAPES, bytes, encoding };
  };
  const p = await perScrape(false);
  const g = await perScrape(true);
  row(
    label,
    String(series),
    String(p.bytes),
    `${g.bytes} (${g.encoding})`,
    String(gzipSync(plain.text).length),
    p.cpu.toFixed(2),
    g.cpu.toFixed(2),
  );
  await d.stop();
}
printTable(
  [
    'daemon',
    'series',
    '/metrics bytes',
    'bytes with Accept-Encoding: gzip',
    'gzip -6 of the text',
    'CPU ms per scrape, plain',
    'CPU ms per scrape, gzip asked',
  ],
  rows.splice(0),
);
await nginx.stop();

function printTable(head: string[], body: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (c ?? '').padEnd(widths[i]!)).join(' | ')} |`;
  console.log(`\n${line(head)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of body) console.log(line(r));
}
