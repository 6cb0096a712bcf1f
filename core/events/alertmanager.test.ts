import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import pino from 'pino';
import { needAlertmanager, startAlertmanager } from '../testing/alertmanager.js';
import { waitFor } from '../testing/nginx.js';
import { AlertmanagerSink } from './alertmanager.js';
import { EventLog } from './log.js';

const logger = pino({ level: 'silent' });

test('a real Alertmanager shows a firing condition with its labels, re-sent while firing, then resolved', {
  skip: needAlertmanager(),
}, async () => {
  const am = await startAlertmanager();
  after(() => am.stop());
  const log = new EventLog({ capacity: 100 });
  const sink = new AlertmanagerSink({
    url: am.url,
    minSeverity: 'warning',
    resendIntervalMs: 1000,
    timeoutMs: 5000,
    capacity: 100,
    hostname: 'web-1',
    logger,
  });
  after(() => sink.close(1000));
  log.subscribe(sink.queue.push);
  const key = 'alert.nginx.error_budget:inst-1:5xx_ratio:/var/log/nginx/access.log';
  const fire = () =>
    log.record({
      severity: 'warning',
      source: 'wasm:error-budget',
      kind: 'alert.nginx.error_budget',
      key,
      summary: '5xx ratio 30% (30 of 100 requests) is above 5%',
      attributes: { instance_id: 'inst-1', rule: '5xx_ratio' },
      state: 'firing',
    });
  fire();
  // Below min_severity and not conditions: never sent.
  log.record({
    severity: 'info',
    source: 'core',
    kind: 'alert.quiet',
    key: 'q',
    summary: 'q',
    attributes: {},
    state: 'firing',
  });
  log.record({ severity: 'error', source: 'core', kind: 'event.x', key: 'x', summary: 'x', attributes: {} });

  await waitFor(async () => (await am.alerts()).length > 0, 'the alert in Alertmanager', 20_000);
  const [shown] = await am.alerts();
  assert.equal((await am.alerts()).length, 1);
  assert.equal(shown.status.state, 'active');
  assert.deepEqual(shown.labels, {
    alertname: 'alert.nginx.error_budget',
    severity: 'warning',
    instance: 'web-1',
    nginx_instance_id: 'inst-1',
    key,
    kind: 'alert.nginx.error_budget',
    source: 'wasm:error-budget',
  });
  assert.equal(shown.annotations.summary, '5xx ratio 30% (30 of 100 requests) is above 5%');
  const firstEnd = Date.parse(shown.endsAt);
  assert.ok(firstEnd > Date.now(), 'endsAt lies ahead while firing');
  // Re-sent every resend_interval: endsAt moves forward.
  await waitFor(async () => Date.parse((await am.alerts())[0]?.endsAt ?? '0') > firstEnd, 'a re-send', 20_000);
  await waitFor(
    () => am.notified.some((a) => a.status === 'firing' && a.labels.key === key),
    'the firing notification',
    20_000,
  );

  log.record({
    severity: 'info',
    source: 'wasm:error-budget',
    kind: 'alert.nginx.error_budget',
    key,
    summary: '5xx ratio 1% is within 5%',
    attributes: { instance_id: 'inst-1' },
    state: 'resolved',
  });
  await waitFor(async () => (await am.alerts()).length === 0, 'the alert resolved (gone from /api/v2/alerts)', 20_000);
  await waitFor(
    () => am.notified.some((a) => a.status === 'resolved' && a.labels.key === key),
    'the resolved notification',
    20_000,
  );
  assert.equal(sink.report().state, 'ok');
  assert.equal(sink.report().details?.firing, 0);
});

test('an unreachable Alertmanager: the sink reports failing and retries; it never blocks the log', async () => {
  const log = new EventLog({ capacity: 100 });
  const sink = new AlertmanagerSink({
    url: 'http://127.0.0.1:1',
    minSeverity: 'warning',
    resendIntervalMs: 60_000,
    timeoutMs: 1000,
    capacity: 10,
    hostname: 'web-1',
    logger,
  });
  after(() => sink.close(100));
  log.subscribe(sink.queue.push);
  for (let i = 0; i < 100; i++)
    log.record({
      severity: 'error',
      source: 'core',
      kind: 'alert.x',
      key: `k${i}`,
      summary: 's',
      attributes: {},
      state: 'firing',
    });
  assert.equal(log.lastId, 100);
  await waitFor(() => sink.report().state === 'failing', 'the failing state', 10_000);
  const r = sink.report();
  assert.match(r.reason ?? '', /127\.0\.0\.1:1\/api\/v2\/alerts: .*\(retrying\)/);
  assert.ok((r.details?.firing as number) <= 10, 'at most queue_size alerts tracked');
  assert.throws(
    () =>
      new AlertmanagerSink({
        url: 'nope',
        minSeverity: 'warning',
        resendIntervalMs: 1000,
        timeoutMs: 1000,
        capacity: 1,
        hostname: 'h',
        logger,
      }),
    /events.alertmanager.url: "nope" is not a URL/,
  );
});
