/**
 * bin/agent.js runs the start-up bundle (dist/agent.cjs with its V8 code cache, scripts/bundle.mjs)
 * when it is current, and falls back to tsc's dist/cmd/agent.js when it is not. Runs against a copy
 * of the built package (bin, dist, package.json, a link to node_modules), so the checkout's dist is
 * never touched. Needs `npm run build` (npm test builds first).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync, utimesSync } from 'node:fs';
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

  test('after a tsc run newer than the bundle, dist/cmd/agent.js runs instead of a stale bundle', () => {
    const later = new Date(Date.now() + 60_000);
    utimesSync(join(root, 'dist', '.tsbuildinfo'), later, later);
    const r = agent(root, ['version']);
    assert.equal(r.code, 0, r.trace);
    assert.equal(r.out, VERSION);
    assert.equal(r.trace, 'agent: running dist/cmd/agent.js (dist/agent.cjs is older than tsc output)');
  });
});
