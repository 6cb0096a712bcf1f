/**
 * Views benchmark: memory of the one-hour history, and how fast the at-a-glance answers are.
 * Run: node --expose-gc --import tsx scripts/bench/history.ts [--instances 10]
 *
 * 1. Memory: a full hour (720 samples at the 5 s default interval) for N fixture nginx instances
 *    (core/testing/views-fixture.ts: the batches nginx-status, nginx-logs and host-metrics publish),
 *    heap before and after, against the rings' own size; also for 10x N.
 * 2. GET /v1/summary and GET / over HTTP with N instances known (the summary for the history full).
 * 3. `agent status` from the compiled CLI (dist/, as installed) against that API, against `node -e 0`.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ApiServer } from '../../core/api/server.js';
import { Bus } from '../../core/bus/bus.js';
import { nullLogger } from '../../core/logging.js';
import { MetricStore } from '../../core/metrics/store.js';
import { REPO_ROOT } from '../../core/testing/agent-process.js';
import { announceInstances, trafficBatches } from '../../core/testing/views-fixture.js';
import { Views } from '../../core/views/views.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const INSTANCES = arg('instances', 10);
const INTERVAL_MS = 5000;
const TICKS = 3_600_000 / INTERVAL_MS;

const gc = (globalThis as { gc?: () => void }).gc;
function heap(): number {
  gc?.();
  gc?.();
  // Float64Array rings live outside the V8 heap: count ArrayBuffers too.
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MB`;

async function filled(instances: number): Promise<{ views: Views; bus: Bus }> {
  const bus = new Bus({ logger: nullLogger() });
  const store = new MetricStore();
  const views = new Views({
    bus,
    store,
    info: { version: 'bench', startedAt: Date.now() - 3_600_000, hostname: 'bench', instanceId: 'x', labels: {} },
    plugins: () => [],
    state: () => 'running',
    intervalMs: INTERVAL_MS,
    dashboard: true,
  });
  announceInstances(bus, instances);
  await bus.drain(10_000);
  const start = Date.now() - 3_600_000;
  for (let tick = 0; tick < TICKS; tick++) {
    for (const b of trafficBatches(instances, tick)) store.apply(b);
    views.sample(start + tick * INTERVAL_MS);
  }
  return { views, bus };
}

async function memory(instances: number): Promise<Views> {
  const before = heap();
  const { views } = await filled(instances);
  const after = heap();
  const stats = views.history.stats();
  console.log(
    `history, ${instances} nginx instances, 1 h at ${INTERVAL_MS / 1000} s (${stats.capacity} points/series): ` +
      `${stats.series} series, rings ${mb(stats.ringBytes)}, heap + ArrayBuffer growth ${mb(after - before)} ` +
      `(${((after - before) / stats.series / 1024).toFixed(1)} KB per series, store and fixtures included)${gc ? '' : ' [run with --expose-gc for exact heap figures]'}`,
  );
  return views;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function timeGet(url: string, runs: number): Promise<{ p50: number; p99: number; bytes: number }> {
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const res = await fetch(url);
    bytes = (await res.arrayBuffer()).byteLength;
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 0.5), p99: percentile(times, 0.99), bytes };
}

/** Median wall time of a command (run asynchronously: the API it asks lives in this process). */
async function wall(cmd: string, args: string[], runs: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await promisify(execFile)(cmd, args, { cwd: REPO_ROOT });
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return percentile(times, 0.5);
}

const views = await memory(INSTANCES);
(await memory(INSTANCES * 10)).stop();

const t0 = performance.now();
for (let i = 0; i < 100; i++) views.summary();
console.log(
  `summary() with ${INSTANCES} instances, history full: ${((performance.now() - t0) / 100).toFixed(2)} ms each`,
);

const api = new ApiServer({
  host: '127.0.0.1',
  port: 0,
  token: '',
  logger: nullLogger(),
  isPublic: (path) => path === '/' || path.startsWith('/dashboard/'),
});
views.routes(api);
const { port } = await api.listen();
const base = `http://127.0.0.1:${port}`;
await timeGet(`${base}/v1/summary`, 20);
for (const path of ['/v1/summary', '/', '/dashboard/app.js', '/v1/series?name=nginx.requests.rate&since=1h']) {
  const r = await timeGet(`${base}${path}`, 200);
  console.log(
    `GET ${path} (${INSTANCES} instances): p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, ${(r.bytes / 1024).toFixed(1)} KB`,
  );
}

const cli = join(REPO_ROOT, 'dist', 'cmd', 'agent.js');
if (existsSync(cli)) {
  const bare = await wall(process.execPath, ['-e', '0'], 10);
  const status = await wall(process.execPath, [cli, 'status', '--api-port', String(port)], 10);
  console.log(
    `agent status (compiled CLI, ${INSTANCES} instances): ${status.toFixed(0)} ms median wall time; node -e 0: ${bare.toFixed(0)} ms`,
  );
} else console.log('agent status: dist/cmd/agent.js missing (npm run build) - not measured');
views.stop();
await api.close();
