/**
 * The fleet client against real nats-server processes: commands through the route table, events
 * once each through a kill and restart of the server, permissions per agent, a three-node cluster.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { connect, nkeys, type NatsConnection } from '@nats-io/transport-node';
import pino from 'pino';
import { ApiError } from '../api/types.js';
import { Agent } from '../agent.js';
import { loadConfig } from '../config/load.js';
import { freePort, waitFor } from '../testing/nginx.js';
import { NATS_SERVER_BIN, startNatsCluster, TestNats } from '../testing/nats.js';
import { needTool } from '../testing/tools.js';
import { FleetClient, type FleetSettings } from './client.js';
import { commandCall, CommandError } from './commands.js';
import { unauthenticated } from './connection.js';
import { findAgent, listAgents, readEvents, sendCommand } from './operator.js';
import { Outbox } from './outbox.js';
import { simulatedAgent } from './simulated.js';
import { ensureEventsStream, inventoryBucket } from './streams.js';
import { agentPermissions, agentState, natsAuthorization, type InventoryEntry } from './subjects.js';

const skip = needTool('nats-server', 'nats-server');
const logger = pino({ level: process.env.FLEET_TEST_LOG ?? 'silent' });
const PREFIX = 'nginx_agent';

function settings(servers: string[], extra: Partial<FleetSettings> = {}): FleetSettings {
  return {
    ...unauthenticated(servers),
    name: '',
    subject_prefix: PREFIX,
    heartbeat_interval: 500,
    outbox_size: 10_000,
    ...extra,
  };
}

/** Event ids stored in the stream for one agent, in stream order. */
async function storedEventIds(nc: NatsConnection, agentId: string): Promise<number[]> {
  const ids: number[] = [];
  await readEvents(nc, PREFIX, { agentId, follow: false, onEvent: (e) => ids.push(Number(e.event.id)) });
  return ids;
}

/** How many events of the agent are stored; -1 while the operator's connection cannot tell (reconnecting). */
async function storedCount(nc: NatsConnection, agentId: string): Promise<number> {
  try {
    return (await storedEventIds(nc, agentId)).length;
  } catch {
    return -1;
  }
}

describe('command payloads', () => {
  test('each verb maps to its API route; unknown verbs and bad payloads are named', () => {
    assert.deepEqual(commandCall('status', {}), { method: 'GET', path: '/v1/status', body: '' });
    assert.equal(commandCall('nginx.config.get', { instance: 'a/b' }).path, '/v1/nginx/a%2Fb/config');
    assert.equal(commandCall('events.recent', { since: 3, limit: 2 }).path, '/v1/events?since=3&limit=2');
    const apply = commandCall('nginx.config.apply', { instance: 'x', files: [], dry_run: true });
    assert.equal(apply.path, '/v1/nginx/x/config?dry_run=true');
    assert.throws(() => commandCall('nginx.rm', {}), /unknown verb "nginx.rm"; known verbs: status/);
    assert.throws(() => commandCall('nginx.config.get', {}), /"instance" must be a non-empty string/);
    assert.throws(() => commandCall('status', { x: 1 }), CommandError);
    assert.throws(() => commandCall('events.recent', { limit: -1 }), /"limit" must be a non-negative integer/);
  });

  test('an agent silent for 3 heartbeats is lost; a stopped one says so', () => {
    const entry = {
      last_seen: new Date(10_000).toISOString(),
      heartbeat_interval_ms: 1000,
      state: 'online',
    } as InventoryEntry;
    assert.equal(agentState(entry, 12_999), 'online');
    assert.equal(agentState(entry, 13_001), 'lost');
    assert.equal(agentState({ ...entry, state: 'stopped' }, 99_999), 'stopped');
  });

  test('the outbox keeps order, returns failures to the head and drops the oldest past capacity', () => {
    const box = new Outbox<number>(3);
    for (const n of [1, 2, 3]) box.push(n);
    const taken = box.take(2);
    assert.deepEqual(taken, [1, 2]);
    box.push(4);
    box.putBack(taken);
    assert.equal(box.dropped, 1);
    assert.deepEqual(box.take(10), [2, 3, 4]);
  });
});

describe('fleet client with one nats-server', { skip }, () => {
  let nats: TestNats;
  let operator: NatsConnection;
  before(async () => {
    nats = await TestNats.start();
    // The operator outlives the 20 s outage below: nats.js gives up after 10 reconnect attempts 2 s
    // apart by default, and a closed operator connection would read nothing afterwards.
    operator = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 500 });
  });
  after(async () => {
    await operator?.close();
    await nats?.stop();
  });

  test('inventory, commands through the route table, and events once each across a server kill and restart', async () => {
    const sim = simulatedAgent({ agentId: 'agent-1', hostname: 'web1', labels: { env: 'test' }, logger });
    sim.routes.route('PUT', '/v1/nginx/:id/config', (req) => ({
      status: 200,
      body: { id: req.params.id, got: req.json() },
    }));
    sim.routes.route('GET', '/v1/nginx/:id/config', (req) => {
      throw new ApiError(404, `no nginx instance with id ${req.params.id}`);
    });
    const client = new FleetClient(settings([nats.url], { name: 'one' }), sim.host);
    client.start();
    try {
      await waitFor(async () => (await listAgents(operator)).length === 1, 'the agent in the inventory', 20_000);
      const row = findAgent(await listAgents(operator), 'one');
      assert.equal(row.host, 'web1');
      assert.deepEqual(row.labels, { env: 'test' });
      assert.equal(row.nginx[0].config_path, '/etc/nginx/nginx.conf');
      assert.equal(row.fleet_state, 'online');

      const status = await sendCommand(operator, PREFIX, 'agent-1', 'status');
      assert.equal(status.status, 200);
      assert.equal((status.body as { instance_id: string }).instance_id, 'agent-1');
      const applied = await sendCommand(operator, PREFIX, 'agent-1', 'nginx.config.apply', {
        instance: 'i1',
        files: [{ path: '/x', content: 'y' }],
      });
      assert.deepEqual(applied.body, { id: 'i1', got: { files: [{ path: '/x', content: 'y' }] } });
      const unknown = await sendCommand(operator, PREFIX, 'agent-1', 'nope' as 'status');
      assert.equal(unknown.status, 400);
      assert.match(String((unknown.body as { error: string }).error), /unknown verb "nope"/);
      const missing = await sendCommand(operator, PREFIX, 'agent-1', 'nginx.config.get', { instance: 'zz' });
      assert.equal(missing.status, 404);
      for (let i = 0; i < 3; i++) sim.events.emit('nginx.test');
      const recent = await sendCommand(operator, PREFIX, 'agent-1', 'events.recent', { since: 1 });
      assert.deepEqual(
        (recent.body as { events: { id: number }[] }).events.map((e) => e.id),
        [2, 3],
      );
      assert.deepEqual(
        sim.commands.map((c) => `${c.verb}:${c.outcome}`),
        ['status:ok', 'nginx.config.apply:ok', 'nope:error', 'nginx.config.get:error', 'events.recent:ok'],
      );

      // Events: 3 first, then steady traffic (one every 20 ms) through a kill of the server, a
      // 20 s outage (as the issue measures it) and a restart on the same store, then a last one:
      // each stored exactly once.
      await waitFor(async () => (await storedEventIds(operator, 'agent-1')).length === 3, 'the first 3 events');
      let traffic = true;
      const emitter = (async () => {
        while (traffic) {
          sim.events.emit('nginx.traffic');
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      await new Promise((r) => setTimeout(r, 300));
      await nats.kill();
      await waitFor(() => client.state === 'reconnecting', 'the client to notice the outage');
      await new Promise((r) => setTimeout(r, 20_000));
      assert.ok(Number(client.status().outbox) > 0, 'events wait in the outbox during the outage');
      await nats.restart();
      await waitFor(() => client.state === 'connected', 'the client to reconnect', 90_000);
      await new Promise((r) => setTimeout(r, 300));
      traffic = false;
      await emitter;
      const last = sim.events.emit('nginx.after').id;
      await waitFor(async () => (await storedCount(operator, 'agent-1')) >= last, `all ${last} events`, 90_000);
      const ids = await storedEventIds(operator, 'agent-1');
      assert.deepEqual(
        [...ids].sort((a, b) => a - b),
        Array.from({ length: last }, (_, i) => i + 1),
        'every event once',
      );
      assert.equal(client.status().reconnects, 1);
      const metrics = client.metrics().map((m) => m.name);
      assert.ok(metrics.includes('agent.fleet.events.published') && metrics.includes('agent.fleet.connected'));
    } finally {
      await client.stop();
    }
    const stopped = findAgent(await listAgents(operator), 'one');
    assert.equal(stopped.fleet_state, 'stopped');
  });
});

describe('fleet permissions (nats-server with per-agent users)', { skip }, () => {
  let nats: TestNats;
  let operator: NatsConnection;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fleet-auth-'));
    nats = await TestNats.start({
      extraConf: natsAuthorization(PREFIX, { user: 'operator', password: 'op-secret' }, [
        { user: 'a', password: 'a-secret', agentId: 'agent-a' },
        { user: 'b', password: 'b-secret', agentId: 'agent-b' },
      ]),
    });
    operator = await connect({ servers: nats.url, user: 'operator', pass: 'op-secret' });
  });
  after(async () => {
    await operator?.close();
    await nats?.stop();
  });

  test('an agent works with its own user, cannot act as another, and without credentials cannot connect', async () => {
    await writeFile(join(dir, 'a.pw'), 'a-secret\n');
    const simA = simulatedAgent({ agentId: 'agent-a', logger });
    // Agent A creates the stream and the bucket itself: its INFO and CREATE rights suffice.
    const clientA = new FleetClient(settings([nats.url], { user: 'a', password_file: join(dir, 'a.pw') }), simA.host);
    clientA.start();
    try {
      await waitFor(async () => (await listAgents(operator)).some((r) => r.id === 'agent-a'), 'A in the inventory');
      simA.events.emit('own.event');
      await waitFor(async () => (await storedEventIds(operator, 'agent-a')).length === 1, "A's event stored");
      assert.equal((await sendCommand(operator, PREFIX, 'agent-a', 'status')).status, 200);

      // A's credentials used to act as B.
      const asA = await connect({ servers: nats.url, user: 'a', pass: 'a-secret', inboxPrefix: '_INBOX_agent-a' });
      const errors: string[] = [];
      void (async () => {
        for await (const s of asA.status()) if (s.type === 'error') errors.push(s.error.message);
      })();
      asA.publish(`${PREFIX}.events.agent-b.forged`, '{}');
      asA.publish('$KV.nginx_agent_inventory.agent-b', '{}');
      asA.publish('_INBOX.someone-elses-request', '{}');
      const sub = asA.subscribe(`${PREFIX}.cmd.agent-b.>`);
      const subEnded = (async () => {
        try {
          for await (const _ of sub) {
            /* never gets one */
          }
          return 'ended';
        } catch (err) {
          return (err as Error).message;
        }
      })();
      await asA.flush();
      await waitFor(() => errors.length >= 3, 'three publish permission violations');
      for (const e of errors.slice(0, 3)) assert.match(e, /permissions violation for publish/i);
      assert.match(await subEnded, /permissions violation for subscription/i);
      await asA.close();
      assert.deepEqual(await storedEventIds(operator, 'agent-b'), [], 'nothing stored as B');
      await assert.rejects(sendCommand(operator, PREFIX, 'agent-b', 'status', {}, 2000), /does not answer/);

      await assert.rejects(
        connect({ servers: nats.url, maxReconnectAttempts: 0, reconnect: false }),
        /authorization violation/i,
      );
      await assert.rejects(
        connect({ servers: nats.url, user: 'a', pass: 'wrong', reconnect: false }),
        /authorization violation/i,
      );
    } finally {
      await clientA.stop();
    }
  });
});

describe('fleet with nkey authentication', { skip }, () => {
  test('fleet.nkey_seed_file authenticates the agent by signing the server nonce', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fleet-nkey-'));
    const pair = nkeys.createUser();
    const nats = await TestNats.start({
      extraConf: `authorization { users: [ { nkey: ${pair.getPublicKey()} } ] }`,
    });
    await writeFile(join(dir, 'agent.nk'), new TextDecoder().decode(pair.getSeed()));
    const sim = simulatedAgent({ agentId: 'agent-nk', logger });
    const client = new FleetClient(settings([nats.url], { nkey_seed_file: join(dir, 'agent.nk') }), sim.host);
    client.start();
    try {
      await waitFor(() => client.state === 'connected', 'the agent connected with its nkey');
      await assert.rejects(connect({ servers: nats.url, reconnect: false }), /authorization violation/i);
    } finally {
      await client.stop();
      await nats.stop();
    }
  });
});

/** A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl in `dir`. */
async function makeCertificates(dir: string): Promise<void> {
  const run = (args: string[]) => promisify(execFile)('openssl', args, { cwd: dir });
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run([
    'req',
    '-x509',
    ...key,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '1',
    '-subj',
    '/CN=fleet-test-ca',
  ]);
  await writeFile(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await writeFile(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, cn] of [
    ['server', '127.0.0.1'],
    ['client', 'agent'],
  ]) {
    await run(['req', ...key, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
    await run([
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '1',
      '-extfile',
      `${name}.ext`,
    ]);
  }
}

describe('fleet over mutual TLS', { skip: skip || needTool('openssl', 'openssl') }, () => {
  test('fleet.tls: the agent verifies the server with ca_file and presents cert_file; without a certificate a client is refused', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fleet-tls-'));
    await makeCertificates(dir);
    const nats = await TestNats.start({
      extraConf: `tls { cert_file: "${join(dir, 'server.pem')}", key_file: "${join(dir, 'server.key')}", ca_file: "${join(dir, 'ca.pem')}", verify: true }`,
    });
    const sim = simulatedAgent({ agentId: 'agent-tls', logger });
    const client = new FleetClient(
      settings([nats.url], {
        tls: { ca_file: join(dir, 'ca.pem'), cert_file: join(dir, 'client.pem'), key_file: join(dir, 'client.key') },
      }),
      sim.host,
    );
    client.start();
    try {
      await waitFor(() => client.state === 'connected', 'the agent connected over TLS');
      await assert.rejects(connect({ servers: nats.url, reconnect: false, tls: { caFile: join(dir, 'ca.pem') } }));
    } finally {
      await client.stop();
      await nats.stop();
    }
  });
});

describe('the sample config/nats/nats-server.conf', { skip }, () => {
  test('nats-server accepts it, and its agent block grants exactly agentPermissions()', async () => {
    const file = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'config', 'nats', 'nats-server.conf');
    const { stdout, stderr } = await promisify(execFile)(NATS_SERVER_BIN, ['-t', '-c', file], {
      env: { ...process.env, FLEET_OPERATOR_PASSWORD: 'x', FLEET_WEB1_PASSWORD: 'y' },
    });
    assert.match(stdout + stderr, /is valid/);
    const text = await readFile(file, 'utf8');
    const id = /nginx_agent\.cmd\.([0-9a-f-]+)\.>/.exec(text)?.[1] ?? '';
    const quoted = [...text.matchAll(/^\s+"([^"]+)",?$/gm)].map((m) => m[1]);
    const expected = agentPermissions(PREFIX, id);
    assert.deepEqual(quoted, [...expected.publish.allow, ...expected.subscribe.allow]);
    assert.match(text, /allow_responses: true/);
  });
});

describe('fleet with token authentication', { skip }, () => {
  test('fleet.token_file authenticates the agent; a wrong token is refused and the agent keeps retrying', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fleet-token-'));
    const nats = await TestNats.start({ extraConf: 'authorization { token: "s3cret-token" }' });
    await writeFile(join(dir, 'good'), 's3cret-token\n');
    await writeFile(join(dir, 'bad'), 'nope\n');
    const good = simulatedAgent({ agentId: 'agent-t1', logger });
    const bad = simulatedAgent({ agentId: 'agent-t2', logger });
    const goodClient = new FleetClient(settings([nats.url], { token_file: join(dir, 'good') }), good.host);
    const badClient = new FleetClient(settings([nats.url], { token_file: join(dir, 'bad') }), bad.host);
    goodClient.start();
    badClient.start();
    try {
      await waitFor(() => goodClient.state === 'connected', 'the agent with the right token connected');
      await waitFor(() => /authorization violation/i.test(String(badClient.status().last_error)), 'the refusal');
      assert.equal(badClient.state, 'connecting');
    } finally {
      await goodClient.stop();
      await badClient.stop();
      await nats.stop();
    }
  });
});

describe('fleet on a three-node cluster', { skip }, () => {
  test('with one node killed the agent goes on through the others', async () => {
    const nodes = await startNatsCluster();
    const urls = nodes.map((n) => n.url);
    let operator: NatsConnection | undefined;
    const sim = simulatedAgent({ agentId: 'agent-c', logger });
    const client = new FleetClient(settings(urls), sim.host);
    try {
      operator = await connect({ servers: urls });
      const op = operator;
      // Replicated over the three nodes, created by the operator before the agent comes.
      await waitFor(
        async () => {
          try {
            await ensureEventsStream(op, PREFIX, 3);
            await inventoryBucket(op, 3);
            return true;
          } catch {
            return false;
          }
        },
        'JetStream ready on the cluster',
        60_000,
      );
      client.start();
      await waitFor(() => client.state === 'connected', 'the agent connected');
      sim.events.emit('before');
      await waitFor(async () => (await storedEventIds(op, 'agent-c')).length === 1, 'the first event');
      const server = client.status().server as string;
      const victim = nodes.find((n) => server.endsWith(`:${n.port}`)) ?? nodes[0];
      await victim.kill();
      const killedAt = Date.now();
      for (let i = 0; i < 5; i++) sim.events.emit('during');
      await waitFor(
        async () => {
          return (await storedCount(op, 'agent-c')) === 6;
        },
        'the events through the remaining nodes',
        60_000,
      );
      const reply = await sendCommand(op, PREFIX, 'agent-c', 'status', {}, 10_000);
      assert.equal(reply.status, 200);
      // The inventory is written again after the kill (the bucket's stream may first elect a new leader).
      await waitFor(
        async () => {
          const rows = await listAgents(op).catch(() => []);
          return rows.some((r) => r.id === 'agent-c' && Date.parse(r.last_seen) > killedAt);
        },
        'an inventory write after the kill',
        60_000,
      );
    } finally {
      await client.stop();
      await operator?.close();
      for (const n of nodes) await n.stop();
    }
  });
});

describe('the fleet in an agent', { skip }, () => {
  const agentWith = (flags: { path: string; value: unknown }[]) =>
    new Agent({
      loaded: loadConfig({
        builtins: [],
        flags: [
          { path: 'wasm.enabled', value: false },
          { path: 'fleet.enabled', value: true },
          { path: 'fleet.heartbeat_interval', value: '500ms' },
          ...flags,
        ].map((f) => ({ ...f, flag: 'test' })),
        env: {},
        searchPaths: [],
      }),
      builtins: [],
      logger,
    });

  test('NATS unreachable: the agent starts and serves, and reports the fleet as connecting', async () => {
    const agent = agentWith([
      { path: 'api.port', value: 0 },
      { path: 'fleet.servers', value: [`nats://127.0.0.1:${await freePort()}`] },
    ]);
    await agent.start();
    try {
      const base = `http://127.0.0.1:${agent.apiAddress!.port}`;
      const health = await fetch(`${base}/health`);
      assert.equal(health.status, 200);
      assert.deepEqual(((await health.json()) as { fleet: unknown }).fleet, { state: 'connecting', server: null });
      const status = (await (await fetch(`${base}/v1/status`)).json()) as {
        fleet: { state: string; last_error?: string };
      };
      assert.equal(status.fleet.state, 'connecting');
      const metrics = await (await fetch(`${base}/metrics`)).text();
      assert.match(metrics, /^agent_fleet_connected 0$/m);
    } finally {
      await agent.stop();
    }
  });

  test('with api.enabled false, commands still run the API handlers in-process', async () => {
    const nats = await TestNats.start();
    const agent = agentWith([
      { path: 'api.enabled', value: false },
      { path: 'fleet.servers', value: [nats.url] },
      { path: 'fleet.name', value: 'no-api' },
    ]);
    const operator = await connect({ servers: nats.url });
    await agent.start();
    try {
      await waitFor(async () => (await listAgents(operator).catch(() => [])).length === 1, 'the agent listed');
      const row = findAgent(await listAgents(operator), 'no-api');
      assert.equal(row.id, agent.info.instanceId);
      const status = await sendCommand(operator, PREFIX, row.id, 'status');
      assert.equal(status.status, 200);
      assert.equal((status.body as { fleet: { state: string } }).fleet.state, 'connected');
      const recent = await sendCommand(operator, PREFIX, row.id, 'events.recent', { limit: 50 });
      assert.equal(recent.status, 200);
      // The first command is itself an event by now (fleet.command from the real events pipeline).
      await waitFor(
        async () =>
          (
            (await sendCommand(operator, PREFIX, row.id, 'events.recent', {})).body as { events: { kind: string }[] }
          ).events.some((e) => e.kind === 'fleet.command'),
        'fleet.command in the event log',
      );
      const bad = await sendCommand(operator, PREFIX, row.id, 'events.recent', { since: 'x' });
      assert.equal(bad.status, 400);
    } finally {
      await agent.stop();
      await operator.close();
      await nats.stop();
    }
  });
});
