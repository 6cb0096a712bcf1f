/**
 * Bus benchmark: messages/s delivered to 1, 4 and 16 subscribers, and publish-to-handle latency.
 * Run: node --import tsx scripts/bench/bus.ts [--messages N]
 *
 * The publisher publishes in bursts of 1,000 and yields to the event loop between bursts, as real
 * sources do (a collector publishes a batch, then waits for I/O). Every message goes to every
 * subscriber; "msgs/s" counts published messages fully delivered, "deliveries/s" counts handler calls.
 */
import { Bus } from '../../core/bus/bus.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const TOTAL = arg('messages', 2_000_000);
const BURST = 1000;

function pct(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function run(subscribers: number): Promise<void> {
  const bus = new Bus({ queueSize: 16_384 });
  const lat = new Float64Array(TOTAL);
  let n = 0;
  let delivered = 0;
  for (let s = 0; s < subscribers; s++) {
    const first = s === 0;
    bus.subscribe(`sub-${s}`, ['event.*'], (m) => {
      delivered++;
      if (first && m.topic === 'event.bench') lat[n++] = performance.now() - (m.data.t as number);
    });
  }
  const start = performance.now();
  for (let sent = 0; sent < TOTAL; ) {
    for (let i = 0; i < BURST && sent < TOTAL; i++, sent++) bus.publish('event.bench', { t: performance.now() });
    await new Promise((r) => setImmediate(r));
  }
  await bus.drain(60_000);
  const secs = (performance.now() - start) / 1000;
  const dropped = bus.stats().subscribers.reduce((a, s) => a + s.dropped, 0);
  const sorted = lat.subarray(0, n).sort();
  console.log(
    `${String(subscribers).padStart(2)} subscribers: ${Math.round(TOTAL / secs)
      .toLocaleString('en-US')
      .padStart(10)} msgs/s, ` +
      `${Math.round(delivered / secs)
        .toLocaleString('en-US')
        .padStart(11)} deliveries/s, ` +
      `latency p50 ${(pct(sorted, 0.5) * 1000).toFixed(0)} us, p99 ${(pct(sorted, 0.99) * 1000).toFixed(0)} us, dropped ${dropped}`,
  );
}

console.log(
  `bus benchmark: ${TOTAL.toLocaleString('en-US')} messages per run, bursts of ${BURST}, node ${process.version}`,
);
for (const s of [1, 4, 16]) await run(s);
