/**
 * Footprint benchmark (issue 16): the agent against the three Debian daemons it replaces
 * (prometheus-node-exporter for the host, prometheus-nginx-exporter for stub_status, mtail counting
 * access-log lines), all started together against one real nginx, each scraped like Prometheus would
 * (every 15 s, gzip asked). Idle, then under load from wrk; prints CPU (% of one core, from
 * /proc/PID/stat), RSS at the end of each phase and the peak (VmRSS/VmHWM from /proc/PID/status),
 * the ratios against the three together, and the access-log lines the agent and mtail counted
 * against the lines on disk. Prints figures; asserts nothing.
 *
 *   npm run build:ts && node --import tsx scripts/bench/footprint.ts            # 5 min idle + 3 min load
 *   node --import tsx scripts/bench/footprint.ts --short                        # CI: 40 s + 30 s, scrape every 5 s
 *   options: --idle SECONDS --load SECONDS --scrape SECONDS --rate REQ_PER_S
 *            --agent-node-args "--max-semi-space-size=2 ..." (V8 flags for the agents, to compare)
 *
 * Two agents run: with the shipped Wasm plugins (the checkout's wasm-plugins folder) and without Wasm.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestNginx } from '../../core/testing/nginx.js';
import {
  cpuMs,
  type Daemon,
  get,
  isolate,
  memoryMb,
  startAgent,
  startMtail,
  startNginxExporter,
  startNodeExporter,
  tools,
  waitForMetrics,
} from './daemons.js';
import { numberArg, stringArg } from './args.js';

await isolate(import.meta.filename);
const short = process.argv.includes('--short');
const IDLE_S = numberArg('--idle', short ? 40 : 300);
const LOAD_S = numberArg('--load', short ? 30 : 180);
const SCRAPE_S = numberArg('--scrape', short ? 5 : 15);
const RATE = numberArg('--rate', 2000);
const agentNodeArgs = (stringArg('--agent-node-args') ?? '').split(' ').filter(Boolean);
const missing = [...tools().missing, ...(spawnOk('wrk') ? [] : ['wrk'])];
if (missing.length) {
  console.error(`missing: ${missing.join(', ')} (scripts/install-test-deps.sh installs them)`);
  process.exit(1);
}

function spawnOk(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}
let wrkSummary = '';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nginx = await TestNginx.start({ workers: 1 });
const started = new Date();
console.log(
  `# footprint bench, ${started.toISOString()}, node ${process.version}, idle ${IDLE_S} s, load ${LOAD_S} s at ~${RATE} req/s, scrape every ${SCRAPE_S} s, load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}${agentNodeArgs.length ? `, agent node args: ${agentNodeArgs.join(' ')}` : ''}`,
);

const agent = await startAgent({ wasm: true, nodeArgs: agentNodeArgs });
const agentNoWasm = await startAgent({ wasm: false, nodeArgs: agentNodeArgs });
const nodeExporter = await startNodeExporter();
const nginxExporter = await startNginxExporter(nginx.url('/nginx_status'));
const mtail = await startMtail(nginx.accessLog);
const daemons = [agent, agentNoWasm, nodeExporter, nginxExporter, mtail];
const trio = [nodeExporter, nginxExporter, mtail];
for (const d of daemons) {
  if (Number.isNaN(await waitForMetrics(d, performance.now(), (s) => s === 200, 30_000, 20)))
    throw new Error(`${d.name} did not answer on ${d.metricsUrl}`);
}
await waitForMetrics(agent, performance.now(), (s, t) => s === 200 && agent.nginxUp!.test(t), 30_000, 20);

// Prometheus-like scrapes and a once-a-second RSS sample of each daemon, for the whole run.
const rssSamples = new Map<Daemon, number[]>(daemons.map((d) => [d, []]));
const scrapeErrors = new Map<Daemon, number>(daemons.map((d) => [d, 0]));
const scraper = setInterval(() => {
  for (const d of daemons) get(d.metricsUrl, { gzip: true }).catch(() => scrapeErrors.set(d, scrapeErrors.get(d)! + 1));
}, SCRAPE_S * 1000);
const sampler = setInterval(() => {
  for (const d of daemons) rssSamples.get(d)!.push(memoryMb(d.pid).rss);
}, 1000);

interface Phase {
  cpuPct: Map<Daemon, number>;
  rssEnd: Map<Daemon, number>;
  rssMax: Map<Daemon, number>;
}
async function phase(seconds: number, during?: () => Promise<void>): Promise<Phase> {
  for (const d of daemons) rssSamples.set(d, []);
  const c0 = new Map(daemons.map((d) => [d, cpuMs(d.pid)]));
  const t0 = performance.now();
  await Promise.all([sleep(seconds * 1000), during?.()]);
  const wall = performance.now() - t0;
  return {
    cpuPct: new Map(daemons.map((d) => [d, ((cpuMs(d.pid) - c0.get(d)!) / wall) * 100])),
    rssEnd: new Map(daemons.map((d) => [d, memoryMb(d.pid).rss])),
    rssMax: new Map(daemons.map((d) => [d, Math.max(...rssSamples.get(d)!, memoryMb(d.pid).rss)])),
  };
}

// The agents' first minutes include start-up work (first loads, JIT, heap growth); a short settle.
await sleep((short ? 5 : 20) * 1000);
const idle = await phase(IDLE_S);
const load = await phase(LOAD_S, () => runWrk(LOAD_S));
// Let the followers catch up with the last lines, then count.
await sleep(Math.max(3, SCRAPE_S) * 1000);
clearInterval(scraper);
clearInterval(sampler);
const linesOnDisk = countLines(readFileSync(nginx.accessLog));
const counted = async (d: Daemon, re: RegExp) => {
  const text = (await get(d.metricsUrl)).text;
  return [...text.matchAll(re)].reduce((sum, m) => sum + Number(m[1]), 0);
};
const agentLines = await counted(agent, /^nginx_log_lines_total(?:\{[^}]*\})? (\d+(?:\.\d+)?(?:e\+\d+)?)$/gm);
const agentNoWasmLines = await counted(
  agentNoWasm,
  /^nginx_log_lines_total(?:\{[^}]*\})? (\d+(?:\.\d+)?(?:e\+\d+)?)$/gm,
);
const mtailLines = await counted(mtail, /^access_lines_total(?:\{[^}]*\})? (\d+(?:\.\d+)?(?:e\+\d+)?)$/gm);
const peak = new Map(daemons.map((d) => [d, memoryMb(d.pid).peak]));
for (const d of daemons) await d.stop();
await nginx.stop();

// The table.
const sum = (m: Map<Daemon, number>) => trio.reduce((a, d) => a + m.get(d)!, 0);
const cols = [agent, agentNoWasm, nodeExporter, nginxExporter, mtail];
const head = ['', ...cols.map((d) => d.name), 'the three together', 'agent / three', 'agent (no Wasm) / three'];
const line = (label: string, m: Map<Daemon, number>, digits: number, extra: (d: Daemon) => string = () => '') => {
  const three = sum(m);
  return [
    label,
    ...cols.map((d) => `${m.get(d)!.toFixed(digits)}${extra(d)}`),
    three.toFixed(digits),
    `${(m.get(agent)! / three).toFixed(2)}x`,
    `${(m.get(agentNoWasm)! / three).toFixed(2)}x`,
  ];
};
const rows = [
  line('idle CPU, % of one core', idle.cpuPct, 3),
  line('idle RSS at the end, MB', idle.rssEnd, 1),
  line('peak RSS in the idle phase (1 s samples), MB', idle.rssMax, 1),
  line(`CPU at ~${RATE} req/s, % of one core`, load.cpuPct, 2),
  line(`RSS at the end of the load, MB`, load.rssEnd, 1),
  line('peak RSS of the whole run (VmHWM), MB', peak, 1),
];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
console.log(`\n${fmt(head)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const r of rows) console.log(fmt(r));
const steady = (d: Daemon) => idle.rssEnd.get(d)!;
console.log(
  `\npeak/steady RSS: agent ${(peak.get(agent)! / steady(agent)).toFixed(2)}, agent (no Wasm) ${(peak.get(agentNoWasm)! / steady(agentNoWasm)).toFixed(2)} (goal <= 1.20)`,
);
console.log(
  `access-log lines: on disk ${linesOnDisk}, agent ${agentLines}, agent (no Wasm) ${agentNoWasmLines}, mtail ${mtailLines}`,
);
console.log(
  `load: ${wrkSummary}; scrape errors: ${daemons.map((d) => `${d.name} ${scrapeErrors.get(d)}`).join(', ')}; wall ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s`,
);

/** wrk at about RATE requests/s: N connections, each waiting `delay` ms between requests (wrk has no rate flag). */
async function runWrk(seconds: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-wrk-'));
  const connections = 8;
  const delayMs = Math.max(0, (connections * 1000) / RATE - 0.3);
  writeFileSync(join(dir, 'rate.lua'), `function delay()\n  return ${delayMs.toFixed(2)}\nend\n`);
  const out = await new Promise<string>((resolve) => {
    const child = spawn(
      'wrk',
      ['-t', '1', '-c', String(connections), '-d', `${seconds}s`, '-s', join(dir, 'rate.lua'), nginx.url('/ok')],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d));
    child.stderr.on('data', (d: Buffer) => (text += d));
    child.on('exit', () => resolve(text));
  });
  rmSync(dir, { recursive: true, force: true });
  const requests = /(\d+) requests in/.exec(out)?.[1];
  const perSec = /Requests\/sec:\s+([\d.]+)/.exec(out)?.[1];
  wrkSummary = `wrk ${requests ?? '?'} requests, ${perSec ?? '?'} req/s`;
}

function countLines(buf: Buffer): number {
  let n = 0;
  for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) n++;
  return n;
}
