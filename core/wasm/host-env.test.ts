/**
 * The host as a PDK sees it, inside a real Agent: the C example built with Extism's C PDK (standard
 * logging, config, vars across a worker restart), its wasi-libc variant, files through
 * `allowed_paths`, `http_request` against a local HTTP server through `allowed_hosts`, the waPC
 * example, and `agent plugins check` linking a module against exactly what the host offers.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pluginsCheck } from '../../cmd/run/plugins-check.js';
import type { MetricBatch } from '../metrics/model.js';
import { waitFor } from '../testing/nginx.js';
import { needTool } from '../testing/tools.js';
import type { Envelope } from '../topics.js';
import { extismLogLevel, hostAllowed } from './host-env.js';
import { checkPluginDir, WASI_FUNCTIONS } from './module.js';
import { type Harness, startAgent } from './testing-agent.js';
import { compileC, compileFixture, compileWatText, tempPluginsDir, writePlugin } from './testing.js';

const EXAMPLES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'wasm-plugins');
const noClang = needTool('clang', 'clang lld wasi-libc libclang-rt-14-dev-wasm32');

/** A shipped example's built module; a missing one says how to build it. */
function example(folder: string, file: string): string {
  const path = join(EXAMPLES, folder, file);
  if (!existsSync(path)) throw new Error(`${path} is missing: run npm run build:wasm`);
  return path;
}

function copyExample(dir: string, folder: string, file: string, manifest: Record<string, unknown>): void {
  const target = join(dir, folder);
  mkdirSync(target, { recursive: true });
  copyFileSync(example(folder === 'bus-meter-wasi' ? 'bus-meter' : folder, file), join(target, file));
  writePlugin(dir, folder, { wasm: file, ...manifest });
}

/** A message the bad waPC guest publishes: an agent topic, never open to plugins. */
const OFF_MANIFEST = '{"topic":"nginx.x","data":{}}';

const logsOf = (h: Harness, plugin: string) => h.logs.filter((l) => l.plugin === plugin);
const batchesFrom = (seen: Envelope[], source: string) =>
  seen
    .filter((e) => e.topic === 'metrics' && (e.data as MetricBatch).source === source)
    .map((e) => e.data as MetricBatch);
const total = (b: MetricBatch | undefined, name: string) =>
  (b?.metrics.find((m) => m.name === name)?.points[0] as { value: number } | undefined)?.value;

describe('host functions for any Extism PDK, WASI and waPC', () => {
  it('offers get_log_level by the agent level and matches allowed_hosts globs on the host name', () => {
    assert.deepEqual(['trace', 'debug', 'info', 'warn', 'error'].map(extismLogLevel), [0, 1, 2, 3, 4]);
    assert.ok(extismLogLevel('silent') > 4);
    assert.ok(hostAllowed('127.0.0.1', ['127.0.0.*']));
    assert.ok(hostAllowed('api.Example.com', ['*.example.com']));
    assert.ok(!hostAllowed('example.com.evil.net', ['example.com']));
    assert.ok(!hostAllowed('127.0.0.1', []));
  });

  it('runs the Wasm worker only while a plugin is found: none at start, stopped with the last one', async () => {
    const empty = await startAgent(tempPluginsDir(), {}, []);
    try {
      assert.equal(empty.agent.wasm!.runtime.workerStarted, false, 'no plugin: no worker thread, no isolate');
    } finally {
      await empty.stop();
    }
    const dir = tempPluginsDir();
    writePlugin(
      dir,
      'echo',
      { name: 'echo', wasm: 'echo.wasm', subscriptions: ['event.in.echo'], publishes: ['event.echo.*'] },
      await compileFixture('echo'),
    );
    const one = await startAgent(dir, {}, []);
    try {
      assert.equal(one.agent.wasm!.runtime.workerStarted, true);
      assert.equal((await one.plugin('echo')).state, 'running');
      rmSync(join(dir, 'echo'), { recursive: true });
      await waitFor(() => !one.agent.wasm!.runtime.workerStarted, 'the worker stopped with the last plugin', 10_000);
      writePlugin(
        dir,
        'echo',
        { name: 'echo', wasm: 'echo.wasm', subscriptions: ['event.in.echo'], publishes: ['event.echo.*'] },
        await compileFixture('echo'),
      );
      await waitFor(
        async () => {
          const plugins = (await one.get('/v1/plugins')).body.plugins as { name: string; state: string }[];
          return plugins.some((p) => p.name === 'echo' && p.state === 'running');
        },
        'a new folder starts a new worker',
        10_000,
      );
      assert.equal(one.agent.wasm!.runtime.workerStarted, true);
    } finally {
      await one.stop();
    }
  });

  it("lists WASI preview1 exactly as Node's WASI offers it", async () => {
    const { WASI } = await import('node:wasi');
    const names = Object.keys(new WASI({ version: 'preview1' }).wasiImport).sort();
    assert.deepEqual([...WASI_FUNCTIONS].sort(), names);
  });

  it('`agent plugins check` links against what the host offers: an unknown import fails naming it', async () => {
    const dir = tempPluginsDir();
    writePlugin(
      dir,
      'odd',
      { name: 'odd', wasm: 'plugin.wasm', subscriptions: [], publishes: [] },
      await compileWatText(`(module
        (import "extism:host/env" "no_such_function" (func (param i64)))
        (import "extism:host/env" "get_log_level" (func (result i32)))
        (memory (export "memory") 1)
        (func (export "process") (result i32) (i32.const 0)))`),
    );
    writePlugin(
      dir,
      'ok',
      { name: 'ok', wasm: 'plugin.wasm', subscriptions: [], publishes: [] },
      await compileWatText(`(module
        (import "extism:host/env" "log_trace" (func (param i64)))
        (import "extism:host/env" "http_headers" (func (result i64)))
        (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "process") (result i32) (i32.const 0)))`),
    );
    let out = '';
    let err = '';
    const code = pluginsCheck(dir, { stdout: (t) => void (out += t), stderr: (t) => void (err += t) });
    assert.equal(code, 1);
    assert.match(
      err,
      /FAIL {2}.*\/odd\n[\s\S]*imports function "extism:host\/env"\."no_such_function": the host has no such function/,
    );
    assert.match(out, /ok {4}ok /);
    assert.match(out, /1 of 2 plugins OK/);
  });

  it('fails a var_set past vars_max_bytes, naming the key and the bound', async () => {
    const dir = tempPluginsDir();
    writePlugin(
      dir,
      'hoard',
      { name: 'hoard', wasm: 'plugin.wasm', subscriptions: ['event.in.hoard'], publishes: [], vars_max_bytes: 1000 },
      await compileWatText(`(module
        (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
        (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
        (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
        (memory (export "memory") 1)
        (func (export "process") (result i32)
          (local $key i64)
          (local.set $key (call $alloc (i64.const 1)))
          (call $store_u8 (local.get $key) (i32.const 107))
          (call $var_set (local.get $key) (call $alloc (i64.const 2000)))
          (i32.const 0)))`),
    );
    const h = await startAgent(dir, { batch_wait: '2ms' }, []);
    try {
      h.agent.bus.publish('event.in.hoard' as never, {} as never);
      await waitFor(async () => Number((await h.plugin('hoard')).details.errors) === 1, 'the call failed', 10_000);
      assert.match(
        String((await h.plugin('hoard')).details.last_error),
        /var_set "k": the plugin's vars would take 2001 bytes, over vars_max_bytes 1000/,
      );
    } finally {
      await h.stop();
    }
  });

  describe('the C example (bus-meter, Extism C PDK)', { skip: noClang }, () => {
    let h: Harness;
    before(async () => {
      const dir = tempPluginsDir();
      copyExample(dir, 'bus-meter', 'bus-meter.wasm', {
        name: 'bus-meter',
        subscriptions: ['event.in.*'],
        publishes: ['metrics'],
        vars_max_bytes: 1024,
      });
      copyExample(dir, 'bus-meter-wasi', 'bus-meter-wasi.wasm', {
        name: 'bus-meter-wasi',
        subscriptions: ['event.in.*'],
        publishes: ['metrics'],
      });
      writePlugin(
        dir,
        'loop',
        { name: 'loop', wasm: 'loop.wasm', subscriptions: ['event.loop'], publishes: [], timeout_ms: 300 },
        await compileFixture('loop'),
      );
      h = await startAgent(dir, { batch_wait: '2ms' }, ['metrics', 'event.*']);
    });
    after(() => h?.stop());

    it('loads, logs through the PDK (get_log_level, log_info, log_debug) and publishes metrics under its name', async () => {
      for (let i = 0; i < 3; i++) h.agent.bus.publish('event.in.x' as never, { i } as never);
      await waitFor(
        () => total(batchesFrom(h.seen, 'wasm:bus-meter').at(-1), 'bus_meter.messages') === 3,
        'bus-meter counted 3 messages',
        10_000,
      );
      const batch = batchesFrom(h.seen, 'wasm:bus-meter').at(-1)!;
      assert.deepEqual(batch.metrics.map((m) => [m.name, m.type, m.unit, m.description !== undefined]).sort(), [
        ['bus_meter.batches', 'counter', '{batch}', true],
        ['bus_meter.input.size', 'counter', 'By', true],
        ['bus_meter.messages', 'counter', '{message}', true],
      ]);
      assert.equal(
        batch.metrics.find((m) => m.name === 'bus_meter.messages')!.description,
        '',
        'filled in when left out',
      );
      const lines = logsOf(h, 'bus-meter');
      assert.ok(
        lines.some(
          (l) =>
            l.level === 30 && l.msg === 'bus-meter: publishing on metrics as wasm:bus-meter, 0 batches metered so far',
        ),
        JSON.stringify(lines),
      );
      assert.ok(
        lines.some((l) => l.level === 20 && /^bus-meter: a batch of \d+ messages, \d+ bytes$/.test(String(l.msg))),
      );
      const metrics = (await h.get('/metrics')).body.text as string;
      assert.match(metrics, /^bus_meter_messages_total\{plugin="bus-meter"\} 3$/m);
      assert.match(metrics, /^bus_meter_messages_total\{plugin="bus-meter-wasi"\} 3$/m);
    });

    it('the wasi-libc variant runs with WASI and no allowed_paths; its stdout reaches the plugin log', async () => {
      await waitFor(
        () => total(batchesFrom(h.seen, 'wasm:bus-meter-wasi').at(-1), 'bus_meter.messages') === 3,
        'bus-meter-wasi counted the same 3 messages',
        10_000,
      );
      assert.ok(
        logsOf(h, 'bus-meter-wasi').some(
          (l) => l.level === 30 && l.msg === 'bus-meter (wasi-libc) bus-meter-wasi: ready',
        ),
      );
      assert.equal((await h.plugin('bus-meter-wasi')).state, 'running');
    });

    it('keeps Extism vars across calls and across a worker restart of the same version', async () => {
      const restarts = h.agent.wasm!.runtime.restarts;
      h.agent.bus.publish('event.loop' as never, {} as never);
      await waitFor(() => h.agent.wasm!.runtime.restarts > restarts, 'the loop plugin restarted the worker', 10_000);
      await waitFor(
        () =>
          logsOf(h, 'bus-meter').some((l) =>
            /^bus-meter: publishing on metrics as wasm:bus-meter, [1-9]\d* batches/.test(String(l.msg)),
          ),
        'bus-meter loaded again with its vars',
        10_000,
      );
      h.agent.bus.publish('event.in.x' as never, { i: 3 } as never);
      h.agent.bus.publish('event.in.x' as never, { i: 4 } as never);
      await waitFor(
        () => total(batchesFrom(h.seen, 'wasm:bus-meter').at(-1), 'bus_meter.messages') === 5,
        'the total goes on from 3 to 5',
        10_000,
      );
    });
  });

  it('filters PDK log lines below the agent level (get_log_level)', { skip: noClang }, async () => {
    const dir = tempPluginsDir();
    copyExample(dir, 'bus-meter', 'bus-meter.wasm', {
      name: 'bus-meter',
      subscriptions: ['event.in.*'],
      publishes: ['metrics'],
    });
    const h = await startAgent(dir, { batch_wait: '2ms' }, ['metrics'], 'info');
    try {
      h.agent.bus.publish('event.in.x' as never, {} as never);
      await waitFor(() => h.seen.length === 1, 'a metric batch', 10_000);
      const lines = logsOf(h, 'bus-meter');
      assert.ok(lines.some((l) => l.level === 30 && /^bus-meter: publishing on metrics/.test(String(l.msg))));
      assert.ok(!lines.some((l) => l.level === 20), 'no debug line at level info');
    } finally {
      await h.stop();
    }
  });

  describe('files: allowed_paths maps a host directory to a guest path', { skip: noClang }, () => {
    it('reads a file from a granted directory and fails on one that was not granted', async () => {
      const dir = tempPluginsDir();
      const granted = mkdtempSync(join(tmpdir(), 'wasm-granted-'));
      const other = mkdtempSync(join(tmpdir(), 'wasm-other-'));
      writeFileSync(join(granted, 'hello.txt'), 'a line from the host\nsecond line\n');
      writeFileSync(join(other, 'secret.txt'), 'not for the plugin\n');
      const wasm = compileC('readfile', { wasi: true });
      const manifest = (name: string, path: string, allowed: Record<string, string>) => ({
        name,
        wasm: 'readfile.wasm',
        subscriptions: [`event.read.${name}`],
        publishes: ['event.file'],
        config: { path },
        allowed_paths: allowed,
      });
      writePlugin(dir, 'granted', manifest('granted', '/data/hello.txt', { [granted]: '/data' }), wasm);
      writePlugin(dir, 'ungranted', manifest('ungranted', '/data/hello.txt', {}), wasm);
      writePlugin(dir, 'elsewhere', manifest('elsewhere', `${other}/secret.txt`, { [granted]: '/data' }), wasm);
      const h = await startAgent(dir, { batch_wait: '2ms' }, ['event.file']);
      try {
        for (const name of ['granted', 'ungranted', 'elsewhere'])
          h.agent.bus.publish(`event.read.${name}` as never, {} as never);
        await waitFor(() => h.seen.length === 1, 'the granted plugin published', 10_000);
        assert.deepEqual(h.seen[0].data, { path: '/data/hello.txt', line: 'a line from the host' });
        for (const [name, path] of [
          ['ungranted', '/data/hello.txt'],
          ['elsewhere', `${other}/secret.txt`],
        ]) {
          await waitFor(async () => Number((await h.plugin(name)).details.errors) === 1, `${name} failed`, 10_000);
          assert.match(String((await h.plugin(name)).details.last_error), new RegExp(`cannot open ${path}`));
          assert.ok(
            logsOf(h, name).some((l) => l.level === 40 && String(l.msg).startsWith(`${path}: `)),
            'perror on stderr reaches the plugin log as a warning',
          );
        }
      } finally {
        await h.stop();
      }
    });

    it('refuses a manifest whose granted host directory does not exist, naming it', () => {
      const dir = tempPluginsDir();
      const folder = writePlugin(
        dir,
        'p',
        { name: 'p', wasm: 'p.wasm', subscriptions: [], publishes: [], allowed_paths: { './no-such-dir': '/data' } },
        new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]),
      );
      assert.throws(() => checkPluginDir(folder), /allowed_paths: host directory "\.\/no-such-dir" .* does not exist/);
    });
  });

  describe('http_request against a local HTTP server', { skip: noClang }, () => {
    let server: Server;
    let base: string;
    const requests: { url: string; plugin: string | undefined }[] = [];
    before(async () => {
      server = createServer((req, res) => {
        requests.push({ url: req.url ?? '', plugin: req.headers['x-plugin'] as string | undefined });
        if (req.url === '/slow') return; // never answers
        res.setHeader('x-answer', '42');
        res.end(req.url === '/big' ? 'x'.repeat(10_000) : 'hello from the host');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(() => {
      server.closeAllConnections();
      server.close();
    });

    it('performs requests to allowed_hosts only, with a timeout and a response size cap', async () => {
      const dir = tempPluginsDir();
      const wasm = compileC('fetch', { wasi: true });
      const plugin = (name: string, path: string, extra: Record<string, unknown>) =>
        writePlugin(
          dir,
          name,
          {
            name,
            wasm: 'fetch.wasm',
            subscriptions: [`event.fetch.${name}`],
            publishes: ['event.http'],
            config: { url: `${base}${path}` },
            timeout_ms: 3000,
            ...extra,
          },
          wasm,
        );
      plugin('allowed', '/hello', { allowed_hosts: ['127.0.0.*'] });
      plugin('refused', '/refused', { allowed_hosts: ['example.com'] });
      plugin('big', '/big', { allowed_hosts: ['127.0.0.1'], http_max_response_bytes: 4096 });
      plugin('slow', '/slow', { allowed_hosts: ['127.0.0.1'], http_timeout_ms: 300 });
      const h = await startAgent(dir, { batch_wait: '2ms' }, ['event.http']);
      try {
        for (const name of ['allowed', 'refused', 'big', 'slow'])
          h.agent.bus.publish(`event.fetch.${name}` as never, {} as never);
        await waitFor(() => h.seen.length === 1, 'the allowed plugin published', 10_000);
        const data = h.seen[0].data as { status: number; body: string; headers: Record<string, string> };
        assert.equal(data.status, 200);
        assert.equal(data.body, 'hello from the host');
        assert.equal(data.headers['x-answer'], '42');
        assert.ok(logsOf(h, 'allowed').some((l) => l.msg === 'fetch: got an answer'));
        const expected: Record<string, RegExp> = {
          refused: /http_request: host "127\.0\.0\.1" is not in allowed_hosts \(example\.com\)/,
          big: /larger than 4096 bytes \(http_max_response_bytes\)/,
          slow: /no answer within 300 ms \(http_timeout_ms\)/,
        };
        for (const [name, error] of Object.entries(expected)) {
          await waitFor(async () => Number((await h.plugin(name)).details.errors) === 1, `${name} failed`, 10_000);
          assert.match(String((await h.plugin(name)).details.last_error), error);
        }
        assert.deepEqual(
          requests.map((r) => r.url).sort(),
          ['/big', '/hello', '/slow'],
          'the refused request never left the host',
        );
        assert.ok(
          requests.every((r) => r.plugin === 'fetch'),
          'request headers are sent',
        );
      } finally {
        await h.stop();
      }
    });
  });

  describe('waPC (abi: wapc): the plugin-state-alert example', () => {
    it('passes plugins check, loads, gets process with the JSON batch and publishes through __host_call', async () => {
      const dir = tempPluginsDir();
      copyExample(dir, 'plugin-state-alert', 'plugin-state-alert.wasm', {
        name: 'plugin-state-alert',
        abi: 'wapc',
        subscriptions: ['agent.plugin.state'],
        publishes: ['alert.agent.plugin'],
        timeout_ms: 500,
        memory_mb: 16,
      });
      let out = '';
      assert.equal(pluginsCheck(dir, { stdout: (t) => void (out += t), stderr: (t) => void (out += t) }), 0, out);
      assert.match(out, /exports __guest_call \(waPC\), init/);
      const h = await startAgent(dir, { batch_wait: '2ms' }, ['alert.*']);
      try {
        assert.equal((await h.plugin('plugin-state-alert')).state, 'running');
        assert.ok(
          logsOf(h, 'plugin-state-alert').some(
            (l) => l.msg === 'plugin-state-alert: watching agent.plugin.state (waPC)',
          ),
          'wapc_init ran, read plugin.name through agent/config/get and logged through __console_log',
        );
        h.agent.bus.publish('agent.plugin.state', {
          plugin: 'nginx-logs',
          state: 'quarantined',
          reason: 'too many errors',
        });
        h.agent.bus.publish('agent.plugin.state', { plugin: 'nginx-logs', state: 'running' });
        await waitFor(() => h.seen.length === 2, 'firing and resolved', 10_000);
        assert.deepEqual(
          h.seen.map((e) => e.data),
          [
            {
              status: 'firing',
              plugin: 'nginx-logs',
              state: 'quarantined',
              reason: 'too many errors',
              source: 'plugin-state-alert',
            },
            { status: 'resolved', plugin: 'nginx-logs', state: 'running', reason: '', source: 'plugin-state-alert' },
          ],
        );
        const p = await h.plugin('plugin-state-alert');
        assert.equal(p.details.calls, 2);
        assert.equal(p.details.published, 2);
      } finally {
        await h.stop();
      }
    });

    it('a waPC guest with WASI logs its stdout, hot-reloads between batches and is refused on a sha256 mismatch', async () => {
      const guest = (version: number) => {
        const message = `{"topic":"event.wapc","data":{"v":${version}}}`;
        const line = `wapc guest v${version} on stdout\n`;
        return compileWatText(`(module
          (import "wapc" "__host_call" (func $host_call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 0) "agentbuspublish")
          (data (i32.const 32) "${message.replaceAll('"', '\\"')}")
          (data (i32.const 128) "${line.replace('\n', '\\0a')}")
          (func (export "__guest_call") (param i32 i32) (result i32)
            (i32.store (i32.const 256) (i32.const 128))
            (i32.store (i32.const 260) (i32.const ${line.length}))
            (drop (call $fd_write (i32.const 1) (i32.const 256) (i32.const 1) (i32.const 264)))
            (call $host_call (i32.const 0) (i32.const 5) (i32.const 5) (i32.const 3)
                             (i32.const 8) (i32.const 7) (i32.const 32) (i32.const ${message.length}))))`);
      };
      const dir = tempPluginsDir();
      const manifest = {
        name: 'wapc-wasi',
        abi: 'wapc',
        wasm: 'plugin.wasm',
        subscriptions: ['event.in.wapc'],
        publishes: ['event.wapc'],
      };
      writePlugin(dir, 'wapc-wasi', manifest, await guest(1));
      const h = await startAgent(dir, { batch_wait: '2ms' }, ['event.wapc']);
      try {
        h.agent.bus.publish('event.in.wapc' as never, {} as never);
        await waitFor(() => h.seen.length === 1, 'v1 published', 10_000);
        assert.deepEqual(h.seen[0].data, { v: 1 });
        await waitFor(
          () => logsOf(h, 'wapc-wasi').some((l) => l.level === 30 && l.msg === 'wapc guest v1 on stdout'),
          'stdout in the plugin log',
          10_000,
        );
        writePlugin(dir, 'wapc-wasi', manifest, await guest(2));
        await waitFor(
          async () =>
            (await h.plugin('wapc-wasi')).details.sha256 !== undefined &&
            h.logs.some((l) => /Wasm plugin wapc-wasi reloaded/.test(String(l.msg))),
          'v2 loaded',
          10_000,
        );
        h.agent.bus.publish('event.in.wapc' as never, {} as never);
        await waitFor(() => h.seen.length === 2, 'v2 published', 10_000);
        assert.deepEqual(h.seen[1].data, { v: 2 });
        writePlugin(dir, 'wapc-wasi', { ...manifest, sha256: '0'.repeat(64) }, await guest(3));
        await waitFor(
          async () =>
            /SHA-256 is [0-9a-f]{64} but .* pins sha256 0{64}/.test(
              String((await h.plugin('wapc-wasi')).details.reload_refused),
            ),
          'v3 refused',
          10_000,
        );
        h.agent.bus.publish('event.in.wapc' as never, {} as never);
        await waitFor(() => h.seen.length === 3, 'v2 still answers', 10_000);
        assert.deepEqual(h.seen[2].data, { v: 2 });
      } finally {
        await h.stop();
      }
    });

    it('a waPC guest that fails or publishes off its manifest fails the call with its error, as Extism ones do', async () => {
      const dir = tempPluginsDir();
      writePlugin(
        dir,
        'bad-wapc',
        {
          name: 'bad-wapc',
          abi: 'wapc',
          wasm: 'plugin.wasm',
          subscriptions: ['event.in.wapc'],
          publishes: ['event.out'],
        },
        await compileWatText(`(module
          (import "wapc" "__host_call" (func $host_call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
          (import "wapc" "__guest_error" (func $guest_error (param i32 i32)))
          (memory (export "memory") 1)
          (data (i32.const 0) "agentbuspublish")
          (data (i32.const 32) "${OFF_MANIFEST.replaceAll('"', '\\"')}")
          (data (i32.const 96) "refused")
          (func (export "__guest_call") (param i32 i32) (result i32)
            (if (i32.eqz (call $host_call (i32.const 0) (i32.const 5) (i32.const 5) (i32.const 3)
                                          (i32.const 8) (i32.const 7) (i32.const 32) (i32.const ${OFF_MANIFEST.length})))
              (then (call $guest_error (i32.const 96) (i32.const 7)) (return (i32.const 0))))
            (i32.const 1)))`),
      );
      const h = await startAgent(dir, { batch_wait: '2ms' }, ['event.*']);
      try {
        h.agent.bus.publish('event.in.wapc' as never, {} as never);
        await waitFor(async () => Number((await h.plugin('bad-wapc')).details.errors) === 1, 'failed', 10_000);
        const p = await h.plugin('bad-wapc');
        assert.equal(p.details.last_error, 'refused');
        assert.equal(p.details.refused, 1);
      } finally {
        await h.stop();
      }
    });
  });
});
