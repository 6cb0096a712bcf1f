import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { promtoolCheck, promtoolCheckOpenMetrics } from '../../scripts/e2e/tools.js';
import { needTool } from '../testing/tools.js';
import { acceptsGzip, contentTag, MetricsExposition, negotiateFormat } from './exposition.js';
import { counter, gauge, histogram } from './model.js';
import { MetricStore } from './store.js';

/** What Prometheus 2.42 sends. */
const PROMETHEUS_ACCEPT =
  'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

function nginxBatch(requests: number) {
  return {
    source: 'nginx-status:a',
    time: 0,
    resource: { 'nginx.instance.id': 'a' },
    metrics: [
      counter({ name: 'nginx.http.requests', unit: '{request}', description: 'Requests "served".' }, [
        { attributes: {}, value: requests },
      ]),
      counter({ name: 'nginx.http.connections', unit: '{connection}', description: 'Connections.' }, [
        { attributes: { outcome: 'accepted' }, value: 5 },
        { attributes: { outcome: 'handled' }, value: 4 },
      ]),
      gauge({ name: 'nginx.http.connection.count', unit: '{connection}', description: 'Connections now.' }, [
        { attributes: { outcome: 'active' }, value: 3 },
        { attributes: { outcome: 'reading' }, value: 0 },
        { attributes: { outcome: 'writing' }, value: 1 },
        { attributes: { outcome: 'waiting' }, value: 2 },
      ]),
      gauge({ name: 'nginx.up', unit: '{up}', description: 'Up.' }, [{ attributes: {}, value: 1 }]),
      histogram({ name: 'http.server.request.duration', unit: 's', description: 'Request time.' }, [
        {
          attributes: { 'http.response.status_code': '200' },
          count: 3,
          sum: 0.5,
          bounds: [0.1, 1],
          buckets: [1, 2, 0],
        },
      ]),
    ],
  };
}

function setup(opts: { compat?: boolean } = {}) {
  let clock = 1_000_000;
  const store = new MetricStore({ now: () => clock });
  let collected = 0;
  store.addCollector(() => [
    counter({ name: 'agent.api.requests', unit: '{request}', description: 'API requests.' }, [
      { attributes: {}, value: collected++ },
    ]),
  ]);
  store.apply(nginxBatch(7));
  const exposition = new MetricsExposition({ store, exporterCompat: () => opts.compat === true, now: () => clock });
  return { store, exposition, advance: (ms: number) => (clock += ms) };
}

describe('/metrics exposition', () => {
  test('rendered once per store change: every scraper gets the same bytes until the next change', async () => {
    const { store, exposition } = setup();
    const first = await exposition.respond({});
    for (let i = 0; i < 50; i++) assert.deepEqual((await exposition.respond({})).body, first.body);
    assert.equal(exposition.counts.renders, 1);
    store.apply(nginxBatch(8));
    const next = await exposition.respond({});
    assert.equal(exposition.counts.renders, 2);
    assert.match(String(next.body), /nginx_http_requests_total\{nginx_instance_id="a"\} 8/);
  });

  test('read-time collectors are sampled again once a rendering is older than a second', async () => {
    const { exposition, advance } = setup();
    const first = String((await exposition.respond({})).body);
    advance(999);
    assert.equal(String((await exposition.respond({})).body), first);
    advance(1);
    assert.notEqual(String((await exposition.respond({})).body), first);
    assert.equal(exposition.counts.renders, 2);
  });

  test('ETag and If-None-Match: 304 until the store changes', async () => {
    const { store, exposition } = setup();
    const r = await exposition.respond({});
    const etag = r.headers?.ETag;
    assert.match(etag ?? '', /^"pt-[0-9a-f]{16}"$/);
    const again = await exposition.respond({ 'if-none-match': etag });
    assert.equal(again.status, 304);
    assert.equal(again.headers?.ETag, etag);
    assert.equal((await exposition.respond({ 'if-none-match': `"other", W/${etag}` })).status, 304);
    store.apply(nginxBatch(9));
    const changed = await exposition.respond({ 'if-none-match': etag });
    assert.equal(changed.status, 200);
    assert.notEqual(changed.headers?.ETag, etag);
  });

  test('contentTag: the same bytes give the same tag, every one-byte change another', () => {
    const body = Buffer.from(`nginx_up{instance="a"} 1\n`.repeat(2000));
    const tag = contentTag(body);
    assert.match(tag, /^[0-9a-f]{16}$/);
    assert.equal(contentTag(Buffer.from(body)), tag);
    const tags = new Set([tag, contentTag(new Uint8Array(0))]);
    for (const at of [0, 1, 1000, body.length - 1]) {
      for (const delta of [1, 2, 128]) {
        const changed = Buffer.from(body);
        changed[at] = (changed[at]! + delta) & 0xff;
        tags.add(contentTag(changed));
      }
    }
    tags.add(contentTag(body.subarray(1)));
    tags.add(contentTag(Buffer.concat([body, Buffer.from('\n')])));
    assert.equal(tags.size, 2 + 4 * 3 + 2, 'each changed body has a tag of its own');
  });

  test('Accept-Encoding: gzip gets the same bytes gzipped, compressed once per rendering', async () => {
    const { exposition } = setup();
    const plain = await exposition.respond({});
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => exposition.respond({ 'accept-encoding': 'gzip, deflate' })),
    );
    for (const a of answers) {
      assert.equal(a.headers?.['Content-Encoding'], 'gzip');
      assert.deepEqual(gunzipSync(a.body as Buffer), plain.body);
      assert.notEqual(a.headers?.ETag, plain.headers?.ETag, 'a gzipped body has its own strong ETag');
    }
    assert.equal(exposition.counts.gzips, 1);
    assert.equal(plain.headers?.['Content-Encoding'], undefined);
    assert.equal(plain.headers?.Vary, 'Accept, Accept-Encoding');
  });

  test('OpenMetrics when the scraper prefers it, as Prometheus does', async () => {
    const { exposition } = setup();
    const om = await exposition.respond({ accept: PROMETHEUS_ACCEPT });
    assert.equal(om.contentType, 'application/openmetrics-text; version=1.0.0; charset=utf-8');
    const text = String(om.body);
    assert.match(text, /# TYPE nginx_http_requests counter\n# HELP nginx_http_requests Requests \\"served\\"\./);
    assert.match(text, /\nnginx_http_requests_total\{nginx_instance_id="a"\} 7\n/);
    assert.ok(text.endsWith('\n# EOF\n'));
    const plain = await exposition.respond({ accept: 'text/plain;version=0.0.4' });
    assert.equal(plain.contentType, 'text/plain; version=0.0.4; charset=utf-8');
    assert.notEqual(om.headers?.ETag, plain.headers?.ETag);
  });

  test('negotiation rules', () => {
    assert.equal(negotiateFormat(''), 'text');
    assert.equal(negotiateFormat('*/*'), 'text');
    assert.equal(negotiateFormat(PROMETHEUS_ACCEPT), 'openmetrics');
    assert.equal(negotiateFormat('application/openmetrics-text; version=0.0.1'), 'openmetrics');
    assert.equal(negotiateFormat('text/plain;q=0.9, application/openmetrics-text;q=0.5'), 'text');
    assert.equal(negotiateFormat('application/openmetrics-text;q=0'), 'text');
    assert.equal(acceptsGzip('gzip'), true);
    assert.equal(acceptsGzip('deflate, gzip;q=0'), false);
    assert.equal(acceptsGzip('identity'), false);
  });

  test('promtool-clean in both formats', { skip: needTool('promtool', 'prometheus') }, async () => {
    const { exposition } = setup();
    const text = promtoolCheck(String((await exposition.respond({})).body));
    assert.deepEqual(text.problems, []);
    assert.equal(text.code, 0);
    const om = promtoolCheckOpenMetrics(String((await exposition.respond({ accept: PROMETHEUS_ACCEPT })).body));
    assert.deepEqual(om.problems, []);
    assert.equal(om.code, 0);
  });

  test('prometheus.exporter_compat in both formats: the exporter names stay exact', {
    skip: needTool('promtool', 'prometheus'),
  }, async () => {
    const { exposition } = setup({ compat: true });
    const text = String((await exposition.respond({})).body);
    assert.match(
      text,
      /# TYPE nginx_connections_accepted counter\nnginx_connections_accepted\{nginx_instance_id="a"\} 5/,
    );
    const om = String((await exposition.respond({ accept: PROMETHEUS_ACCEPT })).body);
    assert.match(
      om,
      /# TYPE nginx_connections_accepted unknown\n# HELP [^\n]+\nnginx_connections_accepted\{nginx_instance_id="a"\} 5/,
    );
    assert.match(om, /# TYPE nginx_up gauge\n# HELP [^\n]+\nnginx_up\{nginx_instance_id="a"\} 1/);
    // The text format's only complaints are the exporter's own missing _total (as on the exporter);
    // in OpenMetrics those two are `unknown`, so nothing is left to complain about.
    assert.deepEqual(
      promtoolCheck(text).problems.map((p) => p.split(' ')[0]),
      ['nginx_connections_accepted', 'nginx_connections_handled'],
    );
    assert.deepEqual(promtoolCheckOpenMetrics(om).problems, []);
  });
});
