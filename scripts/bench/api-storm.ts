/**
 * `/health` latency and agent RSS while 50 scrapers hammer `/metrics` (issue 10: before the cached
 * exposition, /health p99 reached 3.3 s and RSS doubled).
 *
 * A real nginx with some traffic and the agent from source (default plugins, so `/metrics` carries the
 * nginx and host series), then for 20 s: 50 scrapers, each a loop of GET /metrics on keep-alive
 * connections (run in a child process so their work does not disturb the /health timings), and one
 * /health probe every 20 ms from here. RSS of the agent is sampled from /proc every 200 ms.
 *
 * `--nice N` runs the scrapers at that nice level: on a small machine they otherwise take the CPU the
 * agent and the probe need, which measures the machine more than the agent.
 *
 * Run: node --import tsx scripts/bench/api-storm.ts [--seconds 20] [--scrapers 50] [--gzip] [--nice 10]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startAgent } from '../../core/testing/agent-process.js';
import { TestNginx } from '../../core/testing/nginx.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}
const SECONDS = arg('--seconds', 20);
const SCRAPERS = arg('--scrapers', 50);
const GZIP = process.argv.includes('--gzip');
const NICE = arg('--nice', 0);

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

function pct(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];
}

async function probeHealth(url: string, until: number): Promise<{ ms: number[]; failures: number }> {
  const ms: number[] = [];
  let failures = 0;
  while (Date.now() < until) {
    const t = performance.now();
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5000) });
      await res.arrayBuffer();
      if (res.status >= 500 && res.status !== 503) failures++;
      ms.push(performance.now() - t);
    } catch {
      failures++;
    }
    await sleep(20);
  }
  return { ms, failures };
}

/** The scrapers, in their own process. Prints one JSON line: scrapes, errors, bytes. */
const SCRAPER_SCRIPT = `
const [url, n, seconds, gzip] = process.argv.slice(1);
const until = Date.now() + Number(seconds) * 1000;
let scrapes = 0, errors = 0, bytes = 0;
const headers = gzip === '1' ? { 'Accept-Encoding': 'gzip' } : { 'Accept-Encoding': 'identity' };
await Promise.all(Array.from({ length: Number(n) }, async () => {
  while (Date.now() < until) {
    try {
      const res = await fetch(url + '/metrics', { headers, signal: AbortSignal.timeout(5000) });
      const body = await res.arrayBuffer();
      if (res.status === 200) { scrapes++; bytes += body.byteLength; } else errors++;
    } catch { errors++; }
  }
}));
console.log(JSON.stringify({ scrapes, errors, bytes }));
`;

const nginx = await TestNginx.start({ workers: 2 });
const dir = await mkdtemp(join(tmpdir(), 'api-storm-'));
const file = join(dir, 'agent.yaml');
await writeFile(
  file,
  [
    'api:',
    '  port: 0',
    'nginx_status:',
    `  stub_status_url: ${nginx.url('/nginx_status')}`,
    'nginx_logs:',
    '  enabled: false',
    'wasm:',
    '  enabled: false',
    '',
  ].join('\n'),
);
const agent = await startAgent(['--config', file]);
try {
  const pid = agent.child.pid as number;
  await nginx.get('/', 20);
  // Two collection rounds so /metrics is full.
  await sleep(6000);
  const sample = await fetch(`${agent.url}/metrics`, { headers: { 'Accept-Encoding': 'identity' } });
  const text = await sample.text();
  const series = text.split('\n').filter((l) => l && !l.startsWith('#')).length;

  const idle = await probeHealth(agent.url, Date.now() + 3000);
  const rssBefore = rssMb(pid);
  let rssMax = rssBefore;
  const rssTimer = setInterval(() => {
    rssMax = Math.max(rssMax, rssMb(pid));
  }, 200);
  const cpu0 = readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ');
  const scraperArgs = ['--input-type=module', '-e', SCRAPER_SCRIPT, agent.url, String(SCRAPERS), String(SECONDS)];
  scraperArgs.push(GZIP ? '1' : '0');
  const scrapers = NICE
    ? spawn('nice', ['-n', String(NICE), process.execPath, ...scraperArgs], { stdio: ['ignore', 'pipe', 'inherit'] })
    : spawn(process.execPath, scraperArgs, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  scrapers.stdout.on('data', (d) => (out += d));
  const scrapersDone = new Promise<void>((r) => scrapers.on('exit', () => r()));
  await sleep(500); // let the storm start
  const storm = await probeHealth(agent.url, Date.now() + SECONDS * 1000 - 1000);
  await scrapersDone;
  clearInterval(rssTimer);
  const cpu1 = readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ');
  const ticks = (s: string[]) => Number(s[13]) + Number(s[14]);
  const cpuSeconds = (ticks(cpu1) - ticks(cpu0)) / 100;
  const rssAfter = rssMb(pid);
  const result = JSON.parse(out || '{}') as { scrapes: number; errors: number; bytes: number };

  const fmt = (r: { ms: number[]; failures: number }) => {
    const s = [...r.ms].sort((a, b) => a - b);
    return `p50 ${pct(s, 0.5).toFixed(1)} ms, p99 ${pct(s, 0.99).toFixed(1)} ms, max ${s[s.length - 1].toFixed(1)} ms (${s.length} probes, ${r.failures} failed)`;
  };
  console.log(`/metrics: ${series} series, ${text.length} bytes plain`);
  console.log(`/health idle:   ${fmt(idle)}`);
  const how = [GZIP ? 'gzip' : '', NICE ? `scrapers at nice ${NICE}` : ''].filter(Boolean).join(', ');
  console.log(`/health during ${SCRAPERS} scrapers for ${SECONDS} s${how ? ` (${how})` : ''}: ${fmt(storm)}`);
  console.log(
    `scrapes: ${result.scrapes} (${(result.scrapes / SECONDS).toFixed(0)}/s), ${result.errors} errors or timeouts, ` +
      `${(result.bytes / 1e6).toFixed(1)} MB of exposition (decoded); agent CPU ${cpuSeconds.toFixed(1)} s in ${SECONDS} s`,
  );
  console.log(
    `machine: load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} (1/5/15 min) on ${availableParallelism()} CPUs`,
  );
  console.log(
    `agent RSS: ${rssBefore.toFixed(0)} MB before, ${rssMax.toFixed(0)} MB max during, ${rssAfter.toFixed(0)} MB after`,
  );
} finally {
  await agent.stop();
  await nginx.stop();
}
