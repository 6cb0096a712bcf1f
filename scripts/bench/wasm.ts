/**
 * Wasm plugin benchmark: messages/s through the bus into one plugin, batched against one call per
 * message, for a WAT plugin (core/wasm/testdata/count.wat copies each batch into its memory and
 * counts the messages), the AssemblyScript one (config-lint), the C one (bus-meter, Extism C PDK) and
 * the waPC one (plugin-state-alert); call latency p50/p99; first load in a fresh process; load time
 * and RSS per plugin. Run `npm run build` first (dist/ and the example .wasm files).
 *
 *   node --expose-gc --import tsx scripts/bench/wasm.ts [--messages N]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Agent } from '../../core/agent.js';
import { PACKAGE_ROOT } from '../../core/config/load.js';
import { benchConfig } from './config.js';
import { capMemory } from '../../core/wasm/module.js';
import type { LoadSpec } from '../../core/wasm/protocol.js';
import { WasmRuntime } from '../../core/wasm/runtime.js';
import { compileFixture, tempPluginsDir } from '../../core/wasm/testing.js';
import { numberArg } from './args.js';

const N = numberArg('--messages', 200_000);
const logger = pino({ level: 'warn' });
const wasm = await compileFixture('count');
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

/** A plugin under test: its module and the manifest lines beyond name, wasm and subscriptions. */
interface BenchPlugin {
  label: string;
  name: string;
  wasm: Uint8Array;
  manifest: string;
}

/** Messages/s from bus publish to the plugin having been called with them all (its `messages` counter). */
async function throughput(
  p: BenchPlugin,
  batchSize: number,
  messages: number,
): Promise<{ rate: number; calls: number }> {
  const dir = tempPluginsDir();
  mkdirSync(join(dir, p.name));
  writeFileSync(join(dir, p.name, 'plugin.wasm'), p.wasm);
  writeFileSync(
    join(dir, p.name, 'plugin.yaml'),
    `name: ${p.name}\nwasm: plugin.wasm\nsubscriptions: [event.in]\n${p.manifest}\n`,
  );
  const loaded = benchConfig({
    'api.enabled': false,
    'bus.queue_size': 1_000_000,
    'wasm.dirs': [dir],
    'wasm.watch': false,
    'wasm.batch_size': batchSize,
    'wasm.batch_wait': '1ms',
  });
  const agent = new Agent({ loaded, builtins: [], logger });
  await agent.start();
  await agent.wasm!.ready;
  const plugin = agent.wasm!.plugins()[0];
  if (plugin.status().state !== 'running') throw new Error(`${p.label}: ${plugin.status().reason}`);
  const t0 = performance.now();
  // Published in slices so the bus queue (and its overflow policy) is never the limit.
  for (let i = 0; i < messages; ) {
    const end = Math.min(messages, i + 5000);
    for (; i < end; i++)
      agent.bus.publish(
        'event.in' as never,
        { i, plugin: 'bench', state: 'running', path: '/api/v1/items', status: 200, ms: 1.5 } as never,
      );
    await new Promise((r) => setImmediate(r));
  }
  while (plugin.counters.messages < messages) await new Promise((r) => setTimeout(r, 1));
  const s = (performance.now() - t0) / 1000;
  const { calls, errors } = plugin.counters;
  await agent.stop();
  if (errors) throw new Error(`${p.label}: ${errors} failed calls`);
  return { rate: messages / s, calls };
}

function spec(id: string, module = wasm): LoadSpec {
  return {
    id,
    name: id,
    abi: 'extism',
    wasm: capMemory(module, 128 << 20),
    config: {},
    publishes: ['event.count'],
    allowedHosts: [],
    allowedPaths: {},
    useWasi: false,
    logLevel: 2,
    vars: {},
    varsMaxBytes: 1 << 20,
    httpTimeoutMs: 1000,
    httpMaxResponseBytes: 1 << 20,
    memoryBytes: 64 << 20,
    maxPublishesPerCall: 1000,
  };
}

async function latencyAndLoad(): Promise<void> {
  const rt = new WasmRuntime({ logger });
  const t0 = performance.now();
  await rt.load(spec('p0'), 10_000);
  const first = performance.now() - t0;
  const one = JSON.stringify({
    messages: [{ topic: 'event.in', time: Date.now(), data: { i: 1, path: '/api/v1/items', status: 200, ms: 1.5 } }],
  });
  const rtt: number[] = [];
  const inside: number[] = [];
  for (let i = 0; i < 3000; i++) {
    const a = performance.now();
    const r = await rt.call('p0', one, 1000);
    rtt.push(performance.now() - a);
    inside.push(r.ms);
  }
  const b256 = JSON.stringify({
    messages: Array.from({ length: 256 }, (_, i) => ({
      topic: 'event.in',
      time: Date.now(),
      data: { i, path: '/api/v1/items', status: 200, ms: 1.5 },
    })),
  });
  const big: number[] = [];
  for (let i = 0; i < 500; i++) big.push((await rt.call('p0', b256, 1000)).ms);
  console.log(
    `call latency, 1 message:    round trip p50 ${(pct(rtt, 50) * 1000).toFixed(0)} us, p99 ${(pct(rtt, 99) * 1000).toFixed(0)} us; inside the worker p50 ${(pct(inside, 50) * 1000).toFixed(0)} us, p99 ${(pct(inside, 99) * 1000).toFixed(0)} us`,
  );
  console.log(
    `call latency, 256 messages: inside the worker p50 ${(pct(big, 50) * 1000).toFixed(0)} us, p99 ${(pct(big, 99) * 1000).toFixed(0)} us`,
  );

  console.log(`load: first plugin ${first.toFixed(0)} ms from source (includes starting the worker and tsx in it)`);
  compiledFirstLoad();
  const K = 10;
  const modules: [string, Uint8Array<ArrayBuffer>][] = [['count.wat', wasm]];
  const as = join(PACKAGE_ROOT, 'wasm-plugins', 'config-lint', 'config-lint.wasm');
  if (existsSync(as))
    modules.push([
      `config-lint (AssemblyScript, ${Math.round(statSync(as).size / 1024)} KB)`,
      new Uint8Array(readFileSync(as)),
    ]);
  for (const [label, mod] of modules) {
    globalThis.gc?.();
    await new Promise((r) => setTimeout(r, 200));
    const rss0 = process.memoryUsage().rss;
    const loads: number[] = [];
    for (let i = 1; i <= K; i++) {
      const a = performance.now();
      await rt.load(spec(`${label}-${i}`, mod), 10_000);
      loads.push(performance.now() - a);
    }
    // Every plugin called once, so its memory is touched.
    for (let i = 1; i <= K; i++) await rt.call(`${label}-${i}`, b256, 1000);
    globalThis.gc?.();
    await new Promise((r) => setTimeout(r, 200));
    const rss1 = process.memoryUsage().rss;
    console.log(
      `${label}: load median ${pct(loads, 50).toFixed(1)} ms, max ${Math.max(...loads).toFixed(1)} ms; RSS +${((rss1 - rss0) / 1048576 / K).toFixed(2)} MB per plugin (${K} loaded and called once: ${(rss0 / 1048576).toFixed(0)} -> ${(rss1 / 1048576).toFixed(0)} MB)`,
    );
  }
  await rt.close();
}

/**
 * The first load as the installed agent does it: a fresh process, the compiled code from dist/ (no
 * tsx). "agent path": the manager found a plugin folder, so it starts the worker (runtime.prepare)
 * and, while the worker boots, reads and checks the folder (checkPluginDir), then loads; timed from
 * the folder found to the plugin loaded. "cold": runtime.load alone, the worker started by the load.
 */
function compiledFirstLoad(): void {
  const dist = join(PACKAGE_ROOT, 'dist', 'core', 'wasm');
  const folder = join(PACKAGE_ROOT, 'wasm-plugins', 'config-lint');
  if (!existsSync(join(dist, 'runtime.js')) || !existsSync(join(folder, 'config-lint.wasm'))) {
    console.log('load: first plugin compiled: skipped (run npm run build first)');
    return;
  }
  const script = (agentPath: boolean) => `
    import pino from 'pino';
    const { WasmRuntime } = await import(${JSON.stringify(join(dist, 'runtime.js'))});
    const { capMemory, checkPluginDir } = await import(${JSON.stringify(join(dist, 'module.js'))});
    const rt = new WasmRuntime({ logger: pino({ level: 'silent' }) });
    const t0 = performance.now();
    ${agentPath ? 'rt.prepare();' : ''}
    const checked = checkPluginDir(${JSON.stringify(folder)});
    const spec = { ...${JSON.stringify({ ...spec('first'), wasm: undefined })}, wasm: capMemory(checked.bytes, 256 << 20) };
    await rt.load(spec, 10000);
    console.log(performance.now() - t0);
    await rt.close();`;
  for (const agentPath of [true, false]) {
    const runs: number[] = [];
    for (let i = 0; i < 10; i++) {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script(agentPath)], {
        cwd: PACKAGE_ROOT,
        encoding: 'utf8',
      });
      const ms = Number(r.stdout.trim().split('\n').pop());
      if (r.status !== 0 || !Number.isFinite(ms)) {
        console.log(`load: first plugin compiled: failed (${r.stderr.trim().split('\n').pop()})`);
        return;
      }
      runs.push(ms);
    }
    console.log(
      `load: first plugin compiled (config-lint, fresh process, dist/), ${agentPath ? 'agent path (worker started when the folder is found)' : 'cold (worker started by the load)'}: median ${pct(runs, 50).toFixed(0)} ms, max ${Math.max(...runs).toFixed(0)} ms over ${runs.length} processes`,
    );
  }
}

console.log(
  `Node ${process.version}, @extism/extism 1.0.3, load average ${loadavg()[0].toFixed(1)} on ${cpus().length} CPUs; latency and RSS with core/wasm/testdata/count.wat (copies and scans every message)`,
);
await latencyAndLoad();
const plugins: BenchPlugin[] = [
  { label: 'count.wat (WebAssembly text)', name: 'count', wasm, manifest: 'publishes: [event.count]' },
];
const example = (folder: string, file: string) => {
  const path = join(PACKAGE_ROOT, 'wasm-plugins', folder, file);
  return existsSync(path) ? new Uint8Array(readFileSync(path)) : undefined;
};
const as = example('config-lint', 'config-lint.wasm');
if (as)
  plugins.push({
    label: 'config-lint (AssemblyScript, Extism; parses each batch, ignores other topics)',
    name: 'config-lint',
    wasm: as,
    manifest: 'publishes: [lint.nginx.config]\nmemory_mb: 128',
  });
const c = example('bus-meter', 'bus-meter.wasm');
if (c)
  plugins.push({
    label: 'bus-meter (C, Extism C PDK; scans each batch, keeps vars, publishes a MetricBatch per call)',
    name: 'bus-meter',
    wasm: c,
    manifest: 'publishes: [metrics]',
  });
else console.log('bus-meter (C): not built (clang missing?), skipped');
const wapc = example('plugin-state-alert', 'plugin-state-alert.wasm');
if (wapc)
  plugins.push({
    label: 'plugin-state-alert (waPC, AssemblyScript; parses each batch into a JSON tree)',
    name: 'plugin-state-alert',
    wasm: wapc,
    manifest: 'abi: wapc\npublishes: [alert.agent.plugin]\nmemory_mb: 64',
  });
for (const p of plugins) {
  const batched = await throughput(p, 256, N);
  const single = await throughput(p, 1, Math.min(N, 20_000));
  console.log(
    `${p.label}:\n  batched (batch_size 256): ${Math.round(batched.rate).toLocaleString('en')} messages/s (${N.toLocaleString('en')} messages in ${batched.calls} calls); one call per message: ${Math.round(single.rate).toLocaleString('en')} messages/s (${single.calls} calls)`,
  );
}
