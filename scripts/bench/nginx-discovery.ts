/**
 * Cost of nginx discovery and status reads on this machine: one full /proc scan (all processes,
 * with a real nginx of 4 workers among them), and one stub_status read + parse.
 * Run: node --import tsx scripts/bench/nginx-discovery.ts [--rounds N]
 */
import { readdirSync } from 'node:fs';
import { TestNginx } from '../../core/testing/nginx.js';
import { BinaryInfoCache } from '../../plugins/nginx-discovery/binary-info.js';
import { NginxDiscovery } from '../../plugins/nginx-discovery/discovery.js';
import { ProcReader } from '../../plugins/nginx-discovery/proc.js';
import { CounterTracker } from '../../plugins/nginx-status/counters.js';
import { parseStubStatus, stubStatusMetrics } from '../../plugins/nginx-status/stub-status.js';

const i = process.argv.indexOf('--rounds');
const ROUNDS = i > 0 ? Number(process.argv[i + 1]) : 200;

function stats(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const p = (q: number) => s[Math.min(s.length - 1, Math.floor(s.length * q))].toFixed(2);
  return `median ${p(0.5)} ms, p95 ${p(0.95)} ms, max ${s[s.length - 1].toFixed(2)} ms`;
}

const n = await TestNginx.start({ workers: 4 });
try {
  const binaries = new BinaryInfoCache({ timeoutMs: 5000 });
  const d = new NginxDiscovery({ reader: new ProcReader('/proc'), binaries, oldGenerationGraceMs: 60_000 });
  const t0 = performance.now();
  await d.poll();
  const first = performance.now() - t0;
  const scans: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t = performance.now();
    await d.poll();
    scans.push(performance.now() - t);
  }
  const procs = readdirSync('/proc').filter((x) => /^\d+$/.test(x)).length;
  const cpu0 = process.cpuUsage();
  for (let r = 0; r < 50; r++) await d.poll();
  const cpu = process.cpuUsage(cpu0);
  console.log(
    `discovery: ${procs} processes, ${d.instances().length} nginx instance(s), nginx -V runs: ${binaries.runs}`,
  );
  console.log(`  first scan (runs nginx -V): ${first.toFixed(1)} ms`);
  console.log(`  scan: ${stats(scans)} over ${ROUNDS} scans`);
  console.log(
    `  CPU per scan: ${((cpu.user + cpu.system) / 1000 / 50).toFixed(2)} ms (at the default 5 s interval: ${(((cpu.user + cpu.system) / 1000 / 50 / 5000) * 100).toFixed(3)} % of a core)`,
  );

  const counters = new CounterTracker(() => Date.now());
  const reads: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t = performance.now();
    const res = await fetch(n.url('/nginx_status'));
    stubStatusMetrics(parseStubStatus(await res.text()), counters, Date.now());
    reads.push(performance.now() - t);
  }
  console.log(`stub_status read + parse + metrics: ${stats(reads)} over ${ROUNDS} reads`);
  const page =
    'Active connections: 291 \nserver accepts handled requests\n 16630948 16630948 31070465 \nReading: 6 Writing: 179 Waiting: 106 \n';
  const N = 200_000;
  const tp = performance.now();
  for (let r = 0; r < N; r++) parseStubStatus(page);
  console.log(`parseStubStatus alone: ${((N / (performance.now() - tp)) * 1000).toFixed(0)} pages/s`);
} finally {
  await n.stop();
}
