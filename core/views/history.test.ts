import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { counter, gauge, histogram } from '../metrics/model.js';
import type { StoredMetric } from '../metrics/store.js';
import { HistoryStore } from './history.js';
import { quantile, SERIES, SeriesSampler } from './sampler.js';

describe('HistoryStore', () => {
  test('keeps capacity = window / interval points per series, oldest first, and answers from since on', () => {
    const h = new HistoryStore({ intervalMs: 1000, windowMs: 5000, maxSeries: 10 });
    assert.equal(h.capacity, 5);
    for (let t = 1; t <= 8; t++) h.record(t * 1000, [{ name: 'a', attributes: { x: '1' }, value: t }]);
    const all = h.query('a');
    assert.deepEqual(all.times, [4000, 5000, 6000, 7000, 8000]);
    assert.deepEqual(all.series[0].values, [4, 5, 6, 7, 8]);
    assert.deepEqual(h.query('a', 6500).series[0].values, [7, 8]);
    assert.equal(h.latest('a', { x: '1' }), 8);
    assert.deepEqual(h.values('a', { x: '1' }, 7000), [7, 8]);
  });

  test('a series missing from a tick has null there, and is forgotten after a whole window without values', () => {
    const h = new HistoryStore({ intervalMs: 1000, windowMs: 3000, maxSeries: 10 });
    h.record(1000, [
      { name: 'a', attributes: {}, value: 1 },
      { name: 'b', attributes: {}, value: 1 },
    ]);
    h.record(2000, [{ name: 'a', attributes: {}, value: 2 }]);
    assert.deepEqual(h.query('b').series[0].values, [1, null]);
    h.record(3000, [{ name: 'a', attributes: {}, value: 3 }]);
    h.record(4000, [{ name: 'a', attributes: {}, value: 4 }]);
    assert.deepEqual(h.query('b').series, []);
    assert.deepEqual(h.names(), ['a']);
  });

  test('refuses series beyond maxSeries, counts them, and filters by attributes', () => {
    const h = new HistoryStore({ intervalMs: 1000, windowMs: 10_000, maxSeries: 2 });
    h.record(
      1000,
      ['i1', 'i2', 'i3'].map((id) => ({ name: 'r', attributes: { id }, value: 1 })),
    );
    assert.equal(h.stats().series, 2);
    assert.equal(h.stats().refusedSeries, 1);
    assert.equal(h.query('r', 0, { id: 'i2' }).series.length, 1);
    assert.equal(h.stats().ringBytes, 3 * 10 * 8);
  });

  test('non-finite values are not recorded', () => {
    const h = new HistoryStore({ intervalMs: 1000, windowMs: 10_000, maxSeries: 2 });
    h.record(1000, [{ name: 'a', attributes: {}, value: Number.NaN }]);
    assert.deepEqual(h.names(), []);
  });
});

const ID = { 'nginx.instance.id': 'abc' };

function snapshot(requests: number, ok: number, notFound: number, times: number[]): StoredMetric[] {
  const bounds = [0.001, 0.01, 0.1];
  const buckets = [0, 0, 0, 0];
  for (const t of times) buckets[bounds.findIndex((b) => t <= b) === -1 ? 3 : bounds.findIndex((b) => t <= b)]++;
  const metrics = [
    counter({ name: 'nginx.http.requests', unit: '{request}', description: '' }, [{ attributes: ID, value: requests }]),
    counter({ name: 'nginx.http.responses', unit: '{response}', description: '' }, [
      { attributes: { ...ID, status_range: '2xx', 'http.request.method': 'GET' }, value: ok },
      { attributes: { ...ID, status_range: '4xx', 'http.request.method': 'GET' }, value: notFound },
    ]),
    histogram({ name: 'nginx.http.request.time', unit: 's', description: '' }, [
      { attributes: ID, count: times.length, sum: times.reduce((a, b) => a + b, 0), bounds, buckets },
    ]),
    gauge({ name: 'nginx.http.connection.count', unit: '{connection}', description: '' }, [
      { attributes: { ...ID, outcome: 'active' }, value: 3 },
    ]),
    gauge({ name: 'system.cpu.utilization', unit: '1', description: '' }, [
      { attributes: { state: 'idle' }, value: 0.75 },
      { attributes: { state: 'user' }, value: 0.25 },
    ]),
    gauge({ name: 'system.filesystem.usage', unit: 'By', description: '' }, [
      { attributes: { mountpoint: '/', state: 'used' }, value: 30 },
      { attributes: { mountpoint: '/', state: 'free' }, value: 70 },
    ]),
  ];
  return metrics.map((m) => ({ ...m, points: [...m.points] }) as StoredMetric);
}

describe('SeriesSampler', () => {
  test('counters become per-second rates, histograms p50/p95 between samples, a reset gives no point', () => {
    const sampler = new SeriesSampler(60_000);
    assert.equal(sampler.sample(snapshot(100, 80, 20, []), 0).filter((s) => s.name === SERIES.requestRate).length, 0);
    const times = [...Array(90).fill(0.0005), ...Array(10).fill(0.05)];
    const second = sampler.sample(snapshot(200, 160, 40, times), 2000);
    const find = (name: string, attrs: Record<string, string> = {}) =>
      second.find((s) => s.name === name && Object.entries(attrs).every(([k, v]) => s.attributes[k] === v))?.value;
    assert.equal(find(SERIES.requestRate), 50);
    assert.equal(find(SERIES.responseRate, { status_range: '2xx' }), 40);
    assert.equal(find(SERIES.responseRate, { status_range: '4xx' }), 10);
    assert.ok((find(SERIES.requestTimeP50) ?? 1) <= 0.001);
    assert.ok((find(SERIES.requestTimeP95) ?? 0) > 0.01);
    assert.equal(find(SERIES.connections, { state: 'active' }), 3);
    assert.equal(find(SERIES.cpu), 0.25);
    assert.equal(find(SERIES.filesystem, { mountpoint: '/' }), 0.3);
    const q = sampler.quantilesOver('abc');
    assert.equal(q?.count, 100);
    // nginx restarted: counters went down
    const third = sampler.sample(snapshot(5, 4, 1, []), 4000);
    assert.equal(third.filter((s) => s.name === SERIES.requestRate).length, 0);
  });

  test('quantile interpolates within the bucket like histogram_quantile', () => {
    assert.equal(quantile({ bounds: [1, 2], buckets: [0, 10, 0], count: 10 }, 0.5), 1.5);
    assert.equal(quantile({ bounds: [1, 2], buckets: [0, 0, 10], count: 10 }, 0.5), 2);
  });
});
