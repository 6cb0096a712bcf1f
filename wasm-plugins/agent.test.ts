/**
 * The shipped plugins inside a real Agent (bus, plugin host, the Wasm worker of core/wasm, API on
 * port 0), loaded from this folder as `agent start --plugins-dir wasm-plugins` loads them: each
 * answers the payloads of the topics it subscribes to on the bus, and /v1/plugins and /metrics show
 * them.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { Agent } from '../core/agent.js';
import { loadConfig } from '../core/config/load.js';
import type { Metric, MetricBatch } from '../core/metrics/model.js';
import { parseNginxConfig } from '../core/nginx/config/parse.js';
import type { NginxInstanceEvent } from '../core/nginx/types.js';
import { waitFor } from '../core/testing/nginx.js';
import { configChangedFixture } from '../core/testing/nginx-fixtures.js';
import { needTool } from '../core/testing/tools.js';
import type { Envelope } from '../core/topics.js';

/** A plugin name that only the waPC test's made-up agent.plugin.state message carries. */
const FAKE = 'made-up-plugin';
const noClang = needTool('clang', 'clang lld wasi-libc libclang-rt-14-dev-wasm32');

const root = dirname(fileURLToPath(import.meta.url));
const json = <T>(path: string) => JSON.parse(readFileSync(join(root, path), 'utf8')) as T;

describe('the shipped plugins in a running agent', () => {
  let agent: Agent;
  let url: string;
  const seen: Envelope[] = [];
  const on = (topic: string) => seen.filter((e) => e.topic === topic);

  before(async () => {
    const loaded = loadConfig({
      builtins: [],
      flags: [
        { path: 'api.port', flag: '--api-port', value: 0 },
        { path: 'wasm.dirs', flag: '--plugins-dir', value: [root] },
        { path: 'wasm.watch', flag: 'test', value: false },
      ],
      env: {},
      searchPaths: [],
    });
    agent = new Agent({ loaded, builtins: [], logger: pino({ level: 'silent' }) });
    agent.bus.subscribe('test-recorder', ['alert.*', 'lint.*', 'agent.plugin.state'], (m) => void seen.push(m));
    await agent.start();
    await agent.wasm!.ready;
    url = `http://127.0.0.1:${agent.apiAddress!.port}`;
  });
  after(async () => {
    await agent?.stop();
  });

  it('loads the five plugins, running, with the versions their describe returns', async () => {
    const body = (await (await fetch(`${url}/v1/plugins`)).json()) as {
      plugins: { name: string; state: string; details: Record<string, unknown> }[];
    };
    const wasm = body.plugins
      .filter((p) => p.details?.kind === 'wasm')
      .map((p) => [p.name, p.state, p.details.version]);
    assert.deepEqual(
      wasm.sort().filter(([name]) => !(noClang && name === 'bus-meter')),
      [
        ...(noClang ? [] : [['bus-meter', 'running', '1.0.0']]),
        ['config-lint', 'running', '1.0.0'],
        ['error-budget', 'running', '1.0.0'],
        ['nginx-down-alert', 'running', '1.0.0'],
        ['plugin-state-alert', 'running', undefined], // waPC: no describe
      ],
    );
  });

  it('plugin-state-alert (waPC) answers a quarantined plugin on agent.plugin.state', async () => {
    agent.bus.publish('agent.plugin.state', { plugin: FAKE, state: 'quarantined', reason: 'r' });
    await waitFor(() => on('alert.agent.plugin').length === 1, 'alert.agent.plugin');
    const alert = on('alert.agent.plugin')[0].data as Record<string, unknown>;
    assert.equal(alert.plugin, FAKE);
    assert.equal(alert.status, 'firing');
  });

  it('nginx-down-alert answers an UNHEALTHY instance on the bus', async () => {
    const ev = json<{ data: NginxInstanceEvent }>('nginx-down-alert/testdata/health-unhealthy.json');
    agent.bus.publish('nginx.instance.health', ev.data);
    await waitFor(() => on('alert.nginx.down').length === 1, 'alert.nginx.down');
    assert.equal((on('alert.nginx.down')[0].data as Record<string, unknown>).instance_id, ev.data.instance.id);
  });

  it('config-lint answers nginx.config.changed with its findings', async () => {
    const confPath = join(root, 'config-lint', 'testdata', 'risky', 'nginx.conf');
    const change = configChangedFixture({
      instanceId: 'inst-1',
      confPath,
      prefix: dirname(confPath),
      payload: await parseNginxConfig(confPath),
    });
    agent.bus.publish('nginx.config.changed', change);
    await waitFor(() => on('lint.nginx.config').length === 1, 'lint.nginx.config');
    const lint = on('lint.nginx.config')[0].data as { instance_id: string; findings: unknown[] };
    assert.equal(lint.instance_id, 'inst-1');
    assert.equal(lint.findings.length, 7);
  });

  it('error-budget answers a 5xx burst in nginx-logs batches (its output path), and /metrics counts the calls', async () => {
    const tpl = json<{ data: MetricBatch }>('error-budget/testdata/nginx-logs-batch.json').data;
    const at = (time: number, ok: number, err: number): MetricBatch => ({
      ...tpl,
      time,
      metrics: tpl.metrics.map(
        (m): Metric =>
          m.type === 'counter' && m.name === 'nginx.http.responses'
            ? {
                ...m,
                points: [
                  { attributes: { status_range: '2xx' }, value: ok, startTime: 1 },
                  { attributes: { status_range: '5xx' }, value: err, startTime: 1 },
                ],
              }
            : m,
      ),
    });
    const now = Date.now();
    agent.bus.publish('metrics', at(now - 20_000, 1000, 0));
    agent.bus.publish('metrics', at(now - 10_000, 1100, 50));
    await waitFor(() => on('alert.nginx.error_budget').length === 1, 'alert.nginx.error_budget');
    assert.equal((on('alert.nginx.error_budget')[0].data as Record<string, unknown>).status, 'firing');
    const text = await (await fetch(`${url}/metrics`)).text();
    for (const name of ['config-lint', 'error-budget', 'nginx-down-alert']) {
      const m = new RegExp(`^agent_wasm_plugin_calls_total\\{plugin="${name}"\\} (\\d+)`, 'm').exec(text);
      assert.ok(m && Number(m[1]) >= 1, `agent_wasm_plugin_calls_total for ${name} in /metrics`);
      assert.match(text, new RegExp(`^agent_wasm_plugin_errors_total\\{plugin="${name}"\\} 0$`, 'm'));
    }
    assert.deepEqual(
      on('agent.plugin.state').filter(
        (e) => (e.data as { state: string }).state !== 'running' && (e.data as { plugin: string }).plugin !== FAKE,
      ),
      [],
      'no plugin left the running state (quarantine, failure)',
    );
  });
});

describe('a shipped plugin with a bad config value, in a running agent', () => {
  it("fails its load with init's message naming the key, shown in /health, while the others run", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wasm-plugins-'));
    try {
      for (const name of ['error-budget', 'nginx-down-alert']) {
        mkdirSync(join(dir, name));
        copyFileSync(join(root, name, `${name}.wasm`), join(dir, name, `${name}.wasm`));
        const yaml = readFileSync(join(root, name, 'plugin.yaml'), 'utf8');
        writeFileSync(
          join(dir, name, 'plugin.yaml'),
          name === 'error-budget' ? yaml.replace('max_5xx_ratio: "0.05"', 'max_5xx_ratio: "5%"') : yaml,
        );
      }
      const loaded = loadConfig({
        builtins: [],
        flags: [
          { path: 'api.port', flag: '--api-port', value: 0 },
          { path: 'wasm.dirs', flag: '--plugins-dir', value: [dir] },
          { path: 'wasm.watch', flag: 'test', value: false },
        ],
        env: {},
        searchPaths: [],
      });
      const agent = new Agent({ loaded, builtins: [], logger: pino({ level: 'silent' }) });
      await agent.start();
      await agent.wasm!.ready;
      try {
        const health = (await (await fetch(`http://127.0.0.1:${agent.apiAddress!.port}/health`)).json()) as {
          plugins: Record<string, { state: string; reason?: string }>;
        };
        assert.equal(health.plugins['nginx-down-alert'].state, 'running');
        assert.equal(health.plugins['error-budget'].state, 'failed');
        assert.match(
          health.plugins['error-budget'].reason ?? '',
          /init failed: .*max_5xx_ratio must be a number from 0 to 1, got "5%"/,
        );
      } finally {
        await agent.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
