import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApiServer } from '../api/server.js';
import { Bus } from '../bus/bus.js';
import { dashboardEnabled } from '../config/core-schema.js';
import { nullLogger } from '../logging.js';
import { MetricStore } from '../metrics/store.js';
import { announceInstances, trafficBatches } from '../testing/views-fixture.js';
import type { Summary } from './summary-types.js';
import { parseSince, Views } from './views.js';

const TOKEN = 'views-test-token';
const INSTANCES = 10;

describe('views with 10 fixture nginx instances, behind a token', () => {
  let bus: Bus;
  let views: Views;
  let api: ApiServer;
  let base: string;
  const auth = { Authorization: `Bearer ${TOKEN}` };

  before(async () => {
    bus = new Bus({ logger: nullLogger() });
    const store = new MetricStore();
    views = new Views({
      bus,
      store,
      info: {
        version: '9.9.9',
        startedAt: Date.now() - 3_723_000,
        hostname: 'fixture-host',
        instanceId: 'x',
        labels: {},
      },
      plugins: () => [
        { name: 'nginx-status', kind: 'builtin', subscriptions: [], state: 'running' },
        { name: 'nginx-logs', kind: 'builtin', subscriptions: [], state: 'degraded', reason: 'cannot read a log' },
      ],
      state: () => 'running',
      intervalMs: 5000,
      dashboard: true,
    });
    announceInstances(bus, INSTANCES);
    await bus.drain(5000);
    const start = Date.now() - 60_000;
    for (let tick = 0; tick <= 12; tick++) {
      for (const b of trafficBatches(INSTANCES, tick)) store.apply(b);
      views.sample(start + tick * 5000);
    }
    api = new ApiServer({
      host: '127.0.0.1',
      port: 0,
      token: TOKEN,
      logger: nullLogger(),
      isPublic: (path) => path === '/' || path.startsWith('/dashboard/'),
    });
    views.routes(api);
    const address = await api.listen();
    base = `http://127.0.0.1:${address.port}`;
  });
  after(async () => {
    views?.stop();
    await api?.close();
  });

  test('the summary has every instance with traffic, status mix, p95, connections, config, certificates', () => {
    const s = views.summary();
    assert.equal(s.nginx.length, INSTANCES);
    for (const inst of s.nginx) {
      assert.equal(inst.up, true);
      assert.equal(inst.requests_per_second, 10);
      assert.deepEqual(inst.status_mix, { '2xx': 0.9, '3xx': 0.05, '4xx': 0.04, '5xx': 0.01 });
      assert.ok(inst.request_time_p95_seconds !== null && inst.request_time_p95_seconds > 0.025);
      assert.ok(inst.request_time_p50_seconds !== null && inst.request_time_p50_seconds <= 0.005);
      assert.deepEqual(inst.connections, { active: 1, reading: 2, writing: 3, waiting: 4 });
      assert.equal(inst.config.last_test?.ok, true);
      assert.equal(inst.config.findings.length, 1);
      assert.equal(inst.config.findings[0].line, 7);
      assert.equal(inst.certificates.length, 1);
      assert.ok(inst.certificates[0].days_left >= 9);
    }
    assert.equal(s.host.cpu_utilization, 0.2);
    assert.deepEqual(s.host.filesystem, { mountpoint: '/', utilization: 0.6 });
    assert.deepEqual(s.host.network_bytes_per_second, { receive: 2000, transmit: 1000 });
    assert.equal(s.history.points_per_series, 720);
    assert.equal(s.events_available, false);
  });

  test('GET /v1/summary and /v1/series need the token; / and its scripts do not', async () => {
    assert.equal((await fetch(`${base}/v1/summary`)).status, 401);
    assert.equal((await fetch(`${base}/v1/series?name=nginx.requests.rate`)).status, 401);
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    const html = await page.text();
    for (const src of html.matchAll(/(?:src|href)="(\/dashboard\/[^"]+)"/g)) {
      const res = await fetch(`${base}${src[1]}`);
      assert.equal(res.status, 200, src[1]);
      assert.ok((await res.arrayBuffer()).byteLength > 100, `${src[1]} has content`);
    }
    assert.doesNotMatch(html, /https?:\/\//, 'no outside URL (no CDN)');
    assert.equal((await fetch(`${base}/dashboard/..%2F..%2Fpackage.json`)).status, 404);
    const summary = (await (await fetch(`${base}/v1/summary`, { headers: auth })).json()) as Summary;
    assert.equal(summary.nginx.length, INSTANCES);
  });

  test('GET /v1/series answers one series per instance, filters by instance and since, and names what it holds', async () => {
    const all = (await (await fetch(`${base}/v1/series?name=nginx.requests.rate`, { headers: auth })).json()) as {
      times: number[];
      series: { attributes: Record<string, string>; values: (number | null)[] }[];
    };
    assert.equal(all.series.length, INSTANCES);
    assert.equal(all.times.length, 13);
    assert.equal(all.series[0].values[0], null);
    assert.equal(all.series[0].values[12], 10);
    const one = (await (
      await fetch(`${base}/v1/series?name=nginx.responses.rate&instance=fixture000000003&since=20s`, { headers: auth })
    ).json()) as typeof all;
    assert.equal(one.series.length, 4);
    assert.ok(one.series.every((s) => s.attributes['nginx.instance.id'] === 'fixture000000003'));
    assert.ok(one.times.length <= 5);
    const missing = await fetch(`${base}/v1/series`, { headers: auth });
    assert.equal(missing.status, 400);
    assert.match(((await missing.json()) as { error: string }).error, /nginx\.requests\.rate/);
    const bad = await fetch(`${base}/v1/series?name=x&since=yesterday`, { headers: auth });
    assert.equal(bad.status, 400);
  });
});

test('parseSince takes Unix ms, RFC 3339 and durations back from now', () => {
  assert.equal(parseSince(null), 0);
  assert.equal(parseSince('1700000000000'), 1_700_000_000_000);
  assert.equal(parseSince('2024-01-01T00:00:00Z'), Date.parse('2024-01-01T00:00:00Z'));
  assert.equal(parseSince('15m', 1_000_000), 100_000);
});

test('api.dashboard auto is on only on loopback', () => {
  assert.equal(dashboardEnabled('auto', '127.0.0.1'), true);
  assert.equal(dashboardEnabled('auto', '::1'), true);
  assert.equal(dashboardEnabled('auto', 'localhost'), true);
  assert.equal(dashboardEnabled('auto', '0.0.0.0'), false);
  assert.equal(dashboardEnabled('auto', '10.0.0.5'), false);
  assert.equal(dashboardEnabled(true, '0.0.0.0'), true);
  assert.equal(dashboardEnabled(false, '127.0.0.1'), false);
});

/** Views over a bus of their own, with no plugins and no metrics: for what the bus alone tells them. */
function plainViews(): { bus: Bus; views: Views } {
  const bus = new Bus({ logger: nullLogger() });
  const views = new Views({
    bus,
    store: new MetricStore(),
    info: { version: '1', startedAt: Date.now(), hostname: 'h', instanceId: 'x', labels: {} },
    plugins: () => [],
    state: () => 'running',
    intervalMs: 5000,
    dashboard: false,
  });
  return { bus, views };
}

test('an nginx instance that went away shows as gone, then leaves the summary after 5 minutes', async () => {
  const { bus, views } = plainViews();
  const [first] = announceInstances(bus, 2);
  bus.publish('nginx.instance.removed', { instance: first });
  await bus.drain(5000);
  assert.equal(views.summary().nginx.find((i) => i.id === first.id)?.health, 'gone');
  views.sample(Date.now() + 6 * 60_000);
  assert.deepEqual(
    views.summary().nginx.map((i) => i.id),
    ['fixture000000001'],
  );
  views.stop();
});

test('the summary merges nginx.access.top of an instance’s logs into its top 10 URIs, with share and 5xx', async () => {
  const { bus, views } = plainViews();
  const [first, second] = announceInstances(bus, 2);
  const uris = (n: number, offset = 0) =>
    Array.from({ length: n }, (_, i) => ({ uri: `/u${i + offset}`, requests: 100 - i - offset, errors5xx: i % 2 }));
  bus.publish('nginx.access.top', {
    instanceId: first.id,
    logPath: '/var/log/nginx/a.log',
    windowSeconds: 60,
    requests: 1000,
    uris: uris(12),
  });
  bus.publish('nginx.access.top', {
    instanceId: first.id,
    logPath: '/var/log/nginx/b.log',
    windowSeconds: 60,
    requests: 200,
    uris: [{ uri: '/u11', requests: 150, errors5xx: 3 }],
  });
  await bus.drain(5000);
  const s = views.summary();
  const top = s.nginx.find((i) => i.id === first.id)?.top_uris;
  assert.ok(top);
  assert.equal(top.requests, 1200);
  assert.equal(top.window_seconds, 60);
  assert.deepEqual(top.logs, ['/var/log/nginx/a.log', '/var/log/nginx/b.log']);
  assert.equal(top.uris.length, 10);
  // /u11: 89 in a.log + 150 in b.log comes first.
  assert.deepEqual(top.uris[0], { uri: '/u11', requests: 239, share: 0.1992, errors_5xx: 4 });
  assert.deepEqual(top.uris[1], { uri: '/u0', requests: 100, share: 0.0833, errors_5xx: 0 });
  assert.equal(
    s.nginx.find((i) => i.id === second.id)?.top_uris,
    null,
    'no access log with the request: null, not an empty list',
  );
  // A log that stopped publishing is forgotten after twice its window.
  assert.equal(views.summary(Date.now() + 3 * 60_000).nginx.find((i) => i.id === first.id)?.top_uris, null);
  views.stop();
});
