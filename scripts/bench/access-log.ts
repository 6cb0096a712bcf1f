/**
 * Access log benchmark: the agent's full path (chunked reads -> log_format scan -> metric fold) on a
 * generated combined log with `$request_time` appended, then GoAccess on the same file, in one run.
 * Run: node --import tsx scripts/bench/access-log.ts [--lines 1000000] [--runs 3] [--file /tmp/x.log] [--no-goaccess]
 *      node --import tsx scripts/bench/access-log.ts --live 10 [--connections 32]
 *
 * `--live N`: a real nginx (TestNginx, its `timed` format, unbuffered access_log) under wrk for N
 * seconds while this process follows the log as the plugin does (1 s poll), then reports wrk's
 * requests/s, this process's CPU over the run (as a share of one core) and whether every logged line
 * was counted.
 *
 * The agent side runs on one core (Node's main thread; reads are async but there is nothing else to
 * overlap with). Figures: wall time, lines/s and MB/s, and CPU time of this process. GoAccess gets
 * the same file with a format that includes the request time (%T) and writes a JSON report.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccessLogFold } from '../../plugins/nginx-logs/access-fold.js';
import { DEFAULT_LATENCY_BOUNDS } from '../../plugins/nginx-logs/histogram.js';
import { compileLogFormat, COMBINED_FORMAT } from '../../plugins/nginx-logs/log-format.js';
import { TestNginx, TIMED_FORMAT } from '../../core/testing/nginx.js';
import { LogTailer } from '../../plugins/nginx-logs/tailer.js';
import { TOP_URIS_CAPACITY, TOP_URIS_WINDOW_MS } from '../../plugins/nginx-logs/top-uris.js';

const argv = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : def;
};
const LINES = Number(arg('lines', '1000000'));
const RUNS = Number(arg('runs', '3'));
const FILE = arg('file', join(tmpdir(), `access-bench-${LINES}.log`));
const FORMAT = `${COMBINED_FORMAT} $request_time`;
/** The fold counts top URIs as the plugin does. */
const TOP_URIS = { capacity: TOP_URIS_CAPACITY, windowMs: TOP_URIS_WINDOW_MS };

/** A deterministic pseudo-random generator so every run sees the same file. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(r: () => number, weighted: [T, number][]): T {
  let x = r() * weighted.reduce((a, [, w]) => a + w, 0);
  for (const [v, w] of weighted) if ((x -= w) < 0) return v;
  return weighted[weighted.length - 1][0];
}

function generate(file: string, n: number): void {
  const r = rng(42);
  const methods: [string, number][] = [
    ['GET', 80],
    ['POST', 12],
    ['HEAD', 3],
    ['PUT', 2],
    ['DELETE', 1.5],
    ['OPTIONS', 1],
    ['PATCH', 0.5],
  ];
  const statuses: [number, number][] = [
    [200, 70],
    [304, 8],
    [301, 3],
    [302, 3],
    [201, 3],
    [204, 2],
    [404, 6],
    [400, 1],
    [403, 1],
    [499, 0.5],
    [500, 1],
    [502, 0.7],
    [503, 0.5],
    [504, 0.3],
  ];
  const paths = [
    '/',
    '/index.html',
    '/api/v1/users',
    '/api/v1/orders?page=2&size=50',
    '/static/app.3f9a1c.js',
    '/static/style.css',
    '/images/logo.png',
    '/login',
    '/search?q=nginx+agent',
    '/health',
    '/favicon.ico',
    '/blog/2026/11/how-we-monitor-nginx',
  ];
  const uas = [
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15',
    'Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0',
    'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148',
    'curl/8.5.0',
    'Go-http-client/1.1',
    'Googlebot/2.1 (+http://www.google.com/bot.html)',
  ];
  const refs = ['-', '-', 'https://www.example.com/', 'https://www.google.com/', 'https://example.com/blog/'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const parts: string[] = [];
  const t0 = Date.UTC(2026, 10, 24, 0, 0, 0);
  const pad = (v: number) => String(v).padStart(2, '0');
  for (let i = 0; i < n; i++) {
    const d = new Date(t0 + Math.floor(i / 20) * 1000);
    const time = `${pad(d.getUTCDate())}/${months[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
    const ip = `${10 + Math.floor(r() * 200)}.${Math.floor(r() * 256)}.${Math.floor(r() * 256)}.${1 + Math.floor(r() * 254)}`;
    const status = pick(r, statuses);
    const bytes = status === 304 || status === 204 ? 0 : Math.floor(r() * 50_000);
    const rt = (r() < 0.9 ? r() * 0.05 : r() * 2).toFixed(3);
    const user = r() < 0.05 ? 'alice' : '-';
    parts.push(
      `${ip} - ${user} [${time}] "${pick(r, methods)} ${paths[Math.floor(r() * paths.length)]} HTTP/1.1" ${status} ${bytes} "${refs[Math.floor(r() * refs.length)]}" "${uas[Math.floor(r() * uas.length)]}" ${rt}\n`,
    );
    if (parts.length === 10_000) {
      writeFileSync(file, parts.join(''), { flag: i < 10_000 ? 'w' : 'a' });
      parts.length = 0;
    }
  }
  if (parts.length) writeFileSync(file, parts.join(''), { flag: n <= 10_000 ? 'w' : 'a' });
}

async function agentRun(): Promise<{ wallMs: number; cpuMs: number; fold: AccessLogFold }> {
  const fold = new AccessLogFold([compileLogFormat(FORMAT)], { bounds: DEFAULT_LATENCY_BOUNDS, topUris: TOP_URIS });
  const tailer = new LogTailer({
    path: FILE,
    startAt: 'beginning',
    onText: (t) => fold.consume(t),
    maxBytesPerPoll: Number.MAX_SAFE_INTEGER,
  });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await tailer.poll();
  fold.metrics();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await tailer.close();
  return { wallMs, cpuMs: (cpu.user + cpu.system) / 1000, fold };
}

function goaccessRun(): { wallMs: number; cpuMs: number; ok: boolean; note: string } {
  const out = join(tmpdir(), `goaccess-bench-${process.pid}.json`);
  const args = [
    FILE,
    '--log-format=%h %^[%d:%t %^] "%r" %s %b "%R" "%u" %T',
    '--date-format=%d/%b/%Y',
    '--time-format=%T',
    '--no-global-config',
    '-o',
    out,
  ];
  const t0 = performance.now();
  const r = spawnSync('goaccess', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const wallMs = performance.now() - t0;
  // GoAccess is single-threaded by default (--jobs 1): its CPU time is close to its wall time; the
  // child's rusage is not exposed by spawnSync, so wall time stands for it.
  let note = '';
  if (r.status === 0 && existsSync(out)) {
    try {
      const j = JSON.parse(spawnSync('cat', [out], { encoding: 'utf8', maxBuffer: 512 * 1024 * 1024 }).stdout) as {
        general?: { total_requests?: number; valid_requests?: number };
      };
      note = `GoAccess counted ${j.general?.valid_requests ?? j.general?.total_requests} valid requests`;
    } catch {
      note = 'GoAccess JSON unreadable';
    }
  } else note = `goaccess exited ${r.status}: ${(r.stderr || '').trim().slice(0, 300)}`;
  spawnSync('rm', ['-f', out]);
  return { wallMs, cpuMs: wallMs, ok: r.status === 0, note };
}

const fmt = (v: number) => Math.round(v).toLocaleString('en-US');

async function main(): Promise<void> {
  if (!existsSync(FILE) || statSync(FILE).size === 0) {
    const t = performance.now();
    generate(FILE, LINES);
    console.log(`generated ${FILE} in ${fmt(performance.now() - t)} ms`);
  }
  const size = statSync(FILE).size;
  console.log(`file: ${FILE}, ${fmt(LINES)} lines, ${(size / 1e6).toFixed(1)} MB, format: combined + $request_time`);
  console.log(`node ${process.version}, one core for the agent path`);

  let best = Infinity;
  let bestCpu = 0;
  for (let i = 0; i < RUNS; i++) {
    const r = await agentRun();
    const resp = r.fold.responses.reduce((a, b) => a + b, 0);
    if (r.fold.lines !== LINES || r.fold.malformed !== 0 || resp !== LINES)
      throw new Error(
        `agent counted ${r.fold.lines} lines, ${r.fold.malformed} malformed, ${resp} responses (want ${LINES}, 0, ${LINES})`,
      );
    console.log(
      `agent run ${i + 1}: ${fmt(r.wallMs)} ms wall, ${fmt(r.cpuMs)} ms CPU, ${fmt(LINES / (r.wallMs / 1000))} lines/s, ${(size / 1e6 / (r.wallMs / 1000)).toFixed(1)} MB/s`,
    );
    if (r.wallMs < best) {
      best = r.wallMs;
      bestCpu = r.cpuMs;
    }
  }
  const agentLps = LINES / (best / 1000);
  console.log(
    `agent best: ${fmt(agentLps)} lines/s, ${(size / 1e6 / (best / 1000)).toFixed(1)} MB/s (${fmt(bestCpu)} ms CPU)`,
  );

  if (argv.includes('--no-goaccess')) return;
  const g = goaccessRun();
  if (!g.ok) {
    console.log(`goaccess: ${g.note}`);
    return;
  }
  const gLps = LINES / (g.wallMs / 1000);
  console.log(
    `goaccess: ${fmt(g.wallMs)} ms wall, ${fmt(gLps)} lines/s, ${(size / 1e6 / (g.wallMs / 1000)).toFixed(1)} MB/s (${g.note})`,
  );
  console.log(`ratio agent/goaccess: ${(agentLps / gLps).toFixed(1)}x`);
}

async function live(seconds: number): Promise<void> {
  const conns = Number(arg('connections', '32'));
  const nginx = await TestNginx.start({ workers: 1 });
  try {
    const fold = new AccessLogFold([compileLogFormat(TIMED_FORMAT)], {
      bounds: DEFAULT_LATENCY_BOUNDS,
      topUris: TOP_URIS,
    });
    const tailer = new LogTailer({ path: nginx.accessLog, startAt: 'end', onText: (t) => fold.consume(t) });
    await tailer.poll();
    const timer = setInterval(() => void tailer.poll(), 1000);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const out = await new Promise<string>((resolve, reject) => {
      const w = spawn('wrk', ['-t1', `-c${conns}`, `-d${seconds}s`, nginx.url('/s/200')]);
      let text = '';
      w.stdout.on('data', (d) => (text += d));
      w.on('error', reject);
      w.on('close', () => resolve(text));
    });
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    clearInterval(timer);
    // The last second of lines: one more poll, then compare with the file.
    await new Promise((r) => setTimeout(r, 200));
    await tailer.poll();
    const logged = Number(spawnSync('wc', ['-l', nginx.accessLog], { encoding: 'utf8' }).stdout.trim().split(' ')[0]);
    await tailer.close();
    const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)?.[1];
    const cpuMs = (cpu.user + cpu.system) / 1000;
    console.log(`live: wrk -t1 -c${conns} ${seconds}s against one nginx worker: ${rps} requests/s`);
    console.log(
      `live: agent CPU ${fmt(cpuMs)} ms over ${fmt(wallMs)} ms = ${((100 * cpuMs) / wallMs).toFixed(1)}% of one core; counted ${fmt(fold.lines)} of ${fmt(logged)} logged lines, ${fold.malformed} malformed`,
    );
  } finally {
    await nginx.stop();
  }
}

const liveSeconds = argv.includes('--live') ? Number(arg('live', '10')) : 0;
if (liveSeconds > 0) await live(liveSeconds);
else await main();
