import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { gauge } from './model.js';
import { MetricStore } from './store.js';

const up = (v: number) => [gauge({ name: 'x.up', unit: '1', description: 'Up.' }, [{ attributes: {}, value: v }])];

test('a source that declared its interval is dropped after 3 intervals without a batch (at least 2 s)', () => {
  let clock = 0;
  const stale: string[] = [];
  const store = new MetricStore({
    now: () => clock,
    onStale: (s, silent, interval) => stale.push(`${s} ${silent} ${interval}`),
  });
  store.apply({ source: 'timed', time: 0, metrics: up(1), interval: 1000 });
  store.apply({ source: 'events', time: 0, metrics: up(2) });
  store.apply({ source: 'fast', time: 0, metrics: up(3), interval: 100 });
  const v0 = store.version();
  clock = 2000;
  assert.deepEqual(store.sources(), ['events', 'fast', 'timed'], 'a fast source is given 2 s');
  clock = 3000;
  assert.deepEqual(store.sources(), ['events', 'timed'], 'still within 3 intervals');
  clock = 3001;
  assert.deepEqual(store.sources(), ['events'], 'a source without an interval is never stale');
  assert.notEqual(store.version(), v0, 'dropping changes the version, so /metrics renders again');
  assert.deepEqual(stale, ['fast 3000 100', 'timed 3001 1000']);
  assert.deepEqual(
    store.snapshot().flatMap((m) => m.points.map((p) => (p as { value: number }).value)),
    [2],
  );
  // It comes back with its next batch.
  store.apply({ source: 'timed', time: clock, metrics: up(1), interval: 1000 });
  assert.deepEqual(store.sources(), ['events', 'timed']);
});

test('every batch counts as hearing from a source; drop() forgets one at once', () => {
  let clock = 0;
  const store = new MetricStore({ now: () => clock });
  for (; clock <= 10_000; clock += 900) store.apply({ source: 'timed', time: clock, metrics: up(1), interval: 1000 });
  assert.deepEqual(store.sources(), ['timed']);
  const v = store.version();
  assert.equal(store.drop('timed'), true);
  assert.equal(store.drop('timed'), false);
  assert.deepEqual(store.sources(), []);
  assert.ok(store.version() > v);
});

test('publishedSnapshot: the named metrics as snapshot() merges them, without running the collectors', () => {
  const store = new MetricStore();
  let collected = 0;
  store.addCollector(() => {
    collected++;
    return [gauge({ name: 'agent.own', unit: '1', description: 'Own.' }, [{ attributes: {}, value: 1 }])];
  });
  const g = (name: string, value: number) =>
    gauge({ name, unit: '1', description: name }, [{ attributes: { k: 'v' }, value }]);
  store.apply({ source: 'a', time: 0, resource: { 'nginx.instance.id': 'i1' }, metrics: [g('x.up', 1), g('y', 2)] });
  store.apply({ source: 'b', time: 0, metrics: [g('x.up', 3), g('z', 4)] });
  const names = new Set(['x.up', 'z', 'agent.own', 'missing']);
  const full = store.snapshot().filter((m) => names.has(m.name) && m.name !== 'agent.own');
  assert.equal(collected, 1);
  assert.deepEqual(store.publishedSnapshot(names), full);
  assert.equal(collected, 1, 'collectors are not run');
  assert.deepEqual(
    store.publishedSnapshot(names).map((m) => [m.name, m.points.map((p) => p.attributes)]),
    [
      ['x.up', [{ 'nginx.instance.id': 'i1', k: 'v' }, { k: 'v' }]],
      ['z', [{ k: 'v' }]],
    ],
  );
});
