import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import type { Message } from '../topics.js';
import { Bus } from './bus.js';
import { compilePattern } from './pattern.js';

const batch = (source: string) => ({ source, time: 0, metrics: [] });
const tick = () => new Promise((r) => setImmediate(r));

describe('topic patterns', () => {
  test('exact, trailing wildcard, inner wildcard and *', () => {
    assert.equal(compilePattern('metrics')('metrics'), true);
    assert.equal(compilePattern('metrics')('metrics.x'), false);
    assert.equal(compilePattern('nginx.*')('nginx.instance.added'), true);
    assert.equal(compilePattern('nginx.*')('nginxx'), false);
    assert.equal(compilePattern('nginx.*.added')('nginx.instance.added'), true);
    assert.equal(compilePattern('nginx.*.added')('nginx.instance.removed'), false);
    assert.equal(compilePattern('*')('anything.at.all'), true);
  });
  test('a malformed pattern is a clear error', () => {
    assert.throws(() => compilePattern('nginx instance'), /invalid topic pattern "nginx instance"/);
    assert.throws(() => compilePattern(''), /invalid topic pattern ""/);
  });
});

describe('bus', () => {
  test('delivers in publish order per subscriber, only matching topics', async () => {
    const bus = new Bus();
    const seen: string[] = [];
    const all: string[] = [];
    bus.subscribe('metrics-only', ['metrics'], (m) => {
      if (m.topic === 'metrics') seen.push(m.data.source);
    });
    bus.subscribe('everything', ['*'], (m) => void all.push(m.topic));
    for (let i = 0; i < 100; i++) bus.publish('metrics', batch(String(i)));
    bus.publish('alert.test', { x: 1 });
    assert.deepEqual(seen, [], 'publish does not run handlers on its stack');
    assert.equal(await bus.drain(1000), true);
    assert.deepEqual(
      seen,
      Array.from({ length: 100 }, (_, i) => String(i)),
    );
    assert.equal(all.length, 101);
    assert.equal(all[100], 'alert.test');
  });

  test('async handlers are awaited: order kept, one at a time', async () => {
    const bus = new Bus();
    const order: number[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    bus.subscribe('slow', ['metrics'], async (m) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, Math.random() * 3));
      if (m.topic === 'metrics') order.push(Number(m.data.source));
      inFlight--;
    });
    for (let i = 0; i < 30; i++) bus.publish('metrics', batch(String(i)));
    assert.equal(await bus.drain(5000), true);
    assert.deepEqual(
      order,
      Array.from({ length: 30 }, (_, i) => i),
    );
    assert.equal(maxInFlight, 1);
  });

  test('a slow subscriber does not delay the others', async () => {
    const bus = new Bus();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let fast = 0;
    bus.subscribe('stuck', ['metrics'], () => gate);
    bus.subscribe('fast', ['metrics'], () => void fast++);
    for (let i = 0; i < 50; i++) bus.publish('metrics', batch('x'));
    await tick();
    await tick();
    assert.equal(fast, 50);
    const stuck = bus.stats().subscribers.find((s) => s.name === 'stuck')!;
    assert.equal(stuck.queueDepth, 49);
    release();
    assert.equal(await bus.drain(1000), true);
  });

  test('a throwing subscriber is counted and keeps receiving; others are unaffected', async () => {
    const bus = new Bus();
    const got: string[] = [];
    let ok = 0;
    bus.subscribe('flaky', ['metrics'], (m) => {
      if (m.topic === 'metrics' && m.data.source === 'bad') throw new Error('boom');
      got.push(m.topic);
    });
    bus.subscribe('rejecting', ['metrics'], async () => {
      throw new Error('async boom');
    });
    bus.subscribe('ok', ['metrics'], () => void ok++);
    bus.publish('metrics', batch('bad'));
    bus.publish('metrics', batch('good'));
    bus.publish('metrics', batch('bad'));
    bus.publish('metrics', batch('good'));
    assert.equal(await bus.drain(1000), true);
    const st = Object.fromEntries(bus.stats().subscribers.map((s) => [s.name, s]));
    assert.equal(got.length, 2);
    assert.equal(st.flaky.errors, 2);
    assert.equal(st.flaky.delivered, 4);
    assert.equal(st.rejecting.errors, 4);
    assert.equal(ok, 4);
  });

  test('overflow drop_oldest keeps the newest and counts the drops', async () => {
    const bus = new Bus({ queueSize: 4 });
    const got: string[] = [];
    bus.subscribe('s', ['metrics'], (m) => {
      if (m.topic === 'metrics') got.push(m.data.source);
    });
    for (let i = 0; i < 10; i++) bus.publish('metrics', batch(String(i)));
    await bus.drain(1000);
    assert.deepEqual(got, ['6', '7', '8', '9']);
    assert.equal(bus.stats().subscribers[0].dropped, 6);
  });

  test('overflow drop_newest keeps the oldest and counts the drops', async () => {
    const bus = new Bus();
    const got: string[] = [];
    bus.subscribe(
      's',
      ['metrics'],
      (m) => {
        if (m.topic === 'metrics') got.push(m.data.source);
      },
      { queueSize: 3, overflow: 'drop_newest' },
    );
    for (let i = 0; i < 10; i++) bus.publish('metrics', batch(String(i)));
    await bus.drain(1000);
    assert.deepEqual(got, ['0', '1', '2']);
    assert.equal(bus.stats().subscribers[0].dropped, 7);
  });

  test('stats count published, unrouted and delivered; unsubscribe counts what it discards', async () => {
    const bus = new Bus();
    const sub = bus.subscribe('a', ['nginx.*'], () => undefined);
    bus.publish('metrics', batch('x'));
    bus.publish('nginx.log.error', { instanceId: 'i', file: 'f', level: 'crit', message: 'm', time: 0 });
    await bus.drain(1000);
    bus.publish('nginx.log.error', { instanceId: 'i', file: 'f', level: 'crit', message: 'm', time: 0 });
    const st = bus.stats();
    assert.equal(st.published, 3);
    assert.equal(st.unrouted, 1);
    assert.equal(st.subscribers[0].delivered, 1);
    assert.equal(st.subscribers[0].queueDepth, 1);
    sub.unsubscribe();
    assert.equal(bus.stats().subscribers.length, 0);
    assert.throws(() => {
      bus.subscribe('b', ['x'], () => undefined);
      bus.subscribe('b', ['y'], () => undefined);
    }, /already exists/);
  });

  test('drain reports false when a handler outlives the deadline', async () => {
    const bus = new Bus();
    bus.subscribe('never', ['metrics'], () => new Promise<void>(() => undefined));
    bus.publish('metrics', batch('x'));
    assert.equal(await bus.drain(50), false);
  });

  test('handlers receive typed payloads (compile-time check)', () => {
    const handler = (m: Message): number => (m.topic === 'nginx.instance.added' ? m.data.instance.pid : 0);
    assert.equal(handler({ topic: 'alert.x', time: 0, data: {} }), 0);
  });
});

test('a paused subscription queues messages and delivers them in order on resume', async () => {
  const bus = new Bus();
  const got: string[] = [];
  const sub = bus.subscribe(
    'late',
    ['metrics'],
    (m) => {
      if (m.topic === 'metrics') got.push(m.data.source);
    },
    { paused: true },
  );
  bus.publish('metrics', batch('a'));
  bus.publish('metrics', batch('b'));
  await tick();
  await tick();
  assert.deepEqual(got, []);
  sub.resume();
  assert.equal(await bus.drain(1000), true);
  assert.deepEqual(got, ['a', 'b']);
});
