import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { RouteTable } from '../api/router.js';
import { Bus } from '../bus/bus.js';
import { bool, int, object } from '../config/schema.js';
import type { Logger } from 'pino';
import { nullLogger } from '../logging.js';
import { MetricStore } from '../metrics/store.js';
import type { Message } from '../topics.js';
import { defineBuiltin } from './builtin.js';
import { PluginHost } from './host.js';
import type { PluginContext } from './types.js';

const schema = object({ enabled: bool({ default: true }), n: int({ default: 1 }) });
type Cfg = { enabled: boolean; n: number };

function setup({ logger = nullLogger(), store = new MetricStore() }: { logger?: Logger; store?: MetricStore } = {}) {
  const bus = new Bus();
  const host = new PluginHost({
    bus,
    logger,
    api: new RouteTable(),
    store,
    agent: { version: 't', startedAt: 0, hostname: 'h' },
  });
  return { bus, host };
}

/** Starts a plugin `flaky` whose status is running, then degraded (upstream gone) for three reports, then running for three. */
async function degradeAndRecover(host: PluginHost): Promise<void> {
  let state: 'running' | 'degraded' = 'running';
  const flaky = defineBuiltin({
    name: 'flaky',
    description: '',
    schema,
    create: () => ({
      name: 'flaky',
      subscriptions: () => [],
      init() {},
      close() {},
      status: () => ({ state, ...(state === 'degraded' ? { reason: 'upstream gone' } : {}) }),
    }),
  });
  await host.startBuiltins([flaky], { flaky: { enabled: true, n: 1 } } as never);
  host.report();
  state = 'degraded';
  for (let i = 0; i < 3; i++) host.report();
  state = 'running';
  for (let i = 0; i < 3; i++) host.report();
}

test('every plugin is subscribed before any init: a message published during start-up reaches a later plugin', async () => {
  const { bus, host } = setup();
  const seen: string[] = [];
  const source = defineBuiltin({
    name: 'source',
    description: '',
    schema,
    create: () => ({
      name: 'source',
      subscriptions: () => [],
      init: (ctx: PluginContext<Cfg>) => ctx.bus.publish('alert.started', { by: 'source' }),
      close() {},
    }),
  });
  const sink = defineBuiltin({
    name: 'sink',
    description: '',
    schema,
    create: () => ({
      name: 'sink',
      subscriptions: () => ['alert.*'],
      init: () => new Promise<void>((r) => setTimeout(r, 20)),
      process: (m: Message) => void seen.push(m.topic),
      close() {},
    }),
  });
  await host.startBuiltins([source, sink], { source: { enabled: true, n: 1 }, sink: { enabled: true, n: 1 } } as never);
  await bus.drain(1000);
  assert.deepEqual(seen, ['alert.started']);
});

test('a plugin whose init throws is left out and the others run; disabled ones are not created', async () => {
  const { bus, host } = setup();
  let created = 0;
  const bad = defineBuiltin({
    name: 'bad',
    description: '',
    schema,
    create: () => ({
      name: 'bad',
      subscriptions: () => ['*'],
      process() {},
      init() {
        throw new Error('no socket');
      },
      close() {},
    }),
  });
  const good = defineBuiltin({
    name: 'good',
    description: '',
    schema,
    create: () => ({ name: 'good', subscriptions: () => [], init() {}, close() {} }),
  });
  const off = defineBuiltin({
    name: 'off',
    description: '',
    schema,
    create: () => (created++, { name: 'off', subscriptions: () => [], init() {}, close() {} }),
  });
  await host.startBuiltins([bad, good, off], {
    bad: { enabled: true },
    good: { enabled: true },
    off: { enabled: false },
  } as never);
  const r = Object.fromEntries(host.report().map((p) => [p.name, p]));
  assert.equal(r.bad.state, 'failed');
  assert.equal(r.bad.reason, 'no socket');
  assert.equal(r.good.state, 'running');
  assert.equal(r.off, undefined);
  assert.equal(created, 0);
  assert.deepEqual(
    bus.stats().subscribers.map((s) => s.name),
    [],
    'the failed plugin no longer holds a queue',
  );
});

test('reconfigure: reconfigure() when present, restart otherwise, disable and enable', async () => {
  const { host } = setup();
  const log: string[] = [];
  const withReconf = defineBuiltin({
    name: 'a',
    description: '',
    schema,
    create: () => ({
      name: 'a',
      subscriptions: () => [],
      init: (c: PluginContext<Cfg>) => void log.push(`a init ${c.config.n}`),
      reconfigure: (c: Cfg) => void log.push(`a reconf ${c.n}`),
      close: () => void log.push('a close'),
    }),
  });
  const plain = defineBuiltin({
    name: 'b',
    description: '',
    schema,
    create: () => ({
      name: 'b',
      subscriptions: () => [],
      init: (c: PluginContext<Cfg>) => void log.push(`b init ${c.config.n}`),
      close: () => void log.push('b close'),
    }),
  });
  await host.startBuiltins([withReconf, plain], { a: { enabled: true, n: 1 }, b: { enabled: true, n: 1 } } as never);
  await host.reconfigure({ a: { enabled: true, n: 2 }, b: { enabled: true, n: 2 } } as never, ['a', 'b']);
  await host.reconfigure({ a: { enabled: false, n: 2 }, b: { enabled: true, n: 2 } } as never, ['a']);
  await host.reconfigure({ a: { enabled: true, n: 3 }, b: { enabled: true, n: 2 } } as never, ['a']);
  assert.deepEqual(log, ['a init 1', 'b init 1', 'a reconf 2', 'b close', 'b init 2', 'a close', 'a init 3']);
});

test('closeAll aborts signals first and bounds a plugin that never closes', async () => {
  const { host } = setup();
  let aborted = false;
  const hang = defineBuiltin({
    name: 'hang',
    description: '',
    schema,
    create: () => ({
      name: 'hang',
      subscriptions: () => [],
      init: (c: PluginContext<Cfg>) => c.signal.addEventListener('abort', () => (aborted = true)),
      close: () => new Promise<void>(() => undefined),
    }),
  });
  await host.startBuiltins([hang], { hang: { enabled: true } } as never);
  host.stopSources();
  assert.equal(aborted, true);
  const t0 = Date.now();
  await host.closeAll(100);
  assert.ok(Date.now() - t0 < 2000, 'closeAll returned although close() never resolved');
  assert.deepEqual(host.report(), []);
});

test("a closed plugin's metric sources leave the store; what it publishes after close is dropped", async () => {
  const store = new MetricStore();
  const { bus, host } = setup({ store });
  bus.subscribe('store', ['metrics'], (m) => {
    if (m.topic === 'metrics') store.apply(m.data);
  });
  let late: (() => void) | undefined;
  const batch = (source: string) => ({ source, time: 0, metrics: [] });
  const meter = defineBuiltin({
    name: 'meter',
    description: '',
    schema,
    create: () => ({
      name: 'meter',
      subscriptions: () => [],
      init: (ctx: PluginContext<Cfg>) => {
        ctx.bus.publish('metrics', batch('meter:a'));
        ctx.bus.publish('metrics', batch('meter:b'));
        ctx.bus.publish('metrics', { ...batch('meter:b'), final: true });
        ctx.bus.publish('metrics', batch('meter:c'));
        late = () => ctx.bus.publish('metrics', batch('meter:late'));
      },
      close() {},
    }),
  });
  const other = defineBuiltin({
    name: 'other',
    description: '',
    schema,
    create: () => ({
      name: 'other',
      subscriptions: () => [],
      init: (ctx: PluginContext<Cfg>) => ctx.bus.publish('metrics', batch('other')),
      close() {},
    }),
  });
  const config = { meter: { enabled: true, n: 1 }, other: { enabled: true, n: 1 } };
  await host.startBuiltins([meter, other], config as never);
  await bus.drain(1000);
  assert.deepEqual(store.sources(), ['meter:a', 'meter:c', 'other']);
  // SIGHUP switched it off.
  await host.reconfigure({ ...config, meter: { enabled: false, n: 1 } } as never, ['meter']);
  late?.();
  await bus.drain(1000);
  assert.deepEqual(store.sources(), ['other']);
  await host.closeAll(1000);
});

test('a degraded plugin is one warn line when it starts and one info line when it ends', async () => {
  const lines: { level: number; msg: string }[] = [];
  const { default: pino } = await import('pino');
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const { host } = setup({ logger });
  await degradeAndRecover(host);
  await host.closeAll(1000);
  const about = lines.filter((l) => /flaky is/.test(l.msg)).map((l) => [l.level, l.msg]);
  assert.deepEqual(about, [
    [40, 'plugin flaky is degraded: upstream gone'],
    [30, 'plugin flaky is running again (was degraded)'],
  ]);
});

test("a built-in's degraded and recovered states are published on agent.plugin.state, once each", async () => {
  const { bus, host } = setup();
  const seen: unknown[] = [];
  bus.subscribe('recorder', ['agent.plugin.state'], (m) => void seen.push(m.data));
  await degradeAndRecover(host);
  await bus.drain(1000);
  await host.closeAll(1000);
  assert.deepEqual(seen, [
    { plugin: 'flaky', state: 'degraded', reason: 'upstream gone' },
    { plugin: 'flaky', state: 'running' },
  ]);
});
