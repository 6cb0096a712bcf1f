/**
 * bin/agent.js runs the start-up bundle (dist/agent.cjs with its V8 code cache, scripts/bundle.mjs)
 * when it is current, and falls back to tsc's dist/cmd/agent.js when it is not. Runs against a copy
 * of the built package (bin, dist, package.json, a link to node_modules), so the checkout's dist is
 * never touched. Needs `npm run build` (npm test builds first).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PACKAGE, PACKAGE_ROOT } from '../core/package-root.js';

const REPO_ROOT = PACKAGE_ROOT;
const VERSION = PACKAGE.version;

function agent(root: string, args: string[], nodeArgs: string[] = []) {
  const r = spawnSync(process.execPath, [...nodeArgs, join(root, 'bin', 'agent.js'), ...args], {
    env: { ...process.env, NGINX_AGENT_TRACE_STARTUP: '1' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout.trim(), trace: r.stderr.trim() };
}

/**
 * A config for a daemon that finds nothing to watch: API on a free loopback port, no Wasm, an empty
 * /proc for discovery, state in a new temporary folder (removed by the caller); `yaml` is appended.
 */
function daemonConfig(prefix: string, yaml = ''): { dir: string; config: string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  mkdirSync(join(dir, 'proc'));
  const config = join(dir, 'agent.yaml');
  writeFileSync(
    config,
    `api:\n  host: 127.0.0.1\n  port: 0\nagent:\n  state_dir: ${dir}\nwasm:\n  enabled: false\n` +
      `nginx_discovery:\n  proc_root: ${join(dir, 'proc')}\n${yaml}`,
  );
  return { dir, config };
}

describe('bin/agent.js and the start-up bundle', () => {
  let root: string;
  before(() => {
    assert.ok(
      existsSync(join(REPO_ROOT, 'dist', 'agent.cjs.cache')),
      'dist/agent.cjs and its code cache are built: run "npm run build"',
    );
    root = mkdtempSync(join(tmpdir(), 'agent-bundle-'));
    for (const part of ['bin', 'dist', 'package.json'])
      cpSync(join(REPO_ROOT, part), join(root, part), { recursive: true, preserveTimestamps: true });
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(root, 'node_modules'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  test('runs the bundle with its code cache', () => {
    const r = agent(root, ['version']);
    assert.equal(r.code, 0, r.trace);
    assert.equal(r.out, VERSION);
    assert.equal(r.trace, 'agent: running dist/agent.cjs, code cache accepted');
  });

  test('a cache made for other V8 flags is refused by V8, and the bundle still runs', () => {
    const r = agent(root, ['version'], ['--max-semi-space-size=2']);
    assert.equal(r.code, 0, r.trace);
    assert.equal(r.out, VERSION);
    assert.match(r.trace, /^agent: running dist\/agent\.cjs, code cache rejected/);
  });

  test('the bundle serves the daemon: `config check` loads the config and the plugins through it', () => {
    const r = agent(root, ['config', 'check', '--config', join(REPO_ROOT, 'config', 'agent.yaml')]);
    assert.equal(r.code, 0, `${r.out}\n${r.trace}`);
    assert.match(r.trace, /code cache accepted/);
  });

  test('the daemon listens before loading crypto or zlib, and loads each where first used', async () => {
    const { dir, config } = daemonConfig('agent-bundle-lazy-');
    // Preloaded: prints Node's modules loaded so far as the API's socket starts listening.
    const hook = join(dir, 'hook.cjs');
    writeFileSync(
      hook,
      `const net = require('node:net'); const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  this.once('listening', () => process.stderr.write('loaded at listen: ' +
    process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13)).join(' ') + '\\n'));
  return listen.apply(this, args);
};\n`,
    );
    const child = spawn(process.execPath, ['-r', hook, join(root, 'bin', 'agent.js'), 'start', '--config', config], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const poll = setInterval(() => {
          const m = /API listening on (http:\/\/[0-9.:]+)/.exec(out);
          if (m) resolve(m[1]!);
          else if (child.exitCode !== null) reject(new Error(`the agent exited: ${out}${err}`));
          else return;
          clearInterval(poll);
        }, 20);
      });
      const loaded = /loaded at listen: (.*)/.exec(err)?.[1]?.split(' ') ?? [];
      assert.ok(loaded.includes('http'), `the hook saw the listen: ${err}`);
      for (const lazy of ['crypto', 'zlib']) assert.ok(!loaded.includes(lazy), `${lazy} is not loaded yet`);
      // The stand-ins load them now: gzip for the scrape, crypto for the instance id's SHA-1.
      const metrics = await fetch(`${url}/metrics`, { headers: { 'accept-encoding': 'gzip' } });
      assert.equal(metrics.status, 200);
      assert.equal(metrics.headers.get('content-encoding'), 'gzip');
      // fetch() gunzips the body: the text is the exposition.
      assert.match(await metrics.text(), /^# (HELP|TYPE) /m);
      const status = (await (await fetch(`${url}/v1/status`)).json()) as { instance_id?: string };
      assert.match(status.instance_id ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    } finally {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('executed, its shell lines are silent, and leave NODE_EXTRA_CA_CERTS to Node under --use-openssl-ca', () => {
    const ca = join(REPO_ROOT, 'core', 'testdata', 'extra-ca', 'ca.pem');
    const run = (env: NodeJS.ProcessEnv) =>
      spawnSync(join(root, 'bin', 'agent.js'), ['version'], {
        env: { ...process.env, NODE_EXTRA_CA_CERTS: ca, ...env },
        encoding: 'utf8',
        timeout: 60_000,
      });
    const quiet = run({});
    assert.equal(quiet.status, 0, quiet.stderr);
    assert.equal(quiet.stdout.trim(), VERSION);
    assert.equal(quiet.stderr, '', '/bin/sh reads the first lines without a word');
    const deferred = run({ NGINX_AGENT_TRACE_STARTUP: '1' });
    assert.match(deferred.stderr, /^agent: NODE_EXTRA_CA_CERTS deferred: /);
    // Node then trusts OpenSSL's store, not the bundled roots the agent compares the file with.
    const openssl = run({ NGINX_AGENT_TRACE_STARTUP: '1', NODE_OPTIONS: '--use-openssl-ca' });
    assert.equal(openssl.status, 0, openssl.stderr);
    assert.equal(openssl.stderr.trim(), 'agent: running dist/agent.cjs, code cache accepted', 'nothing deferred');
  });

  test('run as a command, it starts Node without NODE_EXTRA_CA_CERTS and trusts the file from the first TLS use', async () => {
    // OTLP over HTTPS to a collector whose certificate only the file's CA signed.
    const fixtures = join(REPO_ROOT, 'core', 'testdata', 'extra-ca');
    const posts: string[] = [];
    const collector = createServer(
      { key: readFileSync(join(fixtures, 'server.key')), cert: readFileSync(join(fixtures, 'server.pem')) },
      (req, res) => {
        posts.push(`${req.method} ${req.url}`);
        req.resume();
        req.on('end', () => res.end());
      },
    );
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const { dir, config } = daemonConfig(
      'agent-bundle-ca-',
      `otlp_exporter:\n  enabled: true\n  interval: 200ms\n` +
        `  endpoint: https://127.0.0.1:${(collector.address() as AddressInfo).port}/v1/metrics\n`,
    );
    // Executed, as npx, the systemd unit's wrapper and a shell run it: /bin/sh reads the first lines.
    const child = spawn(join(root, 'bin', 'agent.js'), ['start', '--config', config], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: join(fixtures, 'ca.pem'), NGINX_AGENT_TRACE_STARTUP: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      const deadline = Date.now() + 20_000;
      while (posts.length === 0 && child.exitCode === null && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(posts.slice(0, 1), ['POST /v1/metrics'], `the collector got an export:\n${out}`);
      assert.match(out, /NODE_EXTRA_CA_CERTS deferred: .*ca\.pem is read at the first TLS connection/);
      // The same process (sh execs Node): Node started without the variable, so never parsed the file.
      const environ = readFileSync(`/proc/${child.pid}/environ`, 'latin1').split('\0');
      assert.ok(!environ.some((e) => e.startsWith('NODE_EXTRA_CA_CERTS=')), 'Node started without it');
      assert.ok(environ.includes(`NGINX_AGENT_EXTRA_CA_CERTS=${join(fixtures, 'ca.pem')}`));
    } finally {
      child.kill('SIGTERM');
      await exited;
      collector.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('after a tsc run newer than the bundle, dist/cmd/agent.js runs instead of a stale bundle', () => {
    const later = new Date(Date.now() + 60_000);
    utimesSync(join(root, 'dist', '.tsbuildinfo'), later, later);
    const r = agent(root, ['version']);
    assert.equal(r.code, 0, r.trace);
    assert.equal(r.out, VERSION);
    assert.equal(r.trace, 'agent: running dist/cmd/agent.js (dist/agent.cjs is older than tsc output)');
  });
});
