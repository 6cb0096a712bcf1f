import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pluginsCheck } from '../../cmd/run/plugins-check.js';
import { runAgent } from '../testing/agent-process.js';
import { isOpenPattern, ManifestError, parseManifest } from './manifest.js';
import type { Message } from '../topics.js';
import { capMemory, checkAbi, checkPluginDir } from './module.js';
import { trimMetrics } from './plugin.js';
import { compileFixture, compileWatText, tempPluginsDir, writePlugin } from './testing.js';

const GOOD = `name: echo
wasm: echo.wasm
subscriptions: [event.in]
publishes: ["event.echo.*"]
config:
  mode: fast
timeout_ms: 200
memory_mb: 16
`;

function problems(text: string): string[] {
  try {
    parseManifest(text, '/p/plugin.yaml');
  } catch (e) {
    assert.ok(e instanceof ManifestError);
    return e.problems;
  }
  assert.fail('no error');
}

describe('plugin.yaml', () => {
  it('parses every key and fills the defaults of the optional ones', () => {
    const m = parseManifest(GOOD, 'plugin.yaml');
    assert.deepEqual(m, {
      name: 'echo',
      wasm: 'echo.wasm',
      subscriptions: ['event.in'],
      metric_names: [],
      publishes: ['event.echo.*'],
      config: { mode: 'fast' },
      timeout_ms: 200,
      memory_mb: 16,
      allowed_hosts: [],
      allowed_paths: {},
      abi: 'extism',
    });
  });

  it('metric_names: a list of non-empty names; a metrics batch reaches the plugin with only those', () => {
    const m = parseManifest(`${GOOD}metric_names: [nginx.http.responses, nginx.up]\n`, 'plugin.yaml');
    assert.deepEqual(m.metric_names, ['nginx.http.responses', 'nginx.up']);
    assert.deepEqual(problems(`${GOOD}metric_names: [a, ""]\n`), [
      '/p/plugin.yaml:9:19: metric_names.1: must be a non-empty string, got the string ""',
    ]);
    const metric = (name: string) => ({ name, type: 'gauge' as const, unit: '1', description: name, points: [] });
    const batch = {
      topic: 'metrics' as const,
      time: 5,
      data: {
        source: 'nginx-logs:x',
        time: 5,
        resource: { 'nginx.instance.id': 'i' },
        metrics: [metric('nginx.up'), metric('other'), metric('nginx.http.responses')],
      },
    };
    const names = new Set(m.metric_names);
    const trimmed = trimMetrics(batch, names);
    assert.deepEqual(trimmed, {
      ...batch,
      data: { ...batch.data, metrics: [metric('nginx.up'), metric('nginx.http.responses')] },
    });
    assert.equal(batch.data.metrics.length, 3, 'the published batch is not changed');
    assert.deepEqual(trimMetrics({ ...batch, data: { ...batch.data, metrics: [metric('other')] } }, names).data, {
      ...batch.data,
      metrics: [],
    });
    assert.equal(trimMetrics(batch, undefined), batch);
    const other = { topic: 'nginx.instance.health' as const, time: 1, data: {} } as unknown as Message;
    assert.equal(trimMetrics(other, names), other);
  });

  it('names the file, line, column and key of every problem at once', () => {
    const p = problems(`name: echo
wasm: echo.wasm
subscriptions: [event.in]
publishes: [nginx.instance.added]
config:
  window: 300
  unit: ""
timeout_ms: -5
colour: blue
`);
    assert.deepEqual(p, [
      '/p/plugin.yaml:9:1: colour: unknown key "colour" (known keys: name, wasm, sha256, subscriptions, metric_names, publishes, config, timeout_ms, memory_mb, allowed_hosts, allowed_paths, abi, vars_max_bytes, http_timeout_ms, http_max_response_bytes)',
      '/p/plugin.yaml:4:13: publishes.0: "nginx.instance.added" is not an open topic: a Wasm plugin may publish only under alert.*, lint.*, event.* (for example "alert.my_plugin"), and MetricBatches on "metrics"',
      '/p/plugin.yaml:6:3: config.window: must be a string (quote numbers and booleans: "300"), got number 300',
      '/p/plugin.yaml:7:3: config.unit: must not be empty (Extism cannot hand an empty value to the plugin): leave the key out instead',
      '/p/plugin.yaml:8:1: timeout_ms: must be an integer from 1 to 600000, got number -5',
    ]);
  });

  it('reports missing keys, wrong types, bad patterns, a bad hash and a path leaving the folder', () => {
    const p = problems(`wasm: ../x.wasm
sha256: abc
subscriptions: "metrics"
publishes: ["alert.a b"]
`);
    assert.match(p[0], /^\/p\/plugin\.yaml:1:1: missing required key "name"/);
    assert.match(p[1], /^\/p\/plugin\.yaml:1:1: wasm: must be a path inside the plugin folder/);
    assert.match(p[2], /^\/p\/plugin\.yaml:2:1: sha256: must be 64 hex digits/);
    assert.match(p[3], /^\/p\/plugin\.yaml:3:1: subscriptions: must be a list of strings, got the string "metrics"/);
    assert.match(p[4], /^\/p\/plugin\.yaml:4:13: publishes\.0: invalid topic pattern "alert\.a b"/);
  });

  it('reports YAML syntax errors with their line', () => {
    assert.match(problems('name: [echo\nwasm: x')[0], /^\/p\/plugin\.yaml:\d+:\d+: YAML syntax error/);
  });

  it('open topics: alert.*, lint.*, event.* only', () => {
    for (const ok of ['alert.*', 'lint.nginx.config', 'event.x']) assert.ok(isOpenPattern(ok), ok);
    for (const bad of ['*', 'alert.', 'alert*', 'metrics', 'nginx.*', 'agent.plugin.state'])
      assert.ok(!isOpenPattern(bad), bad);
  });
});

describe('module checks', () => {
  it('refuses a module whose SHA-256 differs from the manifest, naming both', async () => {
    const root = tempPluginsDir();
    const wasm = await compileFixture('echo');
    const good = createHash('sha256').update(wasm).digest('hex');
    const dir = writePlugin(
      root,
      'echo',
      { name: 'echo', wasm: 'echo.wasm', subscriptions: [], publishes: [], sha256: good },
      wasm,
    );
    assert.equal(checkPluginDir(dir).sha256, good);
    writePlugin(root, 'echo', {
      name: 'echo',
      wasm: 'echo.wasm',
      subscriptions: [],
      publishes: [],
      sha256: 'f'.repeat(64),
    });
    assert.throws(
      () => checkPluginDir(dir),
      new RegExp(`echo\\.wasm: SHA-256 is ${good} but .*plugin\\.yaml pins sha256 f{64}; the plugin is refused`),
    );
  });

  it('requires the process export and only Extism imports', async () => {
    const bad = new WebAssembly.Module(await compileFixture('badimport'));
    assert.deepEqual(checkAbi(bad), [
      'imports function "env"."abort": the host offers no module "env" (abi extism: "extism:host/env", "extism:host/user", "wasi_snapshot_preview1")',
    ]);
    const none = new WebAssembly.Module(await compileWatText('(module (memory (export "process") 1))'));
    assert.deepEqual(checkAbi(none), [
      'no exported function "process" (every plugin exports process; see wasm-plugins/README.md)',
    ]);
    assert.deepEqual(checkAbi(new WebAssembly.Module(await compileFixture('echo'))), []);
  });

  it('sets a maximum on the module memory, keeping a smaller one and refusing a larger start', async () => {
    const grow = await compileWatText(
      '(module (memory (export "memory") 2) (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))',
    );
    const capped = capMemory(grow, 4 * 65536);
    // Instantiating shows the limit: growing past it fails.
    const inst = new WebAssembly.Instance(new WebAssembly.Module(capped));
    const g = inst.exports.grow as (n: number) => number;
    assert.equal(g(2), 2);
    assert.equal(g(1), -1, 'memory.grow past the cap fails');
    const small = await compileWatText(
      '(module (memory (export "memory") 1 2) (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))',
    );
    const g2 = new WebAssembly.Instance(new WebAssembly.Module(capMemory(small, 100 * 65536))).exports.grow as (
      n: number,
    ) => number;
    assert.equal(g2(1), 1);
    assert.equal(g2(1), -1, 'the module maximum (2 pages) stays when below the cap');
    assert.throws(() => capMemory(grow, 65536), /memory starts at 0\.125 MiB, above memory_mb/);
  });
});

describe('agent plugins check', () => {
  it('accepts good folders and fails naming the file for each bad one', async () => {
    const root = tempPluginsDir();
    const out: string[] = [];
    const err: string[] = [];
    const io = { stdout: (t: string) => void out.push(t), stderr: (t: string) => void err.push(t) };
    writePlugin(
      root,
      'echo',
      { name: 'echo', wasm: 'echo.wasm', subscriptions: ['event.in'], publishes: ['event.echo.*'] },
      await compileFixture('echo'),
    );
    assert.equal(pluginsCheck(join(root, 'echo'), io), 0);
    assert.match(
      out.join(''),
      /^ok {4}echo {2}.*\/echo\n {6}wasm .*echo\.wasm \(sha256 [0-9a-f]{64}\)\n {6}exports process, init, describe; subscriptions event\.in; publishes event\.echo\.\*/,
    );

    writePlugin(
      root,
      'bad-import',
      { name: 'bad-import', wasm: 'plugin.wasm', subscriptions: [], publishes: [] },
      await compileFixture('badimport'),
    );
    writePlugin(root, 'bad-yaml', 'name: x\nwasm: x.wasm\nsubscriptions: []\npublishes: []\nextra: 1\n');
    writePlugin(root, 'no-wasm', { name: 'no-wasm', wasm: 'missing.wasm', subscriptions: [], publishes: [] });
    writeFileSync(join(root, 'README.md'), 'not a plugin');
    out.length = 0;
    assert.equal(pluginsCheck(root, io), 1);
    const e = err.join('');
    assert.match(
      e,
      /FAIL {2}.*\/bad-import\n {6}.*bad-import\/plugin\.wasm: does not meet the plugin ABI v1 \(abi: extism\):\n {8}- imports function "env"\."abort"/,
    );
    assert.match(
      e,
      /FAIL {2}.*\/bad-yaml\n {6}invalid plugin manifest .*bad-yaml\/plugin\.yaml:\n {8}- .*bad-yaml\/plugin\.yaml:5:1: extra: unknown key "extra"/,
    );
    assert.match(
      e,
      /FAIL {2}.*\/no-wasm\n {6}.*no-wasm\/missing\.wasm: cannot read the module named by .*no-wasm\/plugin\.yaml \(wasm: missing\.wasm\): ENOENT/,
    );
    assert.match(out.join(''), /1 of 4 plugins OK/);
  });

  it('runs from the command line with its exit codes', async () => {
    const root = tempPluginsDir();
    writePlugin(
      root,
      'echo',
      { name: 'echo', wasm: 'echo.wasm', subscriptions: [], publishes: [] },
      await compileFixture('echo'),
    );
    const ok = await runAgent(['plugins', 'check', root]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^ok {4}echo/);
    const missing = await runAgent(['plugins', 'check', join(root, 'nope')]);
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      /nope is not a directory; give a plugin folder \(with plugin\.yaml\) or a directory of them/,
    );
  });
});
