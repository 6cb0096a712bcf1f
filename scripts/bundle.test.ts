/**
 * bin/agent.js runs the start-up bundle (dist/agent.cjs with its V8 code cache, scripts/bundle.mjs)
 * when it is current, and falls back to tsc's dist/cmd/agent.js when it is not. Runs against a copy
 * of the built package (bin, dist, package.json, a link to node_modules), so the checkout's dist is
 * never touched. Needs `npm run build` (npm test builds first).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
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
    const dir = mkdtempSync(join(tmpdir(), 'agent-bundle-lazy-'));
    mkdirSync(join(dir, 'proc'));
    const config = join(dir, 'agent.yaml');
    writeFileSync(
      config,
      `api:\n  host: 127.0.0.1\n  port: 0\nagent:\n  state_dir: ${dir}\nwasm:\n  enabled: false\n` +
        `nginx_discovery:\n  proc_root: ${join(dir, 'proc')}\n`,
    );
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

  test('after a tsc run newer than the bundle, dist/cmd/agent.js runs instead of a stale bundle', () => {
    const later = new Date(Date.now() + 60_000);
    utimesSync(join(root, 'dist', '.tsbuildinfo'), later, later);
    const r = agent(root, ['version']);
    assert.equal(r.code, 0, r.trace);
    assert.equal(r.out, VERSION);
    assert.equal(r.trace, 'agent: running dist/cmd/agent.js (dist/agent.cjs is older than tsc output)');
  });
});
