import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import { RouteTable } from '../api/router.js';
import { Bus } from '../bus/bus.js';
import { waitFor } from '../testing/nginx.js';
import { configChangedFixture, instanceFixture } from '../testing/nginx-fixtures.js';
import type { NginxInstance } from '../nginx/types.js';
import { EventPipeline, type EventsConfig } from './pipeline.js';
import type { AgentEvent } from './types.js';

const CONFIG: EventsConfig = {
  buffer_size: 100,
  log_repeat_interval: 600_000,
  queue_size: 1000,
  stream_queue_size: 100,
  alertmanager: { url: '', min_severity: 'warning', resend_interval: 60_000, timeout: 5000 },
};

function setup(config: Partial<EventsConfig> = {}, now?: () => number) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  const logger = pino({ level: 'debug' }, sink);
  const bus = new Bus({ logger });
  const pipeline = new EventPipeline({
    bus,
    config: { ...CONFIG, ...config },
    logger,
    hostname: 'test-host',
    sourceOf: (topic) => (topic.startsWith('lint.') ? 'wasm:config-lint' : undefined),
    now,
  });
  const api = new RouteTable();
  pipeline.routes(api);
  const get = async (path: string) => {
    const url = new URL(path, 'http://x');
    return api.dispatch({ method: 'GET', path: url.pathname, query: url.searchParams, headers: {}, body: '' });
  };
  return { bus, pipeline, lines, api, get, events: pipeline.log };
}

const instance = (health: NginxInstance['health'], reason?: string): NginxInstance =>
  instanceFixture({
    id: 'inst-1',
    pid: 42,
    version: '1.22.1',
    prefix: '/etc/nginx',
    confPath: '/etc/nginx/nginx.conf',
    health,
    ...(reason ? { healthReason: reason } : {}),
  });

test('lint findings become one event each, with the severity, key and summary of the finding', async () => {
  const t = setup();
  t.bus.publish('lint.nginx.config', {
    instance_id: 'inst-1',
    conf_path: '/etc/nginx/nginx.conf',
    findings: [
      {
        rule: 'server-tokens-on',
        severity: 'info',
        message: 'server_tokens on shows the version',
        file: '/a.conf',
        line: 3,
      },
      { rule: 'autoindex-on', severity: 'warning', message: 'autoindex on lists files', file: '/a.conf', line: 9 },
    ],
    counts: { info: 1, warning: 1 },
  });
  await waitFor(() => t.events.lastId === 2, 'two lint events', 5000);
  const [a, b] = t.events.recent();
  assert.equal(a.kind, 'lint.nginx.config');
  assert.equal(a.source, 'wasm:config-lint');
  assert.equal(a.severity, 'info');
  assert.equal(a.key, 'lint.nginx.config:inst-1:server-tokens-on:/a.conf:3');
  assert.equal(a.summary, 'server_tokens on shows the version');
  assert.equal(a.attributes.conf_path, '/etc/nginx/nginx.conf');
  assert.equal(a.attributes.counts, undefined);
  assert.equal(b.severity, 'warning');
  assert.equal(b.state, undefined);
  await waitFor(() => t.lines.some((l) => l.key === b.key), 'the log line of the warning', 5000);
  const line = t.lines.find((l) => l.key === b.key)!;
  assert.equal(line.level, 40);
  assert.match(String(line.msg), /autoindex on lists files/);
});

test('alerts: a plugin that sets nothing still gets a firing warning with a key; status resolves it', async () => {
  const t = setup();
  t.bus.publish('alert.x.bare', { foo: 1 });
  t.bus.publish('alert.nginx.error_budget', {
    status: 'firing',
    rule: '5xx_ratio',
    instance_id: 'inst-1',
    log: '/var/log/a.log',
    message: '5xx ratio 20% is above 5%',
  });
  await waitFor(() => t.events.lastId === 2, 'two alerts', 5000);
  const [bare, budget] = t.events.recent();
  assert.equal(bare.severity, 'warning');
  assert.equal(bare.state, 'firing');
  assert.equal(bare.source, 'unknown');
  assert.equal(bare.key, 'alert.x.bare');
  assert.match(bare.summary, /^alert\.x\.bare from unknown: \{"foo":1\}/);
  assert.equal(budget.key, 'alert.nginx.error_budget:inst-1:5xx_ratio:/var/log/a.log');
  assert.deepEqual(
    t.events.firing().map((e) => e.key),
    [bare.key, budget.key],
  );
  t.bus.publish('alert.nginx.error_budget', {
    status: 'resolved',
    rule: '5xx_ratio',
    instance_id: 'inst-1',
    log: '/var/log/a.log',
    severity: 'info',
    summary: 'recovered',
  });
  t.bus.publish('event.custom', { severity: 'crit', key: 'k1', summary: 'explicit', state: 'firing' });
  await waitFor(() => t.events.lastId === 4, 'the recovery', 5000);
  const [resolved, custom] = t.events.recent({ since: 2 });
  assert.equal(resolved.state, 'resolved');
  assert.equal(resolved.summary, 'recovered');
  assert.equal(custom.severity, 'critical');
  assert.equal(custom.key, 'k1');
  assert.deepEqual(
    t.events.firing().map((e) => e.key),
    [bare.key, 'k1'],
  );
});

test('core topics: failed nginx -t is a warning condition, health down/up, plugin quarantined/recovered', async () => {
  const t = setup();
  t.bus.publish('nginx.config.validated', {
    instanceId: 'inst-1',
    version: 'v1',
    ok: false,
    exitCode: 1,
    messages: [{ level: 'emerg', text: 'unknown directive "retrun"', file: '/etc/nginx/nginx.conf', line: 12 }],
  });
  t.bus.publish('nginx.instance.health', { instance: instance('UNHEALTHY', 'no workers'), previousHealth: 'HEALTHY' });
  t.bus.publish('agent.plugin.state', { plugin: 'error-budget', state: 'quarantined', reason: 'trap' });
  await waitFor(() => t.events.lastId === 3, 'three events', 5000);
  const [test1, down, quarantined] = t.events.recent();
  assert.equal(test1.severity, 'warning');
  assert.equal(test1.state, 'firing');
  assert.match(test1.summary, /nginx -t failed \(exit 1\): unknown directive "retrun" \(\/etc\/nginx\/nginx.conf:12\)/);
  assert.equal(down.kind, 'nginx.instance.down');
  assert.equal(down.severity, 'error');
  assert.match(down.summary, /UNHEALTHY.*no workers/);
  assert.equal(quarantined.severity, 'error');
  assert.equal(t.events.firing().length, 3);
  t.bus.publish('nginx.config.validated', { instanceId: 'inst-1', version: 'v2', ok: true, exitCode: 0, messages: [] });
  t.bus.publish('nginx.instance.health', { instance: instance('HEALTHY'), previousHealth: 'UNHEALTHY' });
  t.bus.publish('agent.plugin.state', { plugin: 'error-budget', state: 'running' });
  await waitFor(() => t.events.lastId === 6, 'three recoveries', 5000);
  const recoveries = t.events.recent({ since: 3 });
  assert.deepEqual(
    recoveries.map((e) => [e.kind, e.state]),
    [
      ['nginx.config.validated', 'resolved'],
      ['nginx.instance.up', 'resolved'],
      ['agent.plugin.state', 'resolved'],
    ],
  );
  assert.deepEqual(t.events.firing(), []);
  // A passing test with nothing firing is a plain info event.
  t.bus.publish('nginx.config.validated', { instanceId: 'inst-1', version: 'v3', ok: true, exitCode: 0, messages: [] });
  await waitFor(() => t.events.lastId === 7, 'the plain pass', 5000);
  assert.equal(t.events.recent({ since: 6 })[0].state, undefined);
});

test('GET /v1/events: kind patterns, minimum severity, since and limit, newest last; bad input is a 400', async () => {
  const t = setup({ buffer_size: 5 });
  for (let i = 0; i < 8; i++)
    t.bus.publish(i % 2 ? 'alert.a' : 'event.b', { severity: i % 4 === 3 ? 'error' : 'info', key: `k${i}` });
  await waitFor(() => t.events.lastId === 8, 'eight events', 5000);
  const all = (await t.get('/v1/events')).body as { last_id: number; events: AgentEvent[] };
  assert.equal(all.last_id, 8);
  assert.deepEqual(
    all.events.map((e) => e.id),
    [4, 5, 6, 7, 8],
    'the ring keeps the newest buffer_size',
  );
  const alerts = (await t.get('/v1/events?kind=alert.*&severity=error')).body as { events: AgentEvent[] };
  assert.deepEqual(
    alerts.events.map((e) => e.id),
    [4, 8],
  );
  const page = (await t.get('/v1/events?since=5&limit=2')).body as { events: AgentEvent[] };
  assert.deepEqual(
    page.events.map((e) => e.id),
    [7, 8],
  );
  const many = (await t.get('/v1/events?kind=event.b,alert.a&limit=3')).body as { events: AgentEvent[] };
  assert.equal(many.events.length, 3);
  const bad = await t.get('/v1/events?severity=loud');
  assert.equal(bad.status, 400);
  assert.match(
    String((bad.body as { error: string }).error),
    /severity: "loud" is not one of info, warning, error, critical/,
  );
  assert.equal((await t.get('/v1/events?since=-1')).status, 400);
  assert.equal((await t.get('/v1/events?kind=a%20b')).status, 400);
  const firing = (await t.get('/v1/alerts')).body as { alerts: AgentEvent[] };
  assert.ok(firing.alerts.every((e) => e.state === 'firing'));
});

test('log sink: repeats of a key within the interval fold into one line with a count', async () => {
  let now = 1_000_000;
  const t = setup({ log_repeat_interval: 60_000 }, () => now);
  try {
    for (let i = 0; i < 5; i++)
      t.bus.publish('nginx.log.error', {
        instanceId: 'inst-1',
        file: '/var/log/nginx/error.log',
        level: 'crit',
        message: `connect() failed (111) while connecting to upstream, client: 10.0.0.${i}`,
        time: now,
      });
    await waitFor(() => t.pipeline.health().log.details?.folded === 4, 'four repeats folded', 5000);
    assert.equal(t.lines.filter((l) => l.kind === 'nginx.log.error').length, 1);
    now += 61_000;
    t.bus.publish('nginx.log.error', {
      instanceId: 'inst-1',
      file: '/var/log/nginx/error.log',
      level: 'crit',
      message: 'connect() failed (111) while connecting to upstream, client: 10.0.0.9',
      time: now,
    });
    await waitFor(
      () => t.lines.filter((l) => l.kind === 'nginx.log.error').length === 3,
      'the count, then the new one',
      5000,
    );
    const [, folded, fresh] = t.lines.filter((l) => l.kind === 'nginx.log.error');
    assert.equal(folded.repeats, 4);
    assert.match(String(folded.msg), /repeated 4 more times within 1 min/);
    assert.equal(fresh.repeats, undefined);
    assert.equal(fresh.level, 50);
  } finally {
    await t.pipeline.close(1000);
  }
});

test('a plugin payload that is not what the fields expect still makes an event; a huge one is cut', async () => {
  const t = setup();
  t.bus.publish('event.odd', {
    severity: 5,
    key: 7,
    summary: {},
    state: 'maybe',
    time: 1e300,
    findings: 'no',
  } as never);
  t.bus.publish('lint.odd', { findings: [null, 3, 'x', { message: 'only this', line: 2 }] } as never);
  t.bus.publish('event.huge', { key: 'h', blob: 'x'.repeat(100_000) });
  await waitFor(() => t.events.lastId === 3, 'three events', 5000);
  const [odd, lint, huge] = t.events.recent();
  assert.equal(odd.severity, 'info');
  assert.equal(odd.key, 'event.odd');
  assert.equal(odd.state, undefined);
  assert.ok(Math.abs(Date.parse(odd.time) - Date.now()) < 60_000, 'an impossible time is replaced by the publish time');
  assert.equal(lint.summary, 'only this');
  assert.equal(lint.key, 'lint.odd:2');
  assert.equal(huge.attributes.truncated, true);
  assert.ok(JSON.stringify(huge.attributes).length < 2000);
});

test('apply, certificate, instance, config reload and config change events carry a severity, key and summary', async () => {
  const t = setup();
  t.bus.publish('nginx.config.applied', {
    instanceId: 'inst-1',
    ok: false,
    rolledBack: true,
    steps: [
      { step: 'write', ok: true, durationMs: 1 },
      { step: 'test', ok: false, detail: 'unknown directive "retrun"', durationMs: 20 },
    ],
  });
  t.bus.publish('nginx.ssl.certificate.expiring', {
    instanceId: 'inst-1',
    path: '/etc/ssl/site.pem',
    notAfter: Date.UTC(2030, 0, 1),
    secondsLeft: 3 * 86_400,
  });
  t.bus.publish('nginx.instance.added', { instance: instance('HEALTHY') });
  t.bus.publish('agent.config.reloaded', { ok: false, changedSections: [], error: 'api.port: must be at most 65535' });
  t.bus.publish(
    'nginx.config.changed',
    configChangedFixture({
      instanceId: 'inst-1',
      confPath: '/etc/nginx/nginx.conf',
      prefix: '/etc/nginx',
      version: 'v2',
      previousVersion: 'v1',
      payload: {
        status: 'failed',
        errors: [{ file: '/etc/nginx/nginx.conf', line: 3, error: 'unexpected "}"' }],
        config: [],
      },
      changed: ['/etc/nginx/nginx.conf'],
    }),
  );
  await waitFor(() => t.events.lastId === 5, 'five events', 5000);
  const [applied, cert, added, reload, changed] = t.events.recent();
  assert.deepEqual([applied.severity, applied.key], ['error', 'nginx.config.apply:inst-1']);
  assert.equal(applied.summary, 'config apply failed at test: unknown directive "retrun"; rolled back');
  assert.deepEqual(
    [cert.severity, cert.state, cert.key],
    ['error', 'firing', 'nginx.ssl.certificate:inst-1:/etc/ssl/site.pem'],
  );
  assert.match(cert.summary, /certificate \/etc\/ssl\/site.pem expires in 3.0 days/);
  assert.deepEqual([added.kind, added.severity, added.source], ['nginx.instance.added', 'info', 'nginx-discovery']);
  assert.match(added.summary, /nginx 1.22.1 instance added \(pid 42, \/etc\/nginx\/nginx.conf\)/);
  assert.deepEqual([reload.severity, reload.source], ['error', 'core']);
  assert.match(reload.summary, /new config refused.*api.port/);
  assert.equal(changed.severity, 'warning');
  assert.match(
    changed.summary,
    /changed \(changed \/etc\/nginx\/nginx.conf\); parse error at \/etc\/nginx\/nginx.conf:3: unexpected "}"/,
  );
});
