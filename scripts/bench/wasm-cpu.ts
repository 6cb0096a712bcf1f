/**
 * CPU of the Wasm plugin path under the agent's load pattern (issue 16), without nginx or the other
 * collectors: an Agent with only the bus and the shipped plugins (wasm-plugins/*), fed what
 * nginx-logs publishes under steady traffic (once a second an access-log `metrics` batch and an
 * `nginx.access.top`, a host-metrics batch every 10 s), so bus-meter, error-budget and the cascade
 * (bus-meter's own `metrics` into error-budget) run as in the agent. Prints the process CPU per second
 * (process.cpuUsage: every thread) and the calls per second, with the plugins and with
 * `wasm.enabled: false`; `--threads` adds CPU and wake-ups per thread (schedstat, voluntary context
 * switches), `--curve` the CPU of every 10 s from the start (the path warms up over a minute),
 * `--no-baseline` skips the run without Wasm. Prints figures; asserts nothing.
 *
 *   npm run build:ts && node dist/scripts/bench/wasm-cpu.js [--seconds 30] [--settle 15] [--rounds 2]
 * (from the source with tsx the worker runs under tsx too, which costs several times more). Hold the
 * bench lock.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { Agent } from '../../core/agent.js';
import { PACKAGE_ROOT } from '../../core/config/load.js';
import { benchConfig } from './config.js';
import { numberArg } from './args.js';

const SECONDS = numberArg('--seconds', 30);
const ROUNDS = numberArg('--rounds', 2);
const SETTLE = numberArg('--settle', 15);
const CURVE = process.argv.includes('--curve');
const REPO = PACKAGE_ROOT;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const batch = JSON.parse(readFileSync(join(REPO, 'wasm-plugins/error-budget/testdata/nginx-logs-batch.json'), 'utf8'));

/** CPU ms and wake-ups (voluntary context switches) of each thread of this process, by thread id. */
function threadCpu(): Map<string, { ms: number; wakes: number }> {
  const out = new Map<string, { ms: number; wakes: number }>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const ms = Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
      const status = readFileSync(`/proc/self/task/${tid}/status`, 'utf8');
      const wakes = Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      out.set(tid, { ms, wakes });
    } catch {
      /* gone */
    }
  }
  return out;
}

async function run(wasm: boolean): Promise<{ cpuMsPerS: number; callsPerS: number }> {
  const loaded = benchConfig({
    'api.enabled': false,
    'wasm.enabled': wasm,
    'wasm.dirs': [join(REPO, 'wasm-plugins')],
    'wasm.watch': false,
  });
  const agent = new Agent({ loaded, builtins: [], logger: pino({ level: 'warn' }) });
  await agent.start();
  await agent.wasm?.ready;
  let requests = 0;
  const tick = (i: number) => {
    const now = Date.now();
    requests += 2000;
    const data = structuredClone(batch.data);
    data.time = now;
    // Only 2xx responses grow (no alert fires); the histogram's count and buckets grow with them.
    for (const m of data.metrics)
      for (const p of m.points) {
        if (typeof p.value === 'number' && p.attributes?.status_range === '2xx') p.value += requests;
        if (Array.isArray(p.buckets)) p.buckets[0] += requests;
        if (typeof p.count === 'number') p.count += requests;
      }
    agent.bus.publish('metrics', data);
    agent.bus.publish('nginx.access.top', {
      instanceId: 'inst-1',
      logPath: '/var/log/nginx/access.log',
      windowSeconds: 60,
      requests,
      uris: [{ uri: '/ok', requests, errors5xx: 0 }],
    });
    if (i % 10 === 0) agent.bus.publish('metrics', { source: 'host-metrics', time: now, metrics: [] });
  };
  let i = 0;
  const timer = setInterval(() => tick(i++), 1000);
  // --curve: the CPU of every 10 s from the start (JIT and tier-up warm the path over minutes).
  let last = process.cpuUsage();
  const curve = CURVE
    ? setInterval(() => {
        const d = process.cpuUsage(last);
        last = process.cpuUsage();
        process.stdout.write(`${((d.user + d.system) / 10_000).toFixed(2)} `);
      }, 10_000)
    : undefined;
  await sleep(SETTLE * 1000);
  const calls = () => (agent.wasm?.plugins() ?? []).reduce((n, p) => n + p.counters.calls, 0);
  const c0 = process.cpuUsage();
  const th0 = threadCpu();
  const k0 = calls();
  const t0 = performance.now();
  await sleep(SECONDS * 1000);
  const c = process.cpuUsage(c0);
  const th = [...threadCpu()].map(
    ([tid, t]) => [tid, t.ms - (th0.get(tid)?.ms ?? 0), t.wakes - (th0.get(tid)?.wakes ?? 0)] as const,
  );
  const s = (performance.now() - t0) / 1000;
  const k = calls() - k0;
  clearInterval(timer);
  clearInterval(curve);
  if (CURVE) console.log(`(ms CPU/s every 10 s, ${wasm ? 'with' : 'without'} Wasm)`);
  await agent.stop();
  const main = String(process.pid);
  if (process.argv.includes('--threads'))
    console.log(
      `  threads, ms CPU/s: ${th
        .filter(([, ms]) => ms / SECONDS > 0.01)
        .sort((a, b) => b[1] - a[1])
        .map(
          ([tid, ms, wakes]) =>
            `${tid === main ? 'main' : tid} ${(ms / SECONDS).toFixed(2)} (${(wakes / SECONDS).toFixed(1)} wakes/s)`,
        )
        .join(', ')}`,
    );
  return { cpuMsPerS: (c.user + c.system) / 1000 / s, callsPerS: k / s };
}

for (let r = 0; r < ROUNDS; r++) {
  const on = await run(true);
  const off = process.argv.includes('--no-baseline') ? { cpuMsPerS: 0, callsPerS: 0 } : await run(false);
  console.log(
    `round ${r + 1}: with Wasm ${on.cpuMsPerS.toFixed(2)} ms CPU/s (${on.callsPerS.toFixed(2)} calls/s), without ${off.cpuMsPerS.toFixed(2)} ms CPU/s: Wasm adds ${(on.cpuMsPerS - off.cpuMsPerS).toFixed(2)} ms/s`,
  );
}
process.exit(0);
