/**
 * Where an agent's CPU goes (issue 16): starts one agent (compiled CLI, `npm run build:ts` first)
 * against a real nginx in a PID namespace of its own, scrapes `/metrics` like Prometheus (gzip),
 * optionally under wrk load, with `--cpu-prof`, then prints the process's CPU per thread (from
 * /proc/PID/task), its context switches (wake-ups), and the profile's self time by function and by
 * file, counted only after the settle time (start-up left out). Prints figures; asserts nothing.
 *
 *   node --import tsx scripts/bench/agent-profile.ts [--no-wasm] [--seconds 90] [--settle 20]
 *        [--scrape 15] [--rate 2000 (wrk load for the measured part)] [--no-prof] [--top 40]
 *        [--bin path/to/bin/agent.js (another build, to compare)] [--node-args "--import x.mjs"] [--strace (syscall counts of the window)] [--yaml "extra: yaml"] [--keep DIR (keep the .cpuprofile files there)]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { freePort, TestNginx } from '../../core/testing/nginx.js';
import { AGENT_BIN, get, isolate, memoryMb, REPO } from './daemons.js';
import { numberArg, stringArg } from './args.js';

await isolate(import.meta.filename);
const has = (name: string) => process.argv.includes(name);
const wasm = !has('--no-wasm');
const SECONDS = numberArg('--seconds', 90);
const SETTLE = numberArg('--settle', 20);
const SCRAPE = numberArg('--scrape', 15);
const RATE = numberArg('--rate', 0);
const TOP = numberArg('--top', 40);
const profile = !has('--no-prof');
const CLOCK_TICK_MS = 1000 / Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim() || 100);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const nginx = await TestNginx.start({ workers: 1 });
const dir = mkdtempSync(join(tmpdir(), 'agent-profile-'));
const profDir = stringArg('--keep') ?? join(dir, 'prof');
mkdirSync(profDir, { recursive: true });
const port = await freePort();
const config = join(dir, 'agent.yaml');
writeFileSync(
  config,
  `api:\n  port: ${port}\nlog:\n  level: warn\n  format: json\nagent:\n  state_dir: ${dir}\n` +
    (wasm ? '' : 'wasm:\n  enabled: false\n') +
    (stringArg('--yaml') ?? ''),
);
const nodeArgs = [
  ...(profile
    ? ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-interval', String(numberArg('--interval-us', 1000))]
    : []),
  ...(stringArg('--node-args') ?? '').split(' ').filter(Boolean),
];
const bin = stringArg('--bin') ?? AGENT_BIN;
const args = ['start', '--config', config];
// Executed as installed (its launcher then Node) unless Node flags are asked for.
const child = spawn(nodeArgs.length ? process.execPath : bin, nodeArgs.length ? [...nodeArgs, bin, ...args] : args, {
  stdio: ['ignore', 'inherit', 'inherit'],
});
const pid = child.pid!;
const metricsUrl = `http://127.0.0.1:${port}/metrics`;
for (let i = 0; i < 300; i++) {
  try {
    if ((await get(metricsUrl)).status === 200) break;
  } catch {
    /* not yet */
  }
  await sleep(100);
}
const scraper = setInterval(() => get(metricsUrl, { gzip: true }).catch(() => undefined), SCRAPE * 1000);
await sleep(SETTLE * 1000);

interface ThreadStat {
  name: string;
  cpu: number;
  user: number;
  system: number;
  voluntary: number;
  involuntary: number;
}
function threads(): Map<string, ThreadStat> {
  const out = new Map<string, ThreadStat>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      const num = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
      // schedstat: ns on the CPU (finer than the 10 ms ticks of stat, whose user/system split is kept).
      const onCpuNs = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      out.set(tid, {
        name,
        cpu: onCpuNs / 1e6,
        user: Number(fields[11]) * CLOCK_TICK_MS,
        system: Number(fields[12]) * CLOCK_TICK_MS,
        voluntary: num('voluntary_ctxt_switches'),
        involuntary: num('nonvoluntary_ctxt_switches'),
      });
    } catch {
      /* thread gone */
    }
  }
  return out;
}

const before = threads();
const t0 = performance.now();
let wrk: ReturnType<typeof spawn> | undefined;
if (RATE > 0) {
  const connections = 8;
  const script = join(dir, 'rate.lua');
  writeFileSync(script, `function delay()\n  return ${((connections * 1000) / RATE - 0.3).toFixed(2)}\nend\n`);
  wrk = spawn('wrk', ['-t', '1', '-c', String(connections), '-d', `${SECONDS}s`, '-s', script, nginx.url('/ok')], {
    stdio: 'ignore',
  });
}
const straceOut = join(dir, 'strace.txt');
const tracer = has('--strace')
  ? spawn('strace', [...(stringArg('--strace-args') ?? '-c').split(' '), '-f', '-o', straceOut, '-p', String(pid)], {
      stdio: 'ignore',
    })
  : undefined;
const perfData = stringArg('--perf');
const perf = perfData
  ? spawn('perf', ['record', '-e', 'cpu-clock', '-F', '2000', '-g', '-o', perfData, '-p', String(pid)], {
      stdio: 'ignore',
    })
  : undefined;
await sleep(SECONDS * 1000);
if (perf) {
  perf.kill('SIGINT');
  await new Promise((r) => perf.once('exit', r));
}
if (tracer) {
  tracer.kill('SIGINT');
  await new Promise((r) => tracer.once('exit', r));
}
const wall = performance.now() - t0;
const after = threads();
const rss = memoryMb(pid);
clearInterval(scraper);
wrk?.kill('SIGINT');
const grep = stringArg('--grep');
if (grep) {
  const text = (await get(metricsUrl)).text;
  const re = new RegExp(grep);
  console.log(
    text
      .split('\n')
      .filter((l) => !l.startsWith('#') && re.test(l))
      .join('\n'),
  );
}
const killedAt = performance.now();
child.kill('SIGINT');
await new Promise((r) => child.once('exit', r));
const shutdownUs = (performance.now() - killedAt) * 1000;
await nginx.stop();

console.log(
  `# agent ${wasm ? 'with' : 'without'} Wasm, ${SECONDS} s measured after ${SETTLE} s, scrape ${SCRAPE} s${RATE ? `, wrk ~${RATE} req/s` : ''}${profile ? ', profiled' : ''}; RSS ${rss.rss.toFixed(1)} MB`,
);
let total = 0;
let totalVol = 0;
const byName = new Map<string, ThreadStat>();
for (const [tid, a] of after) {
  const b = before.get(tid) ?? { name: a.name, cpu: 0, user: 0, system: 0, voluntary: 0, involuntary: 0 };
  const key = `${a.name}/${tid === String(pid) ? 'main' : tid}`;
  const acc = { name: key, cpu: 0, user: 0, system: 0, voluntary: 0, involuntary: 0 };
  acc.cpu += a.cpu - b.cpu;
  acc.user += a.user - b.user;
  acc.system += a.system - b.system;
  acc.voluntary += a.voluntary - b.voluntary;
  acc.involuntary += a.involuntary - b.involuntary;
  byName.set(key, acc);
  total += a.cpu - b.cpu;
  totalVol += a.voluntary - b.voluntary;
}
console.log(
  `process CPU ${((total / wall) * 100).toFixed(3)} % of a core (${total.toFixed(0)} ms), ${((totalVol / wall) * 1000).toFixed(1)} voluntary switches/s`,
);
for (const t of [...byName.values()].sort((x, y) => y.cpu - x.cpu)) {
  console.log(
    `  ${t.name.padEnd(18)} ${t.cpu.toFixed(0).padStart(6)} ms (user ${t.user}, sys ${t.system})  ${((t.voluntary / wall) * 1000).toFixed(2).padStart(7)} wakes/s  ${t.involuntary} invol`,
  );
}

if (tracer) console.log(readFileSync(straceOut, 'utf8'));
if (profile) {
  for (const file of readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'))) {
    summarize(join(profDir, file));
  }
}
if (!stringArg('--keep')) rmSync(dir, { recursive: true, force: true });

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
function summarize(file: string): void {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: ProfileNode[];
    startTime: number;
    samples: number[];
    timeDeltas: number[];
  };
  const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const short = (url: string) => {
    const path = url.replace(/^file:\/\//, '');
    return path.startsWith(REPO) ? relative(REPO, path) : path || '(native)';
  };
  const selfFn = new Map<string, number>();
  const selfFile = new Map<string, number>();
  const inclFile = new Map<string, number>();
  let t = prof.startTime;
  // The measured window: SECONDS before the SIGINT (the profile ends when the process exits).
  const endT = prof.startTime + prof.timeDeltas.reduce((a, b) => a + b, 0) - shutdownUs;
  const fromT = endT - SECONDS * 1e6;
  let busy = 0;
  let counted = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i]!;
    t += dt;
    if (t < fromT || t > endT) continue;
    const node = nodes.get(prof.samples[i]!)!;
    const fn = node.callFrame.functionName || '(anonymous)';
    counted++;
    if (fn === '(idle)' || fn === '(program)' || fn === '(garbage collector)') {
      selfFn.set(fn, (selfFn.get(fn) ?? 0) + 1);
      if (fn !== '(idle)') busy++;
      continue;
    }
    busy++;
    const key = `${fn} ${short(node.callFrame.url)}:${node.callFrame.lineNumber + 1}`;
    selfFn.set(key, (selfFn.get(key) ?? 0) + 1);
    const f = short(node.callFrame.url);
    selfFile.set(f, (selfFile.get(f) ?? 0) + 1);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const u = nodes.get(id)!.callFrame.url;
      if (!u) continue;
      const s = short(u);
      const group = s.startsWith('dist/') ? s : s.startsWith('node:') ? s : s.split('/').slice(0, 3).join('/');
      if (seen.has(group)) continue;
      seen.add(group);
      inclFile.set(group, (inclFile.get(group) ?? 0) + 1);
    }
  }
  const ms = (n: number) => `${((n * numberArg('--interval-us', 1000)) / 1000).toFixed(0).padStart(6)} ms`;
  console.log(`\n## ${file.split('/').pop()}: ${counted} samples in the window, ${busy} not idle (~${ms(busy)})`);
  const top = (m: Map<string, number>, n: number, title: string) => {
    console.log(`-- ${title}`);
    for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${ms(v)}  ${k}`);
  };
  top(selfFn, TOP, 'self, by function');
  top(selfFile, 25, 'self, by file');
  top(inclFile, 30, 'inclusive, by file');
}
