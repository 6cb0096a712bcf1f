/**
 * OTLP export cost: builds a snapshot of N series (counters, gauges, histograms as the nginx and host
 * plugins publish them), converts it with the official serializers, gzips it, and prints data points/s
 * and bytes per point for http/protobuf and http/json.
 *   node --import tsx scripts/bench/otlp.ts [series=10000]
 */
import { gzipSync } from 'node:zlib';
import type { StoredMetric } from '../../core/metrics/store.js';
import { serialize, toResourceMetrics } from '../../plugins/otlp-exporter/convert.js';

const N = Number(process.argv[2] ?? 10_000);
const third = Math.floor(N / 3);
const attrs = (i: number) => ({
  'nginx.instance.id': `inst-${i % 7}`,
  status_range: `${(i % 5) + 1}xx`,
  method: ['GET', 'POST', 'PUT'][i % 3],
  server: `srv-${i}`,
});
const snapshot: StoredMetric[] = [
  {
    name: 'nginx.http.responses',
    type: 'counter',
    unit: '{response}',
    description: 'Responses.',
    points: Array.from({ length: third }, (_, i) => ({
      attributes: attrs(i),
      value: i * 13,
      startTime: 1_700_000_000_000,
    })),
  },
  {
    name: 'system.cpu.utilization',
    type: 'gauge',
    unit: '1',
    description: 'CPU.',
    points: Array.from({ length: third }, (_, i) => ({ attributes: attrs(i), value: (i % 100) / 100 })),
  },
  {
    name: 'nginx.http.request.time',
    type: 'histogram',
    unit: 's',
    description: 'Request time.',
    points: Array.from({ length: N - 2 * third }, (_, i) => ({
      attributes: attrs(i),
      count: 100,
      sum: 4.2,
      bounds: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      buckets: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 34],
    })),
  },
];

for (const protocol of ['http/protobuf', 'http/json'] as const) {
  const rounds = 5;
  let bytes = 0;
  let gz = 0;
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    bytes = 0;
    gz = 0;
    for (const g of toResourceMetrics(snapshot, {
      resource: { 'service.name': 'nginx-agent', 'host.name': 'bench' },
      scopeVersion: '0',
      now: Date.now(),
      startTime: 0,
      maxPoints: 1000,
    })) {
      const { body } = serialize(g.request, protocol);
      bytes += body.byteLength;
      gz += gzipSync(body).byteLength;
    }
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  const med = times[Math.floor(rounds / 2)];
  console.log(
    `${protocol.padEnd(13)} ${N} points: median ${med.toFixed(1)} ms per snapshot (${Math.round((N / med) * 1000).toLocaleString('en')} points/s incl. gzip), ` +
      `${(bytes / N).toFixed(1)} B/point raw, ${(gz / N).toFixed(1)} B/point gzipped`,
  );
}
