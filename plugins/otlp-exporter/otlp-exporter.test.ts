import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { counter, gauge, histogram } from '../../core/metrics/model.js';
import { startAgent } from '../../core/testing/agent-process.js';
import { freePort, waitFor } from '../../core/testing/nginx.js';
import { startPlugin, type PluginHarness } from '../../core/testing/plugin-harness.js';
import { toResourceMetrics, serialize } from './convert.js';
import { plugin } from './index.js';
import { attrs, decodeProtobuf, OtlpReceiver } from './testing/receiver.js';
import { backoffMs, parseRetryAfter } from './sender.js';

const AGG_CUMULATIVE = 2;

function publishSample(h: PluginHarness): void {
  h.publish('metrics', {
    source: 'test-source',
    time: Date.now(),
    resource: { 'nginx.instance.id': 'i-1' },
    metrics: [
      counter({ name: 'nginx.http.requests', unit: '{request}', description: 'Requests.' }, [
        { attributes: {}, value: 42, startTime: 1_700_000_000_000 },
      ]),
      gauge({ name: 'nginx.http.connection.count', unit: '{connection}', description: 'Connections now.' }, [
        { attributes: { outcome: 'active' }, value: 3 },
        { attributes: { outcome: 'waiting' }, value: 1 },
      ]),
      histogram({ name: 'nginx.http.request.time', unit: 's', description: 'Request time.' }, [
        { attributes: { method: 'GET' }, count: 6, sum: 0.9, bounds: [0.1, 0.5, 1], buckets: [3, 2, 1, 0] },
      ]),
    ],
  });
}

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe('otlp-exporter against a receiver decoding with the official OTLP protos', () => {
  test('protobuf + gzip + headers: names, types, temporality, attributes, histogram buckets', async () => {
    const rx = await OtlpReceiver.start();
    cleanups.push(() => rx.close());
    const h = await startPlugin(plugin, {
      enabled: true,
      endpoint: rx.url,
      headers: { Authorization: 'Bearer s3cret', 'X-Scope-OrgID': 'team-a' },
      interval: '100ms',
    });
    cleanups.push(() => h.close());
    publishSample(h);
    await waitFor(() => rx.metrics().has('nginx.http.request.time'), 'an export with the sample metrics');
    const req = rx.requests.at(-1)!;
    assert.equal(req.headers['content-type'], 'application/x-protobuf');
    assert.equal(req.headers['content-encoding'], 'gzip');
    assert.equal(req.headers.authorization, 'Bearer s3cret');
    assert.equal(req.headers['x-scope-orgid'], 'team-a');
    assert.equal(req.raw[0], 0x1f, 'body starts with the gzip magic');
    assert.ok(gunzipSync(req.raw).length > req.raw.length / 2);

    const rm = req.decoded.resourceMetrics;
    assert.equal(rm.length, 1);
    const res = attrs(rm[0].resource.attributes);
    assert.equal(res['service.name'], 'nginx-agent');
    assert.equal(res['service.version'], 'test');
    assert.equal(res['host.name'], 'test-host');
    assert.equal(typeof res['service.instance.id'], 'string');
    assert.equal(rm[0].scopeMetrics[0].scope.name, 'nginx-agent');

    const m = rx.metrics();
    const reqs = m.get('nginx.http.requests')!;
    assert.equal(reqs.unit, '{request}');
    assert.equal(reqs.description, 'Requests.');
    assert.ok(reqs.sum, 'a counter is a Sum');
    assert.equal(reqs.sum.isMonotonic, true);
    assert.equal(reqs.sum.aggregationTemporality, AGG_CUMULATIVE);
    assert.equal(reqs.sum.dataPoints[0].asDouble, 42);
    assert.equal(reqs.sum.dataPoints[0].startTimeUnixNano, 1_700_000_000_000 * 1e6);
    assert.deepEqual(attrs(reqs.sum.dataPoints[0].attributes), { 'nginx.instance.id': 'i-1' });

    const conns = m.get('nginx.http.connection.count')!;
    assert.ok(conns.gauge, 'a gauge is a Gauge');
    assert.deepEqual(conns.gauge.dataPoints.map((p) => [attrs(p.attributes).outcome, p.asDouble]).sort(), [
      ['active', 3],
      ['waiting', 1],
    ]);

    const rt = m.get('nginx.http.request.time')!;
    assert.ok(rt.histogram, 'a histogram is a Histogram');
    assert.equal(rt.histogram.aggregationTemporality, AGG_CUMULATIVE);
    const p = rt.histogram.dataPoints[0];
    assert.deepEqual(p.explicitBounds, [0.1, 0.5, 1]);
    assert.deepEqual(p.bucketCounts, [3, 2, 1, 0]);
    assert.equal(p.count, 6);
    assert.equal(p.sum, 0.9);
    assert.deepEqual(attrs(p.attributes), { 'nginx.instance.id': 'i-1', method: 'GET' });

    // The exporter reports itself.
    await h.waitFor(
      () => ((h.metric('agent.otlp.exported')?.points[0] as { value: number } | undefined)?.value ?? 0) > 0,
      'agent.otlp.exported > 0',
    );
    const st = h.host.report().find((r) => r.name === 'otlp-exporter')!;
    assert.equal(st.state, 'running');
  });

  test('http/json without compression is valid OTLP JSON', async () => {
    const rx = await OtlpReceiver.start();
    cleanups.push(() => rx.close());
    const h = await startPlugin(plugin, {
      enabled: true,
      endpoint: rx.url,
      protocol: 'http/json',
      compression: 'none',
      interval: '100ms',
    });
    cleanups.push(() => h.close());
    publishSample(h);
    await waitFor(() => rx.metrics().has('nginx.http.request.time'), 'a JSON export with the sample metrics');
    const req = rx.requests.at(-1)!;
    assert.equal(req.headers['content-type'], 'application/json');
    assert.equal(req.headers['content-encoding'], undefined);
    const m = rx.metrics();
    assert.equal(m.get('nginx.http.requests')!.sum!.isMonotonic, true);
    assert.equal(m.get('nginx.http.requests')!.sum!.aggregationTemporality, AGG_CUMULATIVE);
    assert.equal(m.get('nginx.http.requests')!.sum!.dataPoints[0].asDouble, 42);
    assert.ok(m.get('nginx.http.connection.count')!.gauge);
    assert.equal(attrs(req.decoded.resourceMetrics[0].resource.attributes)['service.name'], 'nginx-agent');
  });

  test('503 with Retry-After is retried after the given delay and then delivered', async () => {
    const rx = await OtlpReceiver.start();
    cleanups.push(() => rx.close());
    const seen: number[] = [];
    rx.respond = (n) => {
      seen.push(Date.now());
      return n === 0 ? { status: 503, headers: { 'Retry-After': '1' } } : { status: 200 };
    };
    const h = await startPlugin(plugin, {
      enabled: true,
      endpoint: rx.url,
      interval: '1h',
      retry_initial_interval: '10ms',
    });
    cleanups.push(() => h.close());
    publishSample(h);
    await h.waitFor(() => h.metric('nginx.http.requests') !== undefined, 'the sample in the store');
    (h.host.get('otlp-exporter') as unknown as { collect(): void }).collect();
    await waitFor(() => rx.requests.length === 1, 'the retried request to be delivered');
    assert.equal(rx.attempts, 2, 'one 503, then one success');
    assert.ok(
      seen[1] - seen[0] >= 900,
      `Retry-After: 1 honoured over the 10 ms backoff (waited ${seen[1] - seen[0]} ms)`,
    );
    assert.ok(rx.metrics().has('nginx.http.requests'));
    const exp = h.host.get('otlp-exporter') as unknown as {
      collect(): void;
      selfMetrics(): { name: string; points: { attributes: Record<string, string>; value: number }[] }[];
    };
    // The receiver stores a request before its answer reaches the exporter: wait for the count.
    const byStatus = () =>
      Object.fromEntries(
        exp
          .selfMetrics()
          .find((x) => x.name === 'agent.otlp.requests')!
          .points.map((p) => [p.attributes.status, p.value]),
      );
    await waitFor(() => byStatus()['200'] === 1, 'the 200 to be counted');
    assert.deepEqual(byStatus(), { '503': 1, '200': 1 });
  });

  test('400 is final: the request is dropped and counted as rejected, not retried', async () => {
    const rx = await OtlpReceiver.start();
    cleanups.push(() => rx.close());
    rx.respond = () => ({ status: 400 });
    const h = await startPlugin(plugin, {
      enabled: true,
      endpoint: rx.url,
      interval: '1h',
      retry_initial_interval: '10ms',
    });
    cleanups.push(() => h.close());
    publishSample(h);
    await h.waitFor(() => h.metric('nginx.http.requests') !== undefined, 'the sample in the store');
    const exp = h.host.get('otlp-exporter') as unknown as {
      collect(): void;
      selfMetrics(): { name: string; points: { attributes: Record<string, string>; value: number }[] }[];
    };
    exp.collect();
    const dropped = () =>
      exp
        .selfMetrics()
        .find((x) => x.name === 'agent.otlp.dropped')!
        .points.find((p) => p.attributes.reason === 'rejected')!.value;
    await waitFor(() => dropped() > 0, 'the rejected request to be counted');
    assert.equal(rx.attempts, 1);
    const st = h.host.report().find((r) => r.name === 'otlp-exporter')!;
    assert.equal(st.state, 'degraded');
    assert.match(String(st.reason), /answered 400/);
  });

  test('receiver down: the queue stays bounded, the oldest requests are dropped and counted, the rest arrive when it is back', async () => {
    const port = await freePort();
    const h = await startPlugin(plugin, {
      enabled: true,
      endpoint: `http://127.0.0.1:${port}/v1/metrics`,
      interval: '1h',
      queue_size: 3,
      retry_initial_interval: '100ms',
      retry_max_interval: '100ms',
    });
    cleanups.push(() => h.close());
    publishSample(h);
    await h.waitFor(() => h.metric('nginx.http.requests') !== undefined, 'the sample in the store');
    const exp = h.host.get('otlp-exporter') as unknown as {
      collect(): void;
      selfMetrics(): { name: string; points: { attributes: Record<string, string>; value: number }[] }[];
    };
    const value = (name: string, reason?: string) =>
      exp
        .selfMetrics()
        .find((x) => x.name === name)!
        .points.find((p) => reason === undefined || p.attributes.reason === reason)?.value ?? 0;
    for (let i = 0; i < 10; i++) exp.collect();
    assert.ok(value('agent.otlp.queue.depth') <= 3, `queue depth ${value('agent.otlp.queue.depth')} <= queue_size`);
    const dropped = value('agent.otlp.dropped', 'queue_full');
    assert.ok(dropped > 0, 'points of the dropped requests are counted');
    const st = h.host.report().find((r) => r.name === 'otlp-exporter')!;
    await waitFor(
      () => h.host.report().find((r) => r.name === 'otlp-exporter')!.state === 'degraded',
      'degraded while the receiver is down',
    );
    assert.ok(st);
    // The self-metrics reach the store (and so /metrics) through the bus.
    await h.waitFor(() => h.metric('agent.otlp.dropped') !== undefined, 'agent.otlp.dropped in the store');

    const rx = await OtlpReceiver.start(port);
    cleanups.push(() => rx.close());
    await waitFor(() => rx.requests.length === 3, 'the 3 queued requests to arrive', 10_000);
    await waitFor(() => value('agent.otlp.queue.depth') === 0, 'the queue to empty');
    await waitFor(() => h.host.report().find((r) => r.name === 'otlp-exporter')!.state === 'running', 'running again');
  });
});

describe('conversion', () => {
  test('a snapshot is split into requests of at most max_batch_points points', () => {
    const metrics = [
      {
        name: 'a',
        type: 'counter' as const,
        unit: '1',
        description: '',
        points: [1, 2, 3].map((v) => ({ attributes: { k: String(v) }, value: v })),
      },
      {
        name: 'b',
        type: 'gauge' as const,
        unit: '1',
        description: '',
        points: [4, 5].map((v) => ({ attributes: { k: String(v) }, value: v })),
      },
    ];
    const groups = toResourceMetrics(metrics, {
      resource: { 'service.name': 'nginx-agent' },
      scopeVersion: '1',
      now: Date.now(),
      startTime: 0,
      maxPoints: 2,
    });
    assert.deepEqual(
      groups.map((g) => g.points),
      [2, 2, 1],
    );
    const decoded = groups.map((g) => decodeProtobuf(Buffer.from(serialize(g.request, 'http/protobuf').body)));
    const names = decoded.map((d) =>
      d.resourceMetrics[0].scopeMetrics[0].metrics.map((m) => `${m.name}:${(m.sum ?? m.gauge)!.dataPoints.length}`),
    );
    assert.deepEqual(names, [['a:2'], ['a:1', 'b:1'], ['b:1']]);
  });

  test('Retry-After and backoff', () => {
    assert.equal(parseRetryAfter('7', 0), 7000);
    assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6000);
    assert.equal(parseRetryAfter('soon', 0), undefined);
    assert.equal(parseRetryAfter(null, 0), undefined);
    const r = { initialMs: 100, maxMs: 1000, maxElapsedMs: 60_000 };
    assert.equal(backoffMs(1, r, 0.5), 100);
    assert.equal(backoffMs(3, r, 0.5), 400);
    assert.equal(backoffMs(10, r, 0.5), 1000, 'capped at the max interval');
    assert.equal(backoffMs(2, r, 0), 100, 'jitter -50%');
    assert.equal(backoffMs(2, r, 0.999), 300, 'jitter +50%');
  });

  test('config: bad endpoint and header name are refused with the key named', async () => {
    await assert.rejects(
      startPlugin(plugin, { enabled: true, endpoint: 'collector:4318' }),
      /otlp-exporter\.endpoint: .*http:\/\/ or https:\/\//,
    );
    await assert.rejects(
      startPlugin(plugin, { enabled: true, headers: { 'bad header': 'x' } }),
      /headers\.bad header: key "bad header" is not valid/,
    );
  });
});

describe('the real agent exports its own metrics with the resource attributes', () => {
  test('agent start with otlp_exporter enabled and agent.labels', async () => {
    const rx = await OtlpReceiver.start();
    cleanups.push(() => rx.close());
    const dir = mkdtempSync(join(tmpdir(), 'otlp-agent-'));
    const cfg = join(dir, 'agent.yaml');
    writeFileSync(
      cfg,
      `agent:\n  labels:\n    env: prod\n    team.name: edge-1\notlp_exporter:\n  enabled: true\n  endpoint: ${rx.url}\n  interval: 200ms\n  headers:\n    Authorization: Bearer abc\n`,
    );
    const agent = await startAgent(['--config', cfg, '--api-port', '0']);
    cleanups.push(() => agent.stop('SIGKILL'));
    await waitFor(() => rx.metrics().has('agent.bus.published'), 'the agent to export its bus metrics', 20_000);
    const status = (await (await fetch(`${agent.url}/v1/status`)).json()) as {
      instance_id: string;
      version: string;
      hostname: string;
    };
    const res = attrs(rx.requests.at(-1)!.decoded.resourceMetrics[0].resource.attributes);
    assert.deepEqual(res, {
      env: 'prod',
      'team.name': 'edge-1',
      'host.name': status.hostname,
      'service.name': 'nginx-agent',
      'service.version': status.version,
      'service.instance.id': status.instance_id,
    });
    assert.match(status.instance_id, /^[0-9a-f-]{36}$/);
    assert.equal(rx.requests.at(-1)!.headers.authorization, 'Bearer abc');
    const pub = rx.metrics().get('agent.bus.published')!;
    assert.equal(pub.sum!.isMonotonic, true);
    assert.ok(rx.metrics().get('agent.bus.queue.depth')!.gauge);
    // Graceful stop flushes a last export and exits 0.
    const before = rx.requests.length;
    assert.equal(await agent.stop('SIGTERM'), 0);
    assert.ok(rx.requests.length > before, 'a final export on shutdown');
    const metrics = await fetch(`${agent.url}/metrics`).catch(() => undefined);
    assert.equal(metrics, undefined, 'the API is closed');
  });
});
