/**
 * The plugin against a real nginx: requests with known statuses must give exactly those counts,
 * through a reload, a rename rotation with `nginx -s reopen`, and a copytruncate rotation.
 */
import assert from 'node:assert/strict';
import {
  appendFileSync,
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:net';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { HistogramPoint, NumberPoint } from '../../core/metrics/model.js';
import type { AccessLogInfo, ErrorLogInfo, NginxConfigChanged } from '../../core/nginx/types.js';
import { defaultConf, needNginx, TestNginx, TIMED_FORMAT, waitFor } from '../../core/testing/nginx.js';
import { configChangedFixture } from '../../core/testing/nginx-fixtures.js';
import { startPlugin, type PluginHarness } from '../../core/testing/plugin-harness.js';
import type { AccessTop, NginxErrorLogEvent } from '../../core/nginx/types.js';
import { nullLogger } from '../../core/logging.js';
import { NginxLogs, plugin, schema } from './index.js';
import { Scheduler } from '../../core/scheduler.js';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

const INSTANCE = 'test-instance-1';

function access(path: string, format = TIMED_FORMAT, formatName = 'timed'): AccessLogInfo {
  return { path, file: 'nginx.conf', line: 1, tailable: true, formatName, format };
}

function changed(accessLogs: AccessLogInfo[], errorLogs: ErrorLogInfo[]): NginxConfigChanged {
  return configChangedFixture({
    instanceId: INSTANCE,
    confPath: '/x/nginx.conf',
    prefix: '/x',
    analysis: { accessLogs, errorLogs },
  });
}

interface LogRow {
  path: string;
  open: boolean;
  tailable: boolean;
  lines: number;
  malformed: number;
  reason?: string;
}

function rows(h: PluginHarness): LogRow[] {
  const st = h.host.report().find((r) => r.name === 'nginx-logs');
  return ((st as { details?: { logs?: LogRow[] } } | undefined)?.details?.logs ?? []) as LogRow[];
}

/** Sum of `nginx.http.responses` points matching `attrs` for one log file. */
function responses(h: PluginHarness, path: string, attrs: Record<string, string> = {}): number {
  const m = h.metric('nginx.http.responses');
  return ((m?.points ?? []) as NumberPoint[])
    .filter(
      (p) => p.attributes['log.file.path'] === path && Object.entries(attrs).every(([k, v]) => p.attributes[k] === v),
    )
    .reduce((a, p) => a + p.value, 0);
}

function counterValue(h: PluginHarness, name: string, path: string, attrs: Record<string, string> = {}): number {
  const m = h.metric(name);
  return ((m?.points ?? []) as NumberPoint[])
    .filter(
      (p) => p.attributes['log.file.path'] === path && Object.entries(attrs).every(([k, v]) => p.attributes[k] === v),
    )
    .reduce((a, p) => a + p.value, 0);
}

/**
 * TestNginx's prefix is private (0700); when the tests run as root the workers run as nobody and
 * could not reopen their logs after `nginx -s reopen` (they would keep writing the renamed file).
 */
function letWorkersIn(nginx: TestNginx): void {
  for (const d of ['', 'logs', 'html']) chmodSync(join(nginx.prefix, d), 0o755);
}

async function start(nginx: TestNginx, cfg: Record<string, unknown> = {}) {
  letWorkersIn(nginx);
  const h = await startPlugin(plugin, { poll_interval: '20ms', rotation_drain: '300ms', ...cfg });
  cleanups.push(() => h.close());
  return h;
}

/** Requests with known statuses; returns the expected count per status range. */
async function traffic(nginx: TestNginx, k = 1): Promise<Record<string, number>> {
  assert.deepEqual(await nginx.get('/s/200', 5 * k), Array(5 * k).fill(200));
  assert.deepEqual(await nginx.get('/s/204', 1 * k), Array(k).fill(204));
  assert.deepEqual(await nginx.get('/s/301', 2 * k), Array(2 * k).fill(301));
  assert.deepEqual(await nginx.get('/s/404', 3 * k), Array(3 * k).fill(404));
  assert.deepEqual(await nginx.get('/s/500', 2 * k), Array(2 * k).fill(500));
  assert.deepEqual(await nginx.get('/upstream-down', 2 * k), Array(2 * k).fill(502));
  return { '2xx': 6 * k, '3xx': 2 * k, '4xx': 3 * k, '5xx': 4 * k };
}

function add(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
}

async function expectExact(h: PluginHarness, path: string, want: Record<string, number>): Promise<void> {
  const total = Object.values(want).reduce((a, b) => a + b, 0);
  await h.waitFor(
    () => responses(h, path) >= total,
    `${total} responses counted for ${path} (have ${responses(h, path)})`,
  );
  // Let a few more polls run: nothing may be counted twice.
  await new Promise((r) => setTimeout(r, 150));
  const got = Object.fromEntries(
    ['1xx', '2xx', '3xx', '4xx', '5xx']
      .map((r) => [r, responses(h, path, { status_range: r })])
      .filter(([, v]) => v !== 0),
  );
  assert.deepEqual(got, want);
}

test('exact counts by status range and method, through a reload, a rename rotation and a copytruncate rotation', {
  skip: needNginx(),
}, async () => {
  const nginx = await TestNginx.start();
  cleanups.push(() => nginx.stop());
  const h = await start(nginx, { removed_instance_keep: '0s' });
  h.publish(
    'nginx.config.changed',
    changed(
      [
        access(nginx.accessLog),
        { ...access('syslog:server=127.0.0.1:514'), tailable: false, reason: 'syslog destination' },
      ],
      [
        { path: nginx.errorLog, file: 'nginx.conf', line: 3, tailable: true, level: 'notice' },
        { path: 'stderr', file: 'nginx.conf', line: 2, tailable: false, reason: 'stderr', level: 'error' },
      ],
    ),
  );
  await h.waitFor(() => rows(h).filter((r) => r.open).length === 2, 'both logs open');
  const st = rows(h);
  assert.deepEqual(
    st.filter((r) => !r.tailable).map((r) => [r.path, r.reason]),
    [
      ['syslog:server=127.0.0.1:514', 'syslog destination'],
      ['stderr', 'stderr'],
    ],
    'non-tailable destinations are listed in status with the reason',
  );

  let want = await traffic(nginx);
  await expectExact(h, nginx.accessLog, want);
  assert.equal(responses(h, nginx.accessLog, { 'http.request.method': 'GET' }), 15);
  assert.equal(counterValue(h, 'nginx.upstream.errors', nginx.errorLog, { reason: 'connect_refused' }), 2);

  // Reload in the middle.
  await nginx.reload();
  want = add(want, await traffic(nginx));
  await expectExact(h, nginx.accessLog, want);

  // logrotate `create` + postrotate `nginx -s reopen`, with traffic between the rename and the reopen.
  renameSync(nginx.accessLog, `${nginx.accessLog}.1`);
  want = add(want, await traffic(nginx));
  await nginx.reopen();
  await h.waitFor(() => existsSync(nginx.accessLog), 'nginx to reopen a new access.log');
  const rotatedSize = async () => (await stat(`${nginx.accessLog}.1`)).size;
  await h.waitFor(async () => {
    const before = await rotatedSize();
    await nginx.get('/s/200');
    want = add(want, { '2xx': 1 });
    return (await stat(nginx.accessLog)).size > 0 && (await rotatedSize()) === before;
  }, 'the workers to write to the new access.log');
  want = add(want, await traffic(nginx));
  await expectExact(h, nginx.accessLog, want);
  assert.ok(counterValue(h, 'nginx.log.rotations', nginx.accessLog, { kind: 'rename' }) >= 1);

  // copytruncate.
  copyFileSync(nginx.accessLog, `${nginx.accessLog}.2`);
  truncateSync(nginx.accessLog, 0);
  want = add(want, await traffic(nginx, 2));
  await expectExact(h, nginx.accessLog, want);

  // Error log: one connect() refused per /upstream-down request (2 + 2 + 2 + 2 + 4).
  await h.waitFor(
    () => counterValue(h, 'nginx.upstream.errors', nginx.errorLog, { reason: 'connect_refused' }) === 12,
    '12 connect refused errors',
  );
  assert.equal(counterValue(h, 'nginx.error_log.entries', nginx.errorLog, { level: 'error' }), 12);
  assert.ok(
    counterValue(h, 'nginx.error_log.entries', nginx.errorLog, { level: 'notice' }) > 0,
    'reload and reopen write notice lines',
  );
  assert.equal(counterValue(h, 'nginx.log.lines.malformed', nginx.accessLog), 0);
  assert.ok(counterValue(h, 'nginx.log.rotations', nginx.accessLog, { kind: 'truncate' }) >= 1);

  // The request time histogram has one observation per response; upstream times one per try.
  const rt = (h.metric('nginx.http.request.time')?.points ?? []) as HistogramPoint[];
  const total = Object.values(want).reduce((a, b) => a + b, 0);
  assert.equal(rt.find((p) => p.attributes['log.file.path'] === nginx.accessLog)?.count, total);
  // A refused connect logs `-` as $upstream_connect_time and 0.000 as $upstream_response_time.
  const hcount = (name: string) =>
    ((h.metric(name)?.points ?? []) as HistogramPoint[]).find((p) => p.attributes['log.file.path'] === nginx.accessLog)
      ?.count;
  assert.equal(hcount('nginx.upstream.connect.time'), 0);
  assert.equal(hcount('nginx.upstream.header.time'), 0);
  assert.equal(hcount('nginx.upstream.response.time'), 12);
  assert.equal(rt[0].attributes['nginx.instance.id'], INSTANCE);

  // Malformed lines are counted, not thrown.
  appendFileSync(nginx.accessLog, 'garbage line\nanother one\n');
  await h.waitFor(
    () => counterValue(h, 'nginx.log.lines.malformed', nginx.accessLog) === 2,
    'two malformed lines counted',
  );
  await expectExact(h, nginx.accessLog, want);

  // The instance goes away: its series go with it.
  h.publish('nginx.instance.removed', { instance: { id: INSTANCE } as never });
  await h.waitFor(() => h.metric('nginx.http.responses') === undefined, 'the series removed with the instance');
  assert.equal(rows(h).length, 0);
});

test('a log that does not exist yet is counted from its first line; emerg/alert/crit lines are published', {
  skip: needNginx(),
}, async () => {
  const nginx = await TestNginx.start();
  cleanups.push(() => nginx.stop());
  const later = join(nginx.prefix, 'logs', 'later.log');
  // A unix socket in the document root: open() fails with ENXIO, which nginx logs at crit.
  mkdirSync(join(nginx.prefix, 'html', 'crit'), { recursive: true });
  letWorkersIn(nginx);
  const sock: Server = createServer();
  await new Promise<void>((r) => sock.listen(join(nginx.prefix, 'html', 'crit', 'sock'), r));
  cleanups.push(() => new Promise((r) => sock.close(r)));

  const h = await start(nginx);
  h.publish(
    'nginx.config.changed',
    changed([access(later)], [{ path: nginx.errorLog, file: 'nginx.conf', line: 3, tailable: true, level: 'notice' }]),
  );
  await h.waitFor(() => rows(h).some((r) => r.path === nginx.errorLog && r.open), 'error log open');
  assert.equal(rows(h).find((r) => r.path === later)?.open, false);

  await nginx.writeConf(
    defaultConf(
      { port: nginx.port, prefix: nginx.prefix },
      { serverExtra: `access_log ${later} timed;\n        location /crit/ { root ${nginx.prefix}/html; }` },
    ),
  );
  await nginx.reload();
  const want = await traffic(nginx);
  await expectExact(h, later, want);

  assert.deepEqual(await nginx.get('/crit/sock'), [500]);
  await h.waitFor(
    () => h.published.some((e) => e.topic === 'nginx.log.error'),
    'a crit line published on nginx.log.error',
  );
  const ev = h.published.find((e) => e.topic === 'nginx.log.error')!.data as NginxErrorLogEvent;
  assert.equal(ev.level, 'crit');
  assert.equal(ev.instanceId, INSTANCE);
  assert.equal(ev.file, nginx.errorLog);
  assert.match(ev.message, /open\(\) ".*crit\/sock" failed \(6: No such device or address\)/);
  // The metrics of a log that just had lines are published up to a second later (the publish gap).
  await h.waitFor(
    () => counterValue(h, 'nginx.error_log.entries', nginx.errorLog, { level: 'crit' }) === 1,
    'the crit line counted in nginx.error_log.entries',
  );
});

test('a log is positioned when it is followed: with start_at end, lines written before the next tick count', {
  skip: needNginx(),
}, async () => {
  // The sidecar e2e sent its traffic right after the agent said "following"; the first look at the
  // log came a poll_interval later and skipped those lines as history.
  const nginx = await TestNginx.start();
  cleanups.push(() => nginx.stop());
  const history = await traffic(nginx); // history: not counted
  // nginx writes a request's log line after its response: wait for all of them, or the last
  // history line could land after the plugin has positioned itself at the end, and count.
  const historyLines = Object.values(history).reduce((a, b) => a + b, 0);
  await waitFor(
    () => readFileSync(nginx.accessLog, 'utf8').split('\n').length - 1 >= historyLines,
    `the ${historyLines} history lines in ${nginx.accessLog}`,
  );
  const h = await start(nginx, { poll_interval: '1m' });
  h.publish('nginx.config.changed', changed([access(nginx.accessLog)], []));
  await h.waitFor(() => rows(h).some((r) => r.path === nginx.accessLog && r.open), 'access log open', 20_000);
  const want = await traffic(nginx);
  await expectExact(h, nginx.accessLog, want);
});

test('static logs from the config; start_at beginning counts history; a bad format is reported in status', {
  skip: needNginx(),
}, async () => {
  const nginx = await TestNginx.start();
  cleanups.push(() => nginx.stop());
  const want = await traffic(nginx);
  const h = await start(nginx, {
    start_at: 'beginning',
    logs: [
      { path: nginx.accessLog, format: TIMED_FORMAT },
      { path: join(nginx.prefix, 'logs', 'bad.log'), format: '$status ${broken' },
      { path: join(nginx.prefix, 'html'), type: 'error' },
    ],
  });
  await expectExact(h, nginx.accessLog, want);
  const m = h.metric('nginx.http.responses')!;
  assert.equal(m.points[0].attributes['nginx.instance.id'], undefined, 'static logs carry no instance id');
  const st = h.host.report().find((r) => r.name === 'nginx-logs')!;
  assert.equal(st.state, 'degraded');
  assert.match(String(st.reason), /bad\.log: log_format cannot be used: .*no closing/);
  await h.waitFor(
    () =>
      /html: .*html is a directory, not a regular file: refused/.test(
        String(h.host.report().find((r) => r.name === 'nginx-logs')!.reason),
      ),
    'the unreadable log named in the status',
  );
});

test('reconfigure: static logs follow the new list, new bounds restart the histograms, no restart of the plugin', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nginx-logs-reconf-'));
  const a = join(dir, 'a.log');
  const b = join(dir, 'b.log');
  writeFileSync(a, '');
  writeFileSync(b, '');
  const parse = (raw: Record<string, unknown>) => schema.parse(raw, ['nginx_logs'], []);
  const batches: {
    source: string;
    final?: boolean;
    metrics: readonly { name: string; points: readonly unknown[] }[];
  }[] = [];
  const p = new NginxLogs();
  const ac = new AbortController();
  p.init({
    config: parse({ poll_interval: '1m', logs: [{ path: a, format: '$status $request_time' }] }),
    bus: {
      publish: (topic: string, data: unknown) => void (topic === 'metrics' && batches.push(data as never)),
    } as never,
    logger: nullLogger(),
    signal: ac.signal,
    scheduler: new Scheduler(),
    api: { route() {} },
    store: { snapshot: () => [], publishedSnapshot: () => [], sources: () => [] },
    agent: { version: 't', startedAt: 0, hostname: 'h' },
  });
  cleanups.push(async () => {
    ac.abort();
    await p.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const paths = () => (p.status().details as { logs: { path: string }[] }).logs.map((l) => l.path);
  assert.deepEqual(paths(), [a]);
  appendFileSync(a, '200 0.2\n');
  await p.tick();
  const bounds = () => {
    const last = batches.filter((x) => x.source.endsWith(a)).at(-1)!;
    return (last.metrics.find((m) => m.name === 'nginx.http.request.time')!.points[0] as HistogramPoint).bounds;
  };
  assert.deepEqual(bounds().length, 15);

  p.reconfigure(
    parse({
      poll_interval: '1m',
      histogram_bounds: [0.5, 0.1],
      logs: [
        { path: a, format: '$status $request_time' },
        { path: b, type: 'error' },
      ],
    }),
  );
  assert.deepEqual(paths(), [a, b]);
  appendFileSync(a, '200 0.3\n');
  await p.tick();
  assert.deepEqual(bounds(), [0.1, 0.5], 'new bounds, sorted');

  p.reconfigure(parse({ poll_interval: '1m', logs: [{ path: b, type: 'error' }] }));
  assert.deepEqual(paths(), [b]);
  assert.ok(
    batches.some((x) => x.source === `nginx-logs:static:${a}` && x.final),
    'the removed log takes its series with it',
  );
});

test('publishes nginx.access.top: the most requested paths of the last minute, without query strings, with 5xx', {
  skip: needNginx(),
}, async () => {
  const nginx = await TestNginx.start();
  cleanups.push(() => nginx.stop());
  const h = await start(nginx);
  h.publish('nginx.config.changed', changed([access(nginx.accessLog)], []));
  await h.waitFor(() => rows(h).some((r) => r.open), 'the access log open');
  await nginx.get('/s/200?page=1', 3);
  await nginx.get('/s/200?page=2', 2);
  await nginx.get('/s/404', 3);
  await nginx.get('/s/500', 2);
  const latest = () =>
    h.published
      .filter((m) => m.topic === 'nginx.access.top')
      .map((m) => m.data as AccessTop)
      .at(-1);
  await h.waitFor(() => latest()?.requests === 10, `10 requests in nginx.access.top (have ${latest()?.requests})`);
  const top = latest()!;
  assert.equal(top.instanceId, INSTANCE);
  assert.equal(top.logPath, nginx.accessLog);
  assert.equal(top.windowSeconds, 60);
  assert.deepEqual(top.uris, [
    { uri: '/s/200', requests: 5, errors5xx: 0 },
    { uri: '/s/404', requests: 3, errors5xx: 0 },
    { uri: '/s/500', requests: 2, errors5xx: 2 },
  ]);
});

test('no nginx.access.top for a log_format without the request', { skip: needNginx() }, async () => {
  const nginx = await TestNginx.start();
  cleanups.push(() => nginx.stop());
  const h = await start(nginx);
  // The file is read with a format that has no $request, $request_uri or $uri.
  h.publish('nginx.config.changed', changed([access(nginx.accessLog, '$remote_addr $status', 'bare')], []));
  await h.waitFor(() => rows(h).some((r) => r.open), 'the access log open');
  await nginx.get('/s/200', 2);
  await h.waitFor(() => rows(h).some((r) => r.lines >= 2), 'two lines read');
  assert.equal(h.published.filter((m) => m.topic === 'nginx.access.top').length, 0);
});
