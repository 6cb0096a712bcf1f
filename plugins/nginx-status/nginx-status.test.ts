import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Metric, NumberPoint } from '../../core/metrics/model.js';
import type { ConfigAnalysis, NginxConfigChanged, NginxInstance } from '../../core/nginx/types.js';
import { startPlugin, type PluginHarness } from '../../core/testing/plugin-harness.js';
import { needNginx, TestNginx } from '../../core/testing/nginx.js';
import { configChangedFixture, instanceFixture } from '../../core/testing/nginx-fixtures.js';
import { CounterTracker } from './counters.js';
import { plugin, type NginxStatusPlugin } from './index.js';
import { plusMetrics, readPlusApi } from './plus.js';
import { parseStubStatus, stubStatusMetrics } from './stub-status.js';

const here = import.meta.dirname;

describe('parseStubStatus', () => {
  test('reads the page as nginx writes it (trailing spaces on lines 1, 3, 4)', () => {
    const s = parseStubStatus(
      'Active connections: 1 \nserver accepts handled requests\n 5 5 5 \nReading: 0 Writing: 1 Waiting: 0 \n',
    );
    assert.deepEqual(s, { active: 1, accepted: 5, handled: 5, requests: 5, reading: 0, writing: 1, waiting: 0 });
  });

  test('accepts CRLF line ends and big numbers', () => {
    const s = parseStubStatus(
      'Active connections: 291\r\nserver accepts handled requests\r\n 16630948 16630948 31070465\r\nReading: 6 Writing: 179 Waiting: 106\r\n',
    );
    assert.equal(s.requests, 31070465);
    assert.equal(s.waiting, 106);
  });

  test('a page that is not stub_status gets an error saying what it was', () => {
    assert.throws(
      () => parseStubStatus('<html><head><title>404 Not Found</title></head></html>'),
      /not a stub_status page: expected "Active connections: N" on line 1, got "<html><head><title>404 Not Found/,
    );
    assert.throws(
      () =>
        parseStubStatus(
          'Active connections: 1\nserver accepts handled requests\n 5 5\nReading: 0 Writing: 1 Waiting: 0',
        ),
      /three numbers .* on line 3, got " ?5 5"/,
    );
    assert.throws(() => parseStubStatus(''), /line 1/);
  });
});

describe('counters: a value going backwards is a reset', () => {
  test('new start time, the new value as the interval delta, never negative', () => {
    const c = new CounterTracker(() => 1000);
    assert.deepEqual(c.read('x', {}, 100, 2000), { point: { attributes: {}, value: 100, startTime: 1000 } });
    assert.deepEqual(c.read('x', {}, 130, 3000), { point: { attributes: {}, value: 130, startTime: 1000 }, delta: 30 });
    assert.deepEqual(c.read('x', {}, 4, 4000), { point: { attributes: {}, value: 4, startTime: 4000 }, delta: 4 });
    assert.deepEqual(c.read('x', {}, 10, 5000), { point: { attributes: {}, value: 10, startTime: 4000 }, delta: 6 });
    assert.equal(c.resets, 1);
  });

  test('stub_status metrics: exact names, attributes, units; request.count from the second read', () => {
    const c = new CounterTracker(() => 0);
    const s = { active: 3, accepted: 10, handled: 9, requests: 20, reading: 1, writing: 1, waiting: 1 };
    const first = stubStatusMetrics(s, c, 1);
    assert.deepEqual(
      first.map((m) => `${m.name}:${m.type}:${m.unit}`),
      [
        'nginx.http.connections:counter:{connection}',
        'nginx.http.connection.count:gauge:{connection}',
        'nginx.http.requests:counter:{request}',
        'nginx.up:gauge:{status}',
      ],
    );
    assert.deepEqual(
      first[0].points.map((p) => p.attributes.outcome),
      ['accepted', 'handled'],
    );
    assert.deepEqual(
      first[1].points.map((p) => p.attributes.outcome),
      ['active', 'reading', 'writing', 'waiting'],
    );
    const second = stubStatusMetrics({ ...s, requests: 27 }, c, 2);
    assert.equal((second.find((m) => m.name === 'nginx.http.request.count')!.points[0] as NumberPoint).value, 7);
  });
});

/** One scrape, then wait until the bus delivered what it published to the store. */
async function scrape(h: PluginHarness, self: NginxStatusPlugin): Promise<void> {
  await self.scrapeAll();
  await h.bus.drain(2000);
}

const value = (m: Metric | undefined, attrs: Record<string, string> = {}): number | undefined => {
  const p = m?.points.find((x) => Object.entries(attrs).every(([k, v]) => x.attributes[k] === v));
  return p && 'value' in p ? p.value : undefined;
};

function instance(id: string, over: Partial<NginxInstance> = {}): NginxInstance {
  return instanceFixture({ id, pid: 1, version: '1.22.1', prefix: '/p', confPath: '/p/conf/nginx.conf', ...over });
}

function configChanged(id: string, analysis: Partial<ConfigAnalysis>): NginxConfigChanged {
  return configChangedFixture({ instanceId: id, confPath: '/p/conf/nginx.conf', prefix: '/p', analysis });
}

describe('stub_status of a real nginx', { skip: needNginx() }, () => {
  let n: TestNginx;
  let h: PluginHarness;
  before(async () => {
    n = await TestNginx.start();
    // A long interval: the test decides when a scrape happens, so it can count them.
    h = await startPlugin(plugin, { interval: '1h', forget_after: '1h' });
  });
  after(async () => {
    await h?.close();
    await n?.stop();
  });

  test('N requests -> nginx.http.requests grows by exactly N + 1 (the scrape itself); nginx.up 0 after stop, agent running', async () => {
    const self = h.host.get('nginx-status') as NginxStatusPlugin;
    const id = 'realnginx0000001';
    h.publish('nginx.instance.added', {
      instance: instance(id, { pid: await n.masterPid(), prefix: n.prefix, confPath: n.confPath }),
    });
    h.publish(
      'nginx.config.changed',
      configChanged(id, {
        stubStatus: [{ urls: ['http://127.0.0.1:1/nginx_status', n.url('/nginx_status')], file: n.confPath, line: 20 }],
      }),
    );
    await h.waitFor(
      () => value(h.metric('nginx.up'), { 'nginx.instance.id': id }) === 1,
      'nginx.up 1 after the config names stub_status',
    );
    assert.equal(
      (self.status().details!.targets as { url?: string }[])[0].url,
      n.url('/nginx_status'),
      'the URL that answered, after one that did not',
    );
    // Where nginx -V cannot run (a sidecar without ptrace), the version comes from the Server header.
    assert.match(
      String((self.status().details!.targets as { nginx_version?: string }[])[0].nginx_version),
      /^\d+\.\d+\.\d+$/,
    );

    await scrape(h, self);
    const v1 = value(h.metric('nginx.http.requests'), { 'nginx.instance.id': id })!;
    const N = 7;
    await n.get('/ok', 4);
    await n.get('/s/404', 3);
    await scrape(h, self);
    const v2 = value(h.metric('nginx.http.requests'), { 'nginx.instance.id': id })!;
    assert.equal(v2 - v1, N + 1);
    assert.equal(value(h.metric('nginx.http.request.count'), { 'nginx.instance.id': id }), N + 1);
    // fetch keeps connections alive: fewer connections than requests, all of them handled.
    const accepted = value(h.metric('nginx.http.connections'), { 'nginx.instance.id': id, outcome: 'accepted' })!;
    assert.ok(accepted >= 1);
    assert.equal(value(h.metric('nginx.http.connections'), { 'nginx.instance.id': id, outcome: 'handled' }), accepted);
    assert.ok(
      value(h.metric('nginx.http.connection.count'), { 'nginx.instance.id': id, outcome: 'active' })! >= 1,
      'the scrape itself is active',
    );

    await n.stop();
    await scrape(h, self);
    assert.equal(value(h.metric('nginx.up'), { 'nginx.instance.id': id }), 0);
    assert.equal(h.metric('nginx.http.requests'), undefined, 'counters of an unreadable page are dropped');
    const st = self.status();
    assert.equal(st.state, 'degraded');
    assert.match(st.reason!, /ECONNREFUSED/);
    assert.equal(h.host.report().find((r) => r.name === 'nginx-status')!.state, 'degraded', 'the plugin keeps running');
    // Discovery reports it gone: nginx.up stays 0 until forget_after.
    h.publish('nginx.instance.removed', { instance: instance(id) });
    await scrape(h, self);
    assert.equal(value(h.metric('nginx.up'), { 'nginx.instance.id': id }), 0);
  });
});

describe('stub_status_url override, resets, and a page that is not stub_status', () => {
  let srv: Server;
  let body = '';
  let url = '';
  before(async () => {
    srv = createServer((_req, res) => res.end(body));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const addr = srv.address();
    url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/status`;
  });
  after(() => new Promise<void>((r) => srv.close(() => r())));

  test('an instance reported gone keeps nginx.up until forget_after, then its series leave the store', async () => {
    const h = await startPlugin(plugin, { interval: '1h', forget_after: '0s' });
    try {
      const self = h.host.get('nginx-status') as NginxStatusPlugin;
      body = 'Active connections: 1 \nserver accepts handled requests\n 1 1 1 \nReading: 0 Writing: 1 Waiting: 0 \n';
      h.publish('nginx.instance.added', { instance: instance('goneinstance0001') });
      h.publish(
        'nginx.config.changed',
        configChanged('goneinstance0001', { stubStatus: [{ urls: [url], file: '/p/conf/nginx.conf', line: 3 }] }),
      );
      await h.waitFor(() => h.store.sources().includes('nginx-status:goneinstance0001'), 'the first read');
      h.publish('nginx.instance.removed', { instance: instance('goneinstance0001') });
      await h.bus.drain(2000);
      await scrape(h, self);
      assert.ok(!h.store.sources().includes('nginx-status:goneinstance0001'));
      assert.deepEqual((self.status().details as { targets: unknown[] }).targets, []);
    } finally {
      await h.close();
    }
  });

  test('a restarted nginx (counters going down) gets a new start time and no negative interval count', async () => {
    const h = await startPlugin(plugin, { interval: '1h', stub_status_url: url });
    try {
      const self = h.host.get('nginx-status') as NginxStatusPlugin;
      const page = (acc: number, req: number) =>
        `Active connections: 1 \nserver accepts handled requests\n ${acc} ${acc} ${req} \nReading: 0 Writing: 1 Waiting: 0 \n`;
      body = page(100, 500);
      await scrape(h, self);
      // With no nginx discovered, the configured URL is read on its own.
      const req = () => h.metric('nginx.http.requests')!.points[0] as NumberPoint;
      assert.equal(req().value, 500);
      const start1 = req().startTime!;
      body = page(120, 530);
      await new Promise((r) => setTimeout(r, 5));
      await scrape(h, self);
      assert.equal(req().startTime, start1);
      assert.equal(value(h.metric('nginx.http.request.count')), 30);
      body = page(3, 4);
      await new Promise((r) => setTimeout(r, 5));
      await scrape(h, self);
      assert.equal(req().value, 4);
      assert.ok(req().startTime! > start1, 'a reset starts the series again');
      assert.equal(value(h.metric('nginx.http.request.count')), 4);

      body = '<html>Welcome to nginx!</html>';
      await scrape(h, self);
      assert.equal(value(h.metric('nginx.up')), 0);
      assert.match(
        self.status().reason!,
        /not a stub_status page: expected "Active connections: N" on line 1, got "<html>Welcome/,
      );
    } finally {
      await h.close();
    }
  });
});

describe('NGINX Plus API (recorded responses served on 127.0.0.1)', () => {
  let srv: Server;
  let base = '';
  const requested: string[] = [];
  before(async () => {
    const files: Record<string, string> = {
      '/api/': 'versions.json',
      '/api/9/connections': 'connections.json',
      '/api/9/http/requests': 'http-requests.json',
      '/api/9/http/server_zones': 'http-server_zones.json',
      '/api/9/http/location_zones': 'http-location_zones.json',
      '/api/9/http/upstreams': 'http-upstreams.json',
      '/api/9/http/caches': 'http-caches.json',
      '/api/9/ssl': 'ssl.json',
    };
    srv = createServer(async (req, res) => {
      requested.push(req.url!);
      const f = files[req.url!];
      if (!f) {
        res.statusCode = 404;
        res.end('{"error":{"status":404,"text":"path not found","code":"PathNotFound"}}');
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(await readFile(join(here, 'testdata', 'plus-api', f)));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const addr = srv.address();
    base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/api`;
  });
  after(() => new Promise<void>((r) => srv.close(() => r())));

  test('readPlusApi picks the newest version and reads every endpoint', async () => {
    const r = await readPlusApi(base, 2000);
    assert.equal(r.version, 9);
    assert.deepEqual(r.errors, []);
    assert.equal(r.data.connections?.accepted, 4968119);
    assert.equal(Object.keys(r.data.upstreams ?? {}).length, 1);
  });

  test('plusMetrics: connections, zones, upstream peers (state, times in s), caches, ssl', async () => {
    const { data } = await readPlusApi(base, 2000);
    const ms = plusMetrics(data, new CounterTracker(() => 0), 1);
    const m = (name: string) => ms.find((x) => x.name === name);
    assert.equal(value(m('nginx.http.connections'), { outcome: 'dropped' }), 12);
    assert.equal(value(m('nginx.http.connection.count'), { outcome: 'idle' }), 117);
    assert.equal(value(m('nginx.http.requests')), 10624511);
    assert.equal(
      value(m('nginx.http.zone.requests'), { 'nginx.zone.name': 'hg.nginx.org', 'nginx.zone.type': 'server' }),
      175276,
    );
    assert.equal(
      value(m('nginx.http.response.status'), { 'nginx.zone.name': 'hg.nginx.org', status_range: '5xx' }),
      566,
    );
    assert.equal(
      value(m('nginx.http.response.status'), {
        'nginx.zone.name': 'swagger',
        'nginx.zone.type': 'location',
        status_range: '3xx',
      }),
      167,
    );
    assert.equal(
      value(m('nginx.http.request.byte.io'), { 'nginx.zone.name': 'trac.nginx.org', 'nginx.byte.io.direction': 'tx' }),
      2089524530,
    );
    const peer1 = { 'nginx.upstream.name': 'trac-backend', 'nginx.peer.address': '10.0.0.1:8080' };
    assert.equal(value(m('nginx.http.upstream.peer.response.time'), peer1), 0.042);
    assert.equal(m('nginx.http.upstream.peer.response.time')!.unit, 's');
    assert.equal(value(m('nginx.http.upstream.peer.header.time'), peer1), 0.038);
    assert.equal(value(m('nginx.http.upstream.peer.requests'), peer1), 57217);
    assert.equal(value(m('nginx.http.upstream.peer.responses'), { ...peer1, status_range: '5xx' }), 17);
    assert.equal(value(m('nginx.http.upstream.peer.state'), { ...peer1, 'nginx.peer.state': 'up' }), 1);
    assert.equal(value(m('nginx.http.upstream.peer.state'), { ...peer1, 'nginx.peer.state': 'unhealthy' }), 0);
    assert.equal(
      value(m('nginx.http.upstream.peer.state'), {
        'nginx.peer.address': '10.0.0.2:8080',
        'nginx.peer.name': 'backend-2.example:8080',
        'nginx.peer.state': 'unhealthy',
      }),
      1,
    );
    assert.equal(
      value(m('nginx.http.upstream.peer.count'), { 'nginx.upstream.name': 'trac-backend', 'nginx.peer.state': 'up' }),
      1,
    );
    assert.equal(
      value(m('nginx.http.upstream.peer.count'), {
        'nginx.upstream.name': 'trac-backend',
        'nginx.peer.state': 'unhealthy',
      }),
      1,
    );
    assert.equal(
      value(m('nginx.http.upstream.peer.count'), { 'nginx.upstream.name': 'trac-backend', 'nginx.peer.state': 'down' }),
      0,
    );
    assert.equal(
      value(m('nginx.http.upstream.peer.health_checks'), {
        'nginx.peer.address': '10.0.0.2:8080',
        'nginx.health_check': 'fail',
      }),
      26210,
    );
    assert.equal(value(m('nginx.http.upstream.queue.overflows'), { 'nginx.upstream.name': 'trac-backend' }), 7);
    assert.equal(
      value(m('nginx.cache.bytes'), { 'nginx.cache.name': 'http_cache', 'nginx.cache.outcome': 'hit' }),
      6685627875,
    );
    assert.equal(value(m('nginx.cache.memory.limit'), { 'nginx.cache.name': 'http_cache' }), 536870912);
    assert.equal(value(m('nginx.ssl.handshakes'), { 'nginx.ssl.status': 'failed' }), 21025);
    assert.equal(
      value(m('nginx.ssl.certificate.verify_failures'), { 'nginx.ssl.verify_failure.reason': 'expired_cert' }),
      2,
    );
    assert.equal(value(m('nginx.up')), 1);
    for (const x of ms) assert.ok(x.unit !== 'ms', `${x.name} in seconds, not ms`);
  });

  test('a Plus API that does not answer falls back to stub_status', async () => {
    const stub = createServer((_req, res) =>
      res.end('Active connections: 2 \nserver accepts handled requests\n 9 9 40 \nReading: 0 Writing: 1 Waiting: 1 \n'),
    );
    await new Promise<void>((r) => stub.listen(0, '127.0.0.1', () => r()));
    const addr = stub.address();
    const stubUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/nginx_status`;
    const h = await startPlugin(plugin, { interval: '1h' });
    try {
      const id = 'plusfallback0001';
      h.publish('nginx.instance.added', { instance: instance(id, { plus: true }) });
      h.publish(
        'nginx.config.changed',
        configChanged(id, {
          plusApi: [{ urls: [`${base}-missing`], file: '/p/conf/nginx.conf', line: 30, write: false }],
          stubStatus: [{ urls: [stubUrl], file: '/p/conf/nginx.conf', line: 40 }],
        }),
      );
      await h.waitFor(
        () => value(h.metric('nginx.http.requests'), { 'nginx.instance.id': id }) === 40,
        'stub_status read after the API failed',
      );
      const self = h.host.get('nginx-status') as NginxStatusPlugin;
      assert.equal((self.status().details!.targets as { mode?: string }[])[0].mode, 'stub_status');
    } finally {
      await h.close();
      await new Promise<void>((r) => stub.close(() => r()));
    }
  });

  test('the plugin reads the Plus API of a Plus instance whose config has an api location', async () => {
    const h = await startPlugin(plugin, { interval: '1h' });
    try {
      const id = 'plusinstance0001';
      h.publish('nginx.instance.added', { instance: instance(id, { plus: true, version: '1.25.3' }) });
      h.publish(
        'nginx.config.changed',
        configChanged(id, { plusApi: [{ urls: [base], file: '/p/conf/nginx.conf', line: 30, write: false }] }),
      );
      await h.waitFor(
        () => value(h.metric('nginx.up'), { 'nginx.instance.id': id }) === 1,
        'nginx.up from the Plus API',
      );
      assert.equal(value(h.metric('nginx.http.requests'), { 'nginx.instance.id': id }), 10624511);
      assert.equal(
        value(h.metric('nginx.http.upstream.peer.requests'), {
          'nginx.instance.id': id,
          'nginx.peer.address': '10.0.0.1:8080',
        }),
        57217,
      );
      const self = h.host.get('nginx-status') as NginxStatusPlugin;
      assert.equal((self.status().details!.targets as { mode?: string }[])[0].mode, 'plus');
      assert.ok(requested.includes('/api/9/http/upstreams'));
    } finally {
      await h.close();
    }
  });
});
