/**
 * Fleet at scale: N simulated agents (the real FleetClient, each with its own NATS connection, many
 * in this process) against one real nats-server with JetStream. Prints:
 * - time from start until the inventory (what `agent fleet ls` reads) shows all N,
 * - command round trip p50/p99 (operator request -> agent answers `status` through its route table),
 * - events/s into the NGINX_AGENT_EVENTS stream (acknowledged by JetStream),
 * - memory per simulated agent (heap and RSS growth over the process before the agents).
 *
 *   node --expose-gc --import tsx scripts/bench/fleet.ts [--agents 500] [--commands 2000] [--events 50000]
 */
import { parseArgs } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pino from 'pino';
import { FleetClient } from '../../core/fleet/client.js';
import { unauthenticated } from '../../core/fleet/connection.js';
import { listAgents, sendCommand } from '../../core/fleet/operator.js';
import { simulatedAgent, type SimulatedAgent } from '../../core/fleet/simulated.js';
import { ensureEventsStream, inventoryBucket } from '../../core/fleet/streams.js';
import { EVENTS_STREAM } from '../../core/fleet/subjects.js';
import { TestNats } from '../../core/testing/nats.js';

const { values } = parseArgs({
  options: {
    agents: { type: 'string', default: '500' },
    commands: { type: 'string', default: '2000' },
    events: { type: 'string', default: '50000' },
  },
});
const AGENTS = Number(values.agents);
const COMMANDS = Number(values.commands);
const EVENTS = Number(values.events);
const PREFIX = 'nginx_agent';
const logger = pino({ level: 'error' });

const gc = (globalThis as { gc?: () => void }).gc;
const mem = () => {
  gc?.();
  return process.memoryUsage();
};
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

const nats = await TestNats.start({ extraConf: 'max_connections: 10000' });
const operator = await connect({ servers: nats.url });
await ensureEventsStream(operator, PREFIX);
await inventoryBucket(operator);

const before = mem();
const sims: SimulatedAgent[] = [];
const clients: FleetClient[] = [];
const start = performance.now();
for (let i = 0; i < AGENTS; i++) {
  const sim = simulatedAgent({
    agentId: `sim-${String(i).padStart(4, '0')}`,
    labels: { env: i % 2 ? 'prod' : 'staging', role: 'edge' },
    logger,
  });
  const client = new FleetClient(
    {
      ...unauthenticated([nats.url]),
      name: `sim-${i}`,
      subject_prefix: PREFIX,
      heartbeat_interval: 15_000,
      outbox_size: 10_000,
    },
    sim.host,
  );
  client.start();
  sims.push(sim);
  clients.push(client);
}
let visible = 0;
if (process.env.BENCH_DEBUG)
  setInterval(
    () =>
      process.stderr.write(
        `tick: ${clients.filter((c) => c.state === 'connected').length} connected; ${JSON.stringify(clients[0].status())}\n`,
      ),
    2000,
  ).unref();
while (visible < AGENTS) {
  visible = (await listAgents(operator).catch(() => [])).length;
  if (process.env.BENCH_DEBUG)
    process.stderr.write(`visible ${visible}: ${clients.filter((c) => c.state === 'connected').length} connected\n`);
  if (visible < AGENTS) await new Promise((r) => setTimeout(r, 50));
}
const allVisibleMs = performance.now() - start;
const after = mem();

// Command round trips: sequential, spread over the agents.
const rtts: number[] = [];
for (let i = 0; i < COMMANDS; i++) {
  const t0 = performance.now();
  const reply = await sendCommand(operator, PREFIX, sims[i % AGENTS].host.agentId, 'status');
  rtts.push(performance.now() - t0);
  if (!reply.ok) throw new Error(`status failed: ${JSON.stringify(reply)}`);
}
rtts.sort((a, b) => a - b);

// Events: EVENTS spread over all agents at once, until the stream holds them all.
const jsm = await jetstreamManager(operator);
const base = (await jsm.streams.info(EVENTS_STREAM)).state.messages;
const t1 = performance.now();
for (let i = 0; i < EVENTS; i++) sims[i % AGENTS].events.emit('bench.event', `event ${i}`);
let stored = 0;
while (stored < EVENTS) {
  stored = (await jsm.streams.info(EVENTS_STREAM)).state.messages - base;
  if (stored < EVENTS) await new Promise((r) => setTimeout(r, 50));
}
const eventSeconds = (performance.now() - t1) / 1000;

const perAgentHeap = (after.heapUsed - before.heapUsed) / AGENTS;
const perAgentRss = (after.rss - before.rss) / AGENTS;
process.stdout.write(
  `fleet bench: ${AGENTS} simulated agents (real FleetClient, one NATS connection each) in one process, one nats-server 2.9\n` +
    `  all ${AGENTS} visible in the inventory (agent fleet ls) ${(allVisibleMs / 1000).toFixed(2)} s after start (goal 5 s)\n` +
    `  command round trip (status, ${COMMANDS} sequential): p50 ${percentile(rtts, 0.5).toFixed(2)} ms, p99 ${percentile(rtts, 0.99).toFixed(2)} ms (goal p99 < 100 ms)\n` +
    `  events into NGINX_AGENT_EVENTS: ${EVENTS} in ${eventSeconds.toFixed(2)} s = ${Math.round(EVENTS / eventSeconds)} events/s (stored and acknowledged)\n` +
    `  memory per simulated agent: heap ${(perAgentHeap / 1024).toFixed(1)} KB, RSS ${(perAgentRss / 1024).toFixed(1)} KB (process RSS ${mb(before.rss)} -> ${mb(after.rss)} MB${gc ? '' : '; run with --expose-gc for steadier figures'})\n`,
);

await Promise.all(clients.map((c) => c.stop(500)));
await operator.close();
await nats.stop();
