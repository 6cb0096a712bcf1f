/**
 * Lines on disk are counted once through what happens to nginx and to the agent: nginx restarted,
 * a rename whose reopen comes late, the agent restarted (positions in the state directory), a FIFO
 * among the logs. Real nginx on a temp prefix, real files.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pino from 'pino';
import type { MetricBatch, NumberPoint } from '../../core/metrics/model.js';
import type { AccessLogInfo, NginxConfigChanged } from '../../core/nginx/types.js';
import { needNginx, processAlive, TestNginx, TIMED_FORMAT } from '../../core/testing/nginx.js';
import { configChangedFixture } from '../../core/testing/nginx-fixtures.js';
import { startPlugin, type PluginHarness } from '../../core/testing/plugin-harness.js';
import { plugin } from './index.js';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

const INSTANCE = 'restart-instance';

function changed(path: string): NginxConfigChanged {
  const log: AccessLogInfo = {
    path,
    file: 'nginx.conf',
    line: 1,
    tailable: true,
    formatName: 'timed',
    format: TIMED_FORMAT,
  };
  return configChangedFixture({
    instanceId: INSTANCE,
    confPath: '/x/nginx.conf',
    prefix: '/x',
    analysis: { accessLogs: [log] },
  });
}

interface Row {
  path: string;
  open: boolean;
  draining?: number;
  rotations?: number;
  error?: string;
}

function rows(h: PluginHarness): Row[] {
  const st = h.host.report().find((r) => r.name === 'nginx-logs') as { details?: { logs?: Row[] } } | undefined;
  return st?.details?.logs ?? [];
}

function responses(h: PluginHarness, path: string): number {
  return ((h.metric('nginx.http.responses')?.points ?? []) as NumberPoint[])
    .filter((p) => p.attributes['log.file.path'] === path)
    .reduce((a, p) => a + p.value, 0);
}

/** Waits until exactly `want` responses are counted, lets more polls run, and checks none was counted twice. */
async function expectCount(h: PluginHarness, path: string, want: number): Promise<void> {
  await h.waitFor(() => responses(h, path) >= want, `${want} responses counted (have ${responses(h, path)})`, 20_000);
  await h.waitFor(() => rows(h).every((r) => r.open), 'a few more polls', 20_000);
  assert.equal(responses(h, path), want);
}

function capture(): { logger: pino.Logger; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  return { lines, logger: pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) }) };
}

async function startNginx(): Promise<TestNginx> {
  const nginx = await TestNginx.start();
  cleanups.push(() => nginx.stop());
  for (const d of ['', 'logs', 'html']) execFileSync('chmod', ['755', join(nginx.prefix, d)]);
  return nginx;
}

async function follow(
  nginx: TestNginx,
  cfg: Record<string, unknown> = {},
  opts: Parameters<typeof startPlugin>[2] = {},
) {
  const h = await startPlugin(plugin, { poll_interval: '20ms', ...cfg }, opts);
  cleanups.push(() => h.close());
  h.publish('nginx.instance.added', { instance: { id: INSTANCE, pid: await nginx.masterPid() } as never });
  h.publish('nginx.config.changed', changed(nginx.accessLog));
  await h.waitFor(() => rows(h).some((r) => r.open), 'the access log open');
  return h;
}

test('nginx restarted (quit, start again): the log keeps its reader and its counters and reads on', {
  skip: needNginx(),
}, async () => {
  const nginx = await startNginx();
  const h = await follow(nginx);
  await nginx.get('/s/200', 10);
  await expectCount(h, nginx.accessLog, 10);

  const master = await nginx.masterPid();
  h.publish('nginx.instance.removed', { instance: { id: INSTANCE, pid: master } as never });
  process.kill(master, 'SIGQUIT');
  await nginx.waitFor(async () => !processAlive(master), 'nginx to quit');
  await nginx.nginx([]);
  await nginx.waitFor(async () => (await nginx.workerPids()).length > 0, 'nginx to start again');
  await nginx.get('/s/200', 7); // before the agent hears of the new instance
  h.publish('nginx.instance.added', { instance: { id: INSTANCE, pid: await nginx.masterPid() } as never });
  h.publish('nginx.config.changed', changed(nginx.accessLog));
  await nginx.get('/s/200', 3);
  await expectCount(h, nginx.accessLog, 20);
  assert.ok(
    !h.published.some(
      (e) =>
        e.topic === 'metrics' &&
        (e.data as MetricBatch).final &&
        (e.data as MetricBatch).source.endsWith(nginx.accessLog),
    ),
    'the series were never dropped',
  );
});

test('rename, a new file at the path, nginx reopens only later: the old file is read until nginx lets go of it', {
  skip: needNginx(),
}, async () => {
  const nginx = await startNginx();
  const h = await follow(nginx, { rotation_drain: '0s' });
  await nginx.get('/s/200', 5);
  await expectCount(h, nginx.accessLog, 5);

  renameSync(nginx.accessLog, `${nginx.accessLog}.1`);
  writeFileSync(nginx.accessLog, ''); // what anyone's `nginx -t` does
  await h.waitFor(() => (rows(h)[0]?.rotations ?? 0) >= 1, 'the rotation seen');
  await nginx.get('/s/200', 5); // nginx still writes the renamed file
  await expectCount(h, nginx.accessLog, 10);
  // A fixed drain (0 s here) would close the old file now; give it the chance to.
  await h.waitFor(() => rows(h)[0]?.draining === 0, 'a drain', 1000).catch(() => {});
  await nginx.get('/s/200', 5);
  await expectCount(h, nginx.accessLog, 15);

  await nginx.reopen();
  await h.waitFor(() => rows(h)[0]?.draining === 0, 'the old file closed once nginx reopened', 20_000);
  await nginx.get('/s/200', 5);
  await expectCount(h, nginx.accessLog, 20);
});

test('agent restarted: lines written while it was down are read from the saved position, bounded by catch_up_max_bytes', {
  skip: needNginx(),
}, async () => {
  const nginx = await startNginx();
  const stateDir = mkdtempSync(join(tmpdir(), 'nginx-logs-state-'));
  cleanups.push(async () => rmSync(stateDir, { recursive: true, force: true }));
  const first = await follow(nginx, {}, { agent: { stateDir } });
  await nginx.get('/s/200', 5);
  await expectCount(first, nginx.accessLog, 5);
  await first.close();
  const file = join(stateDir, 'nginx-logs', 'positions.json');
  assert.ok(JSON.parse(readFileSync(file, 'utf8')).logs[nginx.accessLog], 'the position is saved at close');

  await nginx.get('/s/200', 7); // the agent is down
  const second = await follow(nginx, {}, { agent: { stateDir } });
  await nginx.get('/s/200', 3);
  await expectCount(second, nginx.accessLog, 10);
  await second.close();

  // 40 lines while down, a cap of about 10 lines: the newest whole lines only, and a warning.
  await nginx.get('/s/200', 40);
  const lineBytes = readFileSync(nginx.accessLog, 'utf8').split('\n')[0].length + 1;
  const log = capture();
  const third = await follow(
    nginx,
    { catch_up_max_bytes: lineBytes * 10 + 5 },
    { agent: { stateDir }, logger: log.logger },
  );
  await expectCount(third, nginx.accessLog, 10);
  assert.ok(
    log.lines.some((l) => l.level === 40 && /catch_up_max_bytes .*skipped the oldest \d+ bytes/.test(l.msg)),
    'the cut is a warning',
  );
});

test('a corrupt or unreadable positions file is a warning, never a crash; the file is rewritten whole', {
  skip: needNginx(),
}, async () => {
  const nginx = await startNginx();
  const stateDir = mkdtempSync(join(tmpdir(), 'nginx-logs-state-'));
  cleanups.push(async () => rmSync(stateDir, { recursive: true, force: true }));
  const file = join(stateDir, 'nginx-logs', 'positions.json');
  mkdirSync(join(stateDir, 'nginx-logs'));
  writeFileSync(file, '{"version": 1, "logs": {"/x": {"dev": 1, "ino"');
  const log = capture();
  const h = await follow(nginx, {}, { agent: { stateDir }, logger: log.logger });
  await nginx.get('/s/200', 3);
  await expectCount(h, nginx.accessLog, 3);
  assert.ok(log.lines.some((l) => l.level === 40 && l.msg.includes(`log positions in ${file} are corrupt`)));
  await h.close();
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).version, 1);

  // A directory where the file should be: cannot be read nor written, the logs are followed anyway.
  rmSync(file);
  mkdirSync(file);
  const log2 = capture();
  const h2 = await follow(nginx, { start_at: 'beginning' }, { agent: { stateDir }, logger: log2.logger });
  await expectCount(h2, nginx.accessLog, 3);
  await h2.close();
  assert.ok(log2.lines.some((l) => l.level === 40 && l.msg.startsWith(`cannot read log positions from ${file}`)));
  assert.ok(log2.lines.some((l) => l.level === 40 && l.msg.startsWith(`cannot save log positions to ${file}`)));
});

test('a FIFO among the logs is refused with a warning naming it; the other logs are read; close does not hang', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nginx-logs-fifo-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const fifo = join(dir, 'fifo.log');
  const real = join(dir, 'real.log');
  execFileSync('mkfifo', [fifo]);
  writeFileSync(real, '');
  const log = capture();
  const h = await startPlugin(
    plugin,
    {
      poll_interval: '20ms',
      logs: [
        { path: fifo, format: '$status' },
        { path: real, format: '$status' },
      ],
    },
    { logger: log.logger },
  );
  await h.waitFor(() => rows(h).some((r) => r.path === real && r.open), 'the regular log open');
  appendFileSync(real, '200\n404\n');
  await h.waitFor(() => responses(h, real) === 2, 'the regular log read');
  await h.waitFor(
    () => log.lines.some((l) => l.level === 40 && l.msg.includes(`${fifo} is a FIFO, not a regular file: refused`)),
    'a warning naming the FIFO',
  );
  await h.close();
  assert.ok(existsSync(fifo));
});

test('lines are read on inotify events, not only on the poll timer', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nginx-logs-watch-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'access.log');
  writeFileSync(path, '');
  const h = await startPlugin(plugin, { poll_interval: '1m', logs: [{ path, format: '$status' }] });
  cleanups.push(() => h.close());
  await h.waitFor(() => rows(h).some((r) => r.open), 'the log open');
  appendFileSync(path, '200\n200\n500\n');
  await h.waitFor(() => responses(h, path) === 3, 'three lines counted long before the next poll tick', 20_000);
  await h.close();
});

test('a log is read on inotify events again after a busy spell, and one created later is read on its creation', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nginx-logs-rearm-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'access.log');
  const later = join(dir, 'later.log');
  writeFileSync(path, '');
  const h = await startPlugin(plugin, {
    poll_interval: '1m',
    logs: [
      { path, format: '$status' },
      { path: later, format: '$status' },
    ],
  });
  cleanups.push(() => h.close());
  await h.waitFor(() => rows(h).some((r) => r.path === path && r.open), 'the log open');
  // Busy: lines keep coming, so the log is read on its own timer with no watch open.
  let written = 0;
  for (let i = 0; i < 20; i++) {
    appendFileSync(path, '200\n');
    written++;
    await new Promise((r) => setTimeout(r, 50));
  }
  await h.waitFor(() => responses(h, path) === written, 'the busy spell counted', 20_000);
  // Quiet again: wait until the log is watched once more (a poll found nothing), then one line.
  await new Promise((r) => setTimeout(r, 1000));
  appendFileSync(path, '500\n');
  await h.waitFor(
    () => responses(h, path) === written + 1,
    'a line after the busy spell, before the next tick',
    20_000,
  );
  writeFileSync(later, '200\n404\n');
  await h.waitFor(() => responses(h, later) === 2, 'a log created after the start, before the next tick', 20_000);
  await h.close();
});
