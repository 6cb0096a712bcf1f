import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { Bus } from '../../core/bus/bus.js';
import { nullLogger } from '../../core/logging.js';
import { MetricStore } from '../../core/metrics/store.js';
import { type AgentProcess, runAgent, startAgent } from '../../core/testing/agent-process.js';
import { TestNginx, waitFor } from '../../core/testing/nginx.js';
import { needTool } from '../../core/testing/tools.js';
import { announceInstances, trafficBatches } from '../../core/testing/views-fixture.js';
import type { Summary } from '../../core/views/summary-types.js';
import { Views } from '../../core/views/views.js';
import { renderStatus, useColor } from '../run/status.js';

const ESC = '\u001b';

async function fixtureSummary(): Promise<Summary> {
  const bus = new Bus({ logger: nullLogger() });
  const store = new MetricStore();
  const views = new Views({
    bus,
    store,
    info: { version: '1.2.3', startedAt: Date.now() - 7_380_000, hostname: 'web-1', instanceId: 'x', labels: {} },
    plugins: () => [
      { name: 'nginx-status', kind: 'builtin', subscriptions: [], state: 'running' },
      { name: 'nginx-logs', kind: 'builtin', subscriptions: [], state: 'degraded', reason: 'cannot read a log' },
    ],
    state: () => 'running',
    intervalMs: 5000,
    dashboard: false,
  });
  announceInstances(bus, 10);
  await bus.drain(5000);
  const start = Date.now() - 60_000;
  for (let tick = 0; tick <= 12; tick++) {
    for (const b of trafficBatches(10, tick)) store.apply(b);
    views.sample(start + tick * 5000);
  }
  views.stop();
  return views.summary();
}

describe('agent status rendering', () => {
  test('10 instances: one block each with traffic, status mix, p95, config and certificate; host, plugins', async () => {
    const text = renderStatus(await fixtureSummary(), { color: false });
    assert.match(text, /^nginx-agent 1\.2\.3 on web-1 · running · up 2h 3m$/m);
    assert.equal(text.match(/^nginx fixture0 /gm)?.length, 10);
    assert.match(text, /10\.0 req\/s · 2xx 90\.0% 3xx 5\.0% 4xx 4\.0% 5xx 1\.0% · p95 \d+\.\d ms · 1 active conn/);
    assert.match(text, /config abababababab · nginx -t ok · 1 finding/);
    assert.match(text, /certificates: \/srv\/site0\/cert\.pem (9|10) days left/);
    assert.match(text, /^host {5}cpu 20\.0% · memory 42\.0% · disk \/ 60\.0% · net rx 2\.0 KB\/s tx 1000 B\/s$/m);
    assert.match(text, /^plugins {2}nginx-logs degraded \(cannot read a log\)$/m);
    assert.ok(!text.includes(ESC), 'no colour codes');
  });

  test('colour only on a TTY and without NO_COLOR', async () => {
    assert.equal(useColor({ isTTY: true }, {}), true);
    assert.equal(useColor({ isTTY: false }, {}), false);
    assert.equal(useColor({}, {}), false);
    assert.equal(useColor({ isTTY: true }, { NO_COLOR: '1' }), false);
    assert.ok(renderStatus(await fixtureSummary(), { color: true }).includes(`${ESC}[32mrunning${ESC}[0m`));
  });
});

describe('agent status against a running agent and a real nginx', { skip: needTool('nginx', 'nginx') }, () => {
  let nginx: TestNginx;
  let agent: AgentProcess;
  let port: string;
  before(async () => {
    nginx = await TestNginx.start();
    agent = await startAgent(['--api-port', '0'], {
      NGINX_AGENT_NGINX_STATUS_INTERVAL: '1s',
      NGINX_AGENT_HOST_METRICS_INTERVAL: '1s',
    });
    port = new URL(agent.url).port;
    await waitFor(
      async () => {
        await nginx.get('/ok', 3);
        const s = (await (await fetch(`${agent.url}/v1/summary`)).json()) as Summary;
        const mine = s.nginx.find((i) => i.conf_path === nginx.confPath);
        return (
          !!mine && mine.requests_per_second !== null && mine.status_mix !== null && mine.config.last_test !== null
        );
      },
      'the summary to show the test nginx with traffic',
      60_000,
    );
  });
  after(async () => {
    await agent?.stop();
    await nginx?.stop();
  });

  test('prints the summary (no colour when not on a terminal)', async () => {
    const r = await runAgent(['status', '--api-port', port]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.includes(nginx.confPath), r.stdout);
    assert.match(r.stdout, /req\/s · 2xx \d/);
    assert.match(r.stdout, /nginx -t ok/);
    assert.match(r.stdout, /^host {5}cpu /m);
    assert.ok(!r.stdout.includes(ESC));
    assert.ok(r.stdout.split('\n').length < 40, 'short');
  });

  test('--json prints GET /v1/status as before', async () => {
    const r = await runAgent(['status', '--json', '--api-port', port]);
    assert.equal(r.code, 0, r.stderr);
    const body = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.deepEqual(
      Object.keys(body).sort(),
      Object.keys((await (await fetch(`${agent.url}/v1/status`)).json()) as object).sort(),
    );
    assert.ok(Array.isArray(body.plugins));
  });

  test('a broken config on disk shows as nginx -t FAILED with its warning events', async () => {
    const conf = await readFile(nginx.confPath, 'utf8');
    await writeFile(nginx.confPath, conf.replace('location = /ok {', 'location = /ok { retrun 200;'));
    let out = '';
    await waitFor(
      async () => {
        const r = await runAgent(['status', '--api-port', port]);
        out = r.stdout;
        return /nginx -t FAILED/.test(out) && /^events {3}latest warning and worse:$/m.test(out);
      },
      'agent status to show the failed config and its events',
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}:\n${out}`);
    });
    assert.match(out, /^ {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d WARNING nginx\.config\.\w+/m);
  });

  test('says what to do when no agent answers', async () => {
    const r = await runAgent(['status', '--api-port', '1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no agent answers at http:\/\/127\.0\.0\.1:1.*agent start/);
  });
});
