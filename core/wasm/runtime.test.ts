import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { capMemory } from './module.js';
import type { LoadSpec } from './protocol.js';
import { WasmRuntime } from './runtime.js';
import { compileFixture } from './testing.js';

const spec = (id: string, wasm: Uint8Array<ArrayBuffer>): LoadSpec => ({
  id,
  name: id,
  abi: 'extism',
  wasm: capMemory(wasm, 32 << 20),
  config: {},
  publishes: ['event.echo.*'],
  allowedHosts: [],
  allowedPaths: {},
  useWasi: false,
  logLevel: 2,
  vars: {},
  varsMaxBytes: 1 << 20,
  httpTimeoutMs: 1000,
  httpMaxResponseBytes: 1 << 20,
  memoryBytes: 16 << 20,
  maxPublishesPerCall: 100,
});

describe('WasmRuntime', () => {
  it('a worker that keeps dying is given up after a few restarts instead of looping', async () => {
    const logs: Record<string, unknown>[] = [];
    // A 1 MB V8 heap cannot even load the SDK: every worker dies at start.
    const rt = new WasmRuntime({
      logger: pino({ level: 'warn' }, { write: (s: string) => void logs.push(JSON.parse(s)) }),
      heapMb: 1,
    });
    const wasm = await compileFixture('echo');
    // Each load dies with its worker; the sixth death in a row makes the runtime give up.
    for (let i = 1; i <= 5; i++)
      await assert.rejects(
        rt.load(spec('echo', wasm), 10_000),
        /the plugin worker died while loading: the worker exited/,
      );
    await assert.rejects(
      rt.load(spec('echo', wasm), 10_000),
      /the Wasm plugin worker died 6 times in a row .*Wasm plugins stay stopped until the agent restarts/,
    );
    const r = await rt.call('echo', '{"messages":[]}', 1000);
    assert.equal(r.ok, false);
    assert.equal(r.crashed, true, 'later calls end at once');
    assert.match(String(r.error), /the plugin runtime is closed/);
    assert.ok(logs.some((l) => /died 6 times in a row/.test(String(l.msg))));
  });

  it('serves plugins in turn: calls queued behind a looping plugin wait one call, not its backlog', async () => {
    const rt = new WasmRuntime({ logger: pino({ level: 'silent' }) });
    await rt.load(spec('loop', await compileFixture('loop')), 10_000);
    await rt.load(spec('echo', await compileFixture('echo')), 10_000);
    const order: string[] = [];
    const calls = [
      ...[1, 2, 3].map(() =>
        rt.call('loop', '{"messages":[]}', 200).then((r) => void order.push(r.ok ? 'loop ok' : 'loop timeout')),
      ),
      rt.call('echo', '{"messages":[]}', 1000).then((r) => void order.push(r.ok ? 'echo ok' : 'echo failed')),
    ];
    await Promise.all(calls);
    assert.deepEqual(order, ['loop timeout', 'echo ok', 'loop timeout', 'loop timeout']);
    assert.equal(rt.restarts, 3);
    await rt.close();
  });

  it('sends the calls of several plugins made in one turn in one round, one call per plugin a round', async () => {
    const rt = new WasmRuntime({ logger: pino({ level: 'silent' }) });
    const echo = await compileFixture('echo');
    for (const id of ['a', 'b', 'c']) await rt.load(spec(id, echo), 10_000);
    const before = rt.rounds;
    const input = (n: number) => JSON.stringify({ messages: [{ topic: 'event.echo.x', time: 1, data: { n } }] });
    const rs = await Promise.all([
      rt.call('a', input(1), 1000),
      rt.call('b', input(2), 1000),
      rt.call('c', input(3), 1000),
    ]);
    assert.deepEqual(
      rs.map((r) => r.ok),
      [true, true, true],
    );
    assert.equal(rt.rounds - before, 1, 'one message to the worker for the three calls');
    // Two calls of one plugin: two rounds (a plugin's backlog never holds the others back more than one call).
    const mid = rt.rounds;
    await Promise.all([rt.call('a', input(4), 1000), rt.call('a', input(5), 1000), rt.call('b', input(6), 1000)]);
    assert.equal(rt.rounds - mid, 2);
    await rt.close();
  });

  it('a call that times out in a round ends alone: the calls after it in the round run in the new worker', async () => {
    const rt = new WasmRuntime({ logger: pino({ level: 'silent' }) });
    await rt.load(spec('echo', await compileFixture('echo')), 10_000);
    await rt.load(spec('loop', await compileFixture('loop')), 10_000);
    const input = JSON.stringify({ messages: [{ topic: 'event.echo.x', time: 1, data: { n: 1 } }] });
    // Same turn: one round [echo, loop, echo2]; echo answers, loop runs past 300 ms, the rest goes again.
    await rt.load(spec('echo2', await compileFixture('echo')), 10_000);
    const t0 = performance.now();
    const [a, loop, b] = await Promise.all([
      rt.call('echo', input, 1000),
      rt.call('loop', input, 300),
      rt.call('echo2', input, 1000),
    ]);
    assert.equal(a.ok, true);
    assert.equal(loop.ok, false);
    assert.equal('timeout' in loop && loop.timeout, true);
    // Its own timer: from its start, not from the round's (echo's time is not counted against it).
    assert.ok(loop.ms >= 300 && loop.ms < 1000, `loop ran ${loop.ms} ms`);
    assert.equal(b.ok, true, `echo2 after the timeout: ${b.error}`);
    assert.equal(rt.restarts, 1);
    assert.ok(performance.now() - t0 < 5000);
    await rt.close();
  });
});
