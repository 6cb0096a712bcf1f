/**
 * host-metrics benchmark.
 * Run: node --import tsx scripts/bench/host-metrics.ts [--cycles 200] [--seconds 300] [--interval 15s] [--baseline] [--no-connections]
 *
 * 1. Cycle cost: the collector on the live /proc, /sys and cgroup files (agent-process metrics
 *    included), `--cycles` times back to back after 3 warm-up cycles. Prints CPU ms per cycle
 *    (process.cpuUsage delta / cycles), wall ms per cycle, and child processes started per cycle
 *    (every spawn, sync or async, is counted; see plugins/host-metrics/spawn-counter.ts).
 *    `--no-connections` measures it without system.network.connections.
 * 2. Idle agent: the plugin through the real plugin host, bus and store at `--interval` for
 *    `--seconds` (default 5 min), in a child process under plain node: this file bundled by esbuild
 *    (packages left external), because tsx alone costs ~0.43 % of a core in an idle process here,
 *    four times the budget being measured. Prints the first cycle's child processes
 *    (systeminformation inventory), the children started after it, the average CPU as % of one
 *    core (process.cpuUsage, all threads), RSS after the first cycle and at the end, and the growth.
 *    `--baseline` runs the same child without the plugin, for comparison.
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDuration } from '../../core/config/schema.js';
import type { MetricBatch } from '../../core/metrics/model.js';
import { startPlugin } from '../../core/testing/plugin-harness.js';
import { type CollectorSettings, HostCollector } from '../../plugins/host-metrics/collector.js';
import { DEFAULT_EXCLUDE_FS_TYPES, DEFAULT_EXCLUDE_MOUNTPOINTS, plugin } from '../../plugins/host-metrics/index.js';
import { countSpawns } from '../../plugins/host-metrics/spawn-counter.js';

const argv = process.argv.slice(2);
const arg = (name: string, def: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : def;
};
const CYCLES = Math.max(1, Math.min(100_000, Number(arg('cycles', '200'))));
const SECONDS = Math.max(1, Math.min(86_400, Number(arg('seconds', '300'))));
const INTERVAL = arg('interval', '15s');
const MB = (n: number): string => `${(n / 1048576).toFixed(1)} MB`;

/** A collector of this host with the plugin's default exclusions; `connections` says how it reads the socket tables. */
function hostCollector(connections: Pick<CollectorSettings, 'connections' | 'connectionsIntervalMs'>): HostCollector {
  return new HostCollector({
    procRoot: '/proc',
    sysRoot: '/sys',
    cgroupRoot: '/sys/fs/cgroup',
    excludeFsTypes: DEFAULT_EXCLUDE_FS_TYPES,
    excludeMountpoints: DEFAULT_EXCLUDE_MOUNTPOINTS,
    excludeDisks: [/^(z?ram|loop|fd)\d+$/],
    excludeNetDevices: [],
    self: true,
    ...connections,
  });
}

async function cycleCost(): Promise<void> {
  const c = hostCollector({ connections: !argv.includes('--no-connections') });
  for (let i = 0; i < 3; i++) await c.collect();
  const spawns = countSpawns();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let points = 0;
  for (let i = 0; i < CYCLES; i++) {
    const ms = await c.collect();
    if (i === 0) points = ms.reduce((a, m) => a + m.points.length, 0);
  }
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  spawns.restore();
  c.close();
  console.log(
    `cycle cost over ${CYCLES} cycles (${points} points a cycle${argv.includes('--no-connections') ? ', connections: false' : ', every socket table read every cycle (connections_interval 0)'}):`,
  );
  console.log(
    `  CPU ${((cpu.user + cpu.system) / 1000 / CYCLES).toFixed(3)} ms/cycle (user ${(cpu.user / 1000 / CYCLES).toFixed(3)}, system ${(cpu.system / 1000 / CYCLES).toFixed(3)})`,
  );
  console.log(`  wall ${(wall / CYCLES).toFixed(3)} ms/cycle`);
  console.log(`  child processes ${(spawns.files.length / CYCLES).toFixed(3)}/cycle (${spawns.files.length} in total)`);
  if (!argv.includes('--no-connections')) await staggeredCost();
}

/**
 * The default schedule: connections_interval (1m) over interval (15s), each family's tables read on
 * a cycle of its own. Measured as the CPU of each kind of cycle (IPv4 tables read, IPv6 tables read,
 * none read) and their average over the 4 cycles of a minute.
 */
async function staggeredCost(): Promise<void> {
  const make = (period: number) => hostCollector({ connectionsIntervalMs: period });
  const perCycle = async (c: HostCollector, pause: number): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < CYCLES; i++) {
      if (pause) await new Promise((r) => setTimeout(r, pause));
      const cpu0 = process.cpuUsage();
      await c.collect();
      const u = process.cpuUsage(cpu0);
      out.push((u.user + u.system) / 1000);
    }
    return out;
  };
  // Period 1 ms with a 2 ms pause: both families due every cycle, so cycles alternate IPv4 / IPv6.
  const alternating = make(1);
  for (let i = 0; i < 3; i++) await alternating.collect();
  const alt = await perCycle(alternating, 2);
  alternating.close();
  const v4 = alt.filter((_, i) => i % 2 === 0);
  const v6 = alt.filter((_, i) => i % 2 === 1);
  const none = make(3_600_000);
  for (let i = 0; i < 3; i++) await none.collect();
  const idle = await perCycle(none, 0);
  none.close();
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const [a, b] = mean(v4) > mean(v6) ? [v4, v6] : [v6, v4];
  const p = (xs: number[], q: number) => [...xs].sort((x, y) => x - y)[Math.floor(q * (xs.length - 1))]!;
  console.log('staggered socket tables (default connections_interval 1m at interval 15s):');
  console.log(
    `  cycle reading one family's tables: ${mean(a).toFixed(3)} ms CPU (p95 ${p(a, 0.95).toFixed(3)}), the other family's: ${mean(b).toFixed(3)} ms (p95 ${p(b, 0.95).toFixed(3)})`,
  );
  console.log(`  cycle reading no socket table: ${mean(idle).toFixed(3)} ms CPU (p95 ${p(idle, 0.95).toFixed(3)})`);
  console.log(
    `  average over a minute's 4 cycles: ${((mean(v4) + mean(v6) + 2 * mean(idle)) / 4).toFixed(3)} ms CPU per cycle`,
  );
}

/** Runs in the bundled child: the idle agent. */
async function idleChild(): Promise<void> {
  const baseline = argv.includes('--baseline');
  const spawns = countSpawns();
  const h = baseline ? undefined : await startPlugin(plugin, { interval: INTERVAL });
  const batches = (): number =>
    (h?.published ?? []).filter((e) => e.topic === 'metrics' && (e.data as MetricBatch).source === 'host-metrics')
      .length;
  await h?.waitFor(() => batches() >= 1, 'first batch', 30_000);
  const firstChildren = spawns.files.length;
  global.gc?.();
  const rss0 = process.memoryUsage.rss();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let rssMax = rss0;
  const deadline = Date.now() + SECONDS * 1000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, Math.min(5000, deadline - Date.now())));
    rssMax = Math.max(rssMax, process.memoryUsage.rss());
  }
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - t0;
  global.gc?.();
  const rss1 = process.memoryUsage.rss();
  const cycles = batches();
  await h?.close();
  spawns.restore();
  console.log(
    baseline
      ? `baseline: the same process without the plugin, ${SECONDS} s:`
      : `idle agent (plain node, bundled), plugin at ${INTERVAL} for ${SECONDS} s (${cycles} batches published):`,
  );
  console.log(
    `  child processes: ${firstChildren} in the first cycle (inventory: ${[...new Set(spawns.files.slice(0, firstChildren))].join(', ') || 'none'}), ${spawns.files.length - firstChildren} after it`,
  );
  console.log(`  CPU ${(((cpu.user + cpu.system) / 1000 / wallMs) * 100).toFixed(4)} % of one core on average`);
  console.log(
    `  RSS ${MB(rss0)} after the first cycle, ${MB(rss1)} at the end (max ${MB(rssMax)}), growth ${MB(rss1 - rss0)}`,
  );
}

async function idle(): Promise<void> {
  if (parseDuration(INTERVAL) === null) throw new Error(`--interval ${INTERVAL}: not a duration (e.g. 15s)`);
  const { build } = await import('esbuild');
  const here = dirname(fileURLToPath(import.meta.url));
  // Inside the repo so the external packages resolve from its node_modules.
  const out = join(here, '..', '..', 'node_modules', '.cache', 'host-metrics-bench.mjs');
  mkdirSync(dirname(out), { recursive: true });
  await build({
    entryPoints: [fileURLToPath(import.meta.url)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    outfile: out,
    logLevel: 'error',
  });
  const args = [
    out,
    '--child',
    '--seconds',
    String(SECONDS),
    '--interval',
    INTERVAL,
    ...(argv.includes('--baseline') ? ['--baseline'] : []),
  ];
  const code = await new Promise<number | null>((resolve) =>
    spawn(process.execPath, ['--expose-gc', ...args], { stdio: 'inherit' }).on('exit', resolve),
  );
  if (code !== 0) throw new Error(`idle child exited with ${code}`);
}

if (argv.includes('--child')) await idleChild();
else {
  await cycleCost();
  await idle();
}
