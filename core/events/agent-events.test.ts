/**
 * The "done means", end to end: the real `agent start` (CLI process) with the shipped Wasm
 * plugins (config-lint, error-budget), a real nginx, a real Alertmanager and an OTLP receiver that
 * decodes with the official protos. A config with `server_tokens on;` saved on disk becomes a lint
 * event in the log, in `agent events`, on the SSE stream and in OTLP logs; a 5xx burst makes
 * error-budget fire and Alertmanager show it; traffic that recovers resolves it there.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OtlpReceiver } from '../../plugins/otlp-exporter/testing/receiver.js';
import { needAlertmanager, startAlertmanager, type TestAlertmanager } from '../testing/alertmanager.js';
import { REPO_ROOT, runAgent, startAgent, type AgentProcess } from '../testing/agent-process.js';
import { needNginx, TestNginx, waitFor } from '../testing/nginx.js';
import { openEventStream } from './sse-client.js';
import type { AgentEvent } from './types.js';

const skip = needNginx() || needAlertmanager();

describe('events end to end: shipped plugins, real nginx, Alertmanager, OTLP', { skip }, () => {
  let nginx: TestNginx;
  let am: TestAlertmanager;
  let rx: OtlpReceiver;
  let agent: AgentProcess;
  let dir: string;
  let configFile: string;
  const streamed: AgentEvent[] = [];
  const stream = new AbortController();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'agent-events-e2e-'));
    nginx = await TestNginx.start();
    am = await startAlertmanager();
    rx = await OtlpReceiver.start();
    // The shipped plugins, error-budget with a short window so recovery comes within the test.
    const pluginsDir = join(dir, 'plugins');
    for (const name of ['config-lint', 'error-budget'])
      cpSync(join(REPO_ROOT, 'wasm-plugins', name), join(pluginsDir, name), { recursive: true });
    const budgetYaml = join(pluginsDir, 'error-budget', 'plugin.yaml');
    writeFileSync(
      budgetYaml,
      readFileSync(budgetYaml, 'utf8')
        .replace('window_s: "300"', 'window_s: "4"')
        .replace('min_requests: "20"', 'min_requests: "5"'),
    );
    configFile = join(dir, 'agent.yaml');
    writeFileSync(
      configFile,
      `agent:
  state_dir: ${join(dir, 'state')}
wasm:
  dirs: [${pluginsDir}]
  watch: false
events:
  alertmanager:
    url: ${am.url}
    resend_interval: 2s
nginx_discovery:
  enabled: false
nginx_status:
  enabled: false
nginx_config:
  static_instances:
    - conf_path: ${nginx.confPath}
      prefix: ${nginx.prefix}
      binary: /usr/sbin/nginx
nginx_logs:
  poll_interval: 100ms
otlp_exporter:
  enabled: true
  endpoint: ${rx.url}
  interval: 1h
`,
    );
    agent = await startAgent(['-c', configFile, '--api-port', '0']);
    await waitFor(
      async () => {
        const plugins = (
          (await (await fetch(`${agent.url}/v1/plugins`)).json()) as { plugins: { name: string; state: string }[] }
        ).plugins;
        return ['config-lint', 'error-budget'].every((n) => plugins.some((p) => p.name === n && p.state === 'running'));
      },
      'both Wasm plugins running',
      60_000,
    );
    const opened = await openEventStream(`${agent.url}/v1/events/stream?kind=lint.*`, {
      signal: stream.signal,
      onFrame: (f) => {
        if (f.event === 'message') streamed.push(JSON.parse(f.data) as AgentEvent);
      },
    });
    assert.equal(opened.status, 200);
  });

  after(async () => {
    stream.abort();
    await agent?.stop();
    await am?.stop();
    await rx?.close();
    await nginx?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('server_tokens on saved on disk: a lint event in the log, agent events, the SSE stream and OTLP logs', async () => {
    const conf = readFileSync(nginx.confPath, 'utf8');
    const saved = Date.now();
    writeFileSync(nginx.confPath, conf.replace(/http\s*\{/, 'http {\n    server_tokens on;'));
    const isTokens = (e: { kind?: unknown; key?: unknown }) =>
      e.kind === 'lint.nginx.config' && String(e.key).includes('server-tokens-on');
    const seen: Record<string, number> = {};
    const mark = (name: string, ok: boolean) => {
      if (ok && seen[name] === undefined) seen[name] = Date.now() - saved;
      return ok;
    };
    await waitFor(
      async () => {
        mark(
          'log',
          agent.logs.some((l) => isTokens(l)),
        );
        mark('sse', streamed.some(isTokens));
        mark(
          'otlp',
          rx
            .logRecords()
            .some((r) =>
              (r.attributes ?? []).some((kv) => kv.key === 'rule' && kv.value.stringValue === 'server-tokens-on'),
            ),
        );
        if (seen.cli === undefined) {
          const port = new URL(agent.url).port;
          const out = await runAgent(['events', '-c', configFile, '--api-port', port, '--kind', 'lint.*', '--json']);
          mark(
            'cli',
            out.stdout
              .split('\n')
              .filter(Boolean)
              .some((l) => isTokens(JSON.parse(l))),
          );
        }
        return Object.keys(seen).length === 4;
      },
      'the lint event in the log, agent events, the stream and OTLP logs',
      60_000,
    );
    console.log(`# server_tokens lint event seen after (ms): ${JSON.stringify(seen)}`);
    const event = streamed.find(isTokens)!;
    assert.equal(event.source, 'wasm:config-lint');
    assert.match(event.summary, /server_tokens/);
    // The table: one readable line with the kind and the summary.
    const port = new URL(agent.url).port;
    const table = await runAgent(['events', '-c', configFile, '--api-port', port, '--kind', 'lint.*']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^\s*ID\s+TIME\s+SEVERITY\s+STATE\s+KIND\s+SUMMARY/);
    assert.match(table.stdout, /lint\.nginx\.config\s+server_tokens/);
  });

  it('a 5xx burst makes error-budget fire in Alertmanager; recovery resolves it there', async () => {
    await nginx.get('/ok', 10);
    await nginx.get('/s/500', 20);
    await waitFor(
      async () => (await am.alerts()).some((a) => a.labels.alertname === 'alert.nginx.error_budget'),
      'the error-budget alert in Alertmanager',
      60_000,
    );
    const alert = (await am.alerts()).find((a) => a.labels.alertname === 'alert.nginx.error_budget')!;
    assert.equal(alert.status.state, 'active');
    assert.equal(alert.labels.severity, 'warning');
    assert.equal(alert.labels.source, 'wasm:error-budget');
    assert.match(alert.annotations.summary, /5xx ratio/);
    const firing = (await (await fetch(`${agent.url}/v1/alerts`)).json()) as { alerts: AgentEvent[] };
    assert.ok(firing.alerts.some((a) => a.kind === 'alert.nginx.error_budget'));
    // Good traffic until the 5xx leave the 4 s window and the ratio is back under 5%.
    await waitFor(
      async () => {
        await nginx.get('/ok', 10);
        return !(await am.alerts()).some((a) => a.labels.alertname === 'alert.nginx.error_budget');
      },
      'the alert resolved in Alertmanager',
      60_000,
    );
    await waitFor(
      () => am.notified.some((a) => a.status === 'resolved' && a.labels.alertname === 'alert.nginx.error_budget'),
      'the resolved notification from Alertmanager',
      30_000,
    );
    const health = (await (await fetch(`${agent.url}/health`)).json()) as {
      events: { sinks: Record<string, { state: string; dropped: number }> };
    };
    assert.deepEqual(Object.keys(health.events.sinks).sort(), ['alertmanager', 'log', 'otlp', 'stream']);
    for (const s of Object.values(health.events.sinks)) assert.equal(s.dropped, 0);
  });
  it('a config that fails nginx -t on disk: a warning event, followed live by agent events --follow, and /v1/nginx says failed', async () => {
    const port = new URL(agent.url).port;
    const { spawn } = await import('node:child_process');
    const follow = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(REPO_ROOT, 'cmd', 'agent.ts'),
        'events',
        '-c',
        configFile,
        '--api-port',
        port,
        '--follow',
        '--json',
        '--kind',
        'nginx.config.*',
        '--severity',
        'warning',
        '--limit',
        '0',
      ],
      { cwd: REPO_ROOT },
    );
    let out = '';
    follow.stdout.on('data', (d) => (out += d));
    after(() => follow.kill());
    // The follower is attached once its stream is open: the agent counts it as a stream client.
    await waitFor(
      async () => {
        const health = (await (await fetch(`${agent.url}/health`)).json()) as {
          events: { sinks: { stream: { details: { clients: number } } } };
        };
        return health.events.sinks.stream.details.clients >= 2;
      },
      'agent events --follow attached',
      60_000,
    );
    const conf = readFileSync(nginx.confPath, 'utf8');
    writeFileSync(nginx.confPath, conf.replace(/http\s*\{/, 'http {\n    retrun 200;'));
    const isFailedTest = (e: AgentEvent) => e.kind === 'nginx.config.validated' && e.state === 'firing';
    await waitFor(
      () =>
        out
          .split('\n')
          .filter(Boolean)
          .some((l) => isFailedTest(JSON.parse(l) as AgentEvent)),
      'the failed nginx -t streamed to agent events --follow',
      60_000,
    );
    const event = out
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as AgentEvent)
      .find(isFailedTest)!;
    assert.equal(event.severity, 'warning');
    assert.match(event.summary, /nginx -t failed .*retrun/);
    const list = (await (await fetch(`${agent.url}/v1/nginx`)).json()) as {
      instances: { configStatus: string; lastTest: { ok: boolean } }[];
    };
    assert.equal(list.instances[0].configStatus, 'failed');
    assert.equal(list.instances[0].lastTest.ok, false);
    const alerts = (await (await fetch(`${agent.url}/v1/alerts`)).json()) as { alerts: AgentEvent[] };
    assert.ok(alerts.alerts.some((a) => a.kind === 'nginx.config.validated'));
    assert.ok(
      agent.logs.some((l) => l.kind === 'nginx.config.validated' && l.level === 40),
      'a warn line in the log',
    );
  });
});
