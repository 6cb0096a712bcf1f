import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startPlugin } from '../../core/testing/plugin-harness.js';
import { waitFor } from '../../core/testing/nginx.js';
import { plugin } from './index.js';
import { attrs, type AnyValue, OtlpReceiver } from './testing/receiver.js';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function plain(v: AnyValue | undefined): unknown {
  if (!v) return undefined;
  if (v.kvlistValue) return Object.fromEntries((v.kvlistValue.values ?? []).map((kv) => [kv.key, plain(kv.value)]));
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(plain);
  return v.stringValue ?? v.intValue ?? v.doubleValue ?? v.boolValue;
}

for (const protocol of ['http/protobuf', 'http/json'] as const) {
  test(`events become OTLP log records on /v1/logs (${protocol}), decoded with the official protos`, async () => {
    const rx = await OtlpReceiver.start();
    cleanups.push(() => rx.close());
    const h = await startPlugin(plugin, { enabled: true, endpoint: rx.url, protocol, interval: '1h' });
    cleanups.push(() => h.close());
    h.events.record({
      severity: 'warning',
      source: 'wasm:config-lint',
      kind: 'lint.nginx.config',
      key: 'lint.nginx.config:inst-1:server-tokens-on:/etc/nginx/nginx.conf:7',
      summary: 'server_tokens on shows the nginx version',
      attributes: { instance_id: 'inst-1', rule: 'server-tokens-on', line: 7, nested: { a: [1, 'b'] } },
    });
    h.events.record({
      severity: 'critical',
      source: 'core',
      kind: 'alert.x',
      key: 'k',
      summary: 'down',
      attributes: {},
      state: 'firing',
    });
    await waitFor(() => rx.logRecords().length === 2, 'two log records');
    const [lint, alert] = rx.logRecords();
    assert.equal(lint.severityNumber, 13);
    assert.equal(lint.severityText, 'warning');
    assert.equal(plain(lint.body), 'server_tokens on shows the nginx version');
    // event_name is newer than the .proto files the receiver decodes protobuf with (0.38's).
    if (protocol === 'http/json') assert.equal(lint.eventName, 'lint.nginx.config');
    const a = Object.fromEntries((lint.attributes ?? []).map((kv) => [kv.key, plain(kv.value)]));
    assert.equal(a['event.kind'], 'lint.nginx.config');
    assert.equal(a['event.source'], 'wasm:config-lint');
    assert.equal(a['event.key'], 'lint.nginx.config:inst-1:server-tokens-on:/etc/nginx/nginx.conf:7');
    assert.equal(Number(a['event.id']), 1);
    assert.equal(a['nginx.instance.id'], 'inst-1');
    assert.equal(a.rule, 'server-tokens-on');
    assert.deepEqual(a.nested, { a: [1, 'b'] });
    assert.ok(Number(lint.timeUnixNano) > 0);
    assert.equal(lint.resource['service.name'], 'nginx-agent');
    assert.equal(lint.resource['host.name'], 'test-host');
    assert.equal(alert.severityNumber, 21);
    assert.equal(alert.severityText, 'critical');
    const alertAttrs = attrs(alert.attributes as never);
    assert.equal(alertAttrs['event.state'], 'firing');
    const exported = () =>
      ((h.host.report().find((p) => p.name === 'otlp-exporter')?.details ?? {}) as { exported_log_records?: number })
        .exported_log_records;
    await waitFor(() => exported() === 2, 'the sender counting both records as exported');
    assert.equal(h.events.sinks().otlp.state, 'ok');
  });
}

test('an unreachable logs endpoint: records wait in the bounded queue, drops are counted in the otlp sink', async () => {
  const h = await startPlugin(plugin, {
    enabled: true,
    endpoint: 'http://127.0.0.1:1/v1/metrics',
    interval: '1h',
    queue_size: 2,
    max_batch_points: 1,
    retry_initial_interval: '10ms',
    retry_max_interval: '20ms',
    events_min_severity: 'warning',
  });
  cleanups.push(() => h.close());
  for (let i = 0; i < 50; i++)
    h.events.record({ severity: 'error', source: 'core', kind: 'event.x', key: `k${i}`, summary: 's', attributes: {} });
  h.events.record({ severity: 'info', source: 'core', kind: 'event.quiet', key: 'q', summary: 's', attributes: {} });
  await waitFor(() => h.events.sinks().otlp.dropped >= 47, 'drops counted (queue of 2 requests, one on the wire)');
  await waitFor(() => h.events.sinks().otlp.state === 'failing', 'the failing state');
  assert.match(h.events.sinks().otlp.reason ?? '', /127\.0\.0\.1:1\/v1\/logs/);
});
