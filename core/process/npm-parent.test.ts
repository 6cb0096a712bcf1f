import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { waitFor } from '../testing/nginx.js';
import { findNpmAncestor } from './npm-parent.js';

const watcher = new URL('./npm-parent.ts', import.meta.url).pathname;

/**
 * A process whose command line is `node .../npm-cli.js` (as npm's is) starts, through `sh -c` like npm
 * does, a child that watches it and prints what happens; the "npm" is then killed with SIGTERM, which
 * (like npm) it does not forward.
 */
describe('watchNpmParent', () => {
  const dir = mkdtempSync(join(tmpdir(), 'npm-parent-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  function startFakeNpm(childScript: string): { npm: ChildProcess; output: () => string } {
    const child = join(dir, 'child.mjs');
    writeFileSync(child, childScript);
    const fakeNpm = join(dir, 'npm-cli.js');
    writeFileSync(
      fakeNpm,
      `const { spawn } = require('node:child_process');
       spawn('sh', ['-c', ${JSON.stringify(`"${process.execPath}" --import tsx ${child}; true`)}], { stdio: 'inherit' });
       process.on('SIGTERM', () => process.exit(143));
       setInterval(() => {}, 1000);`,
    );
    const npm = spawn(process.execPath, [fakeNpm], { stdio: ['ignore', 'pipe', 'inherit'], cwd: process.cwd() });
    let out = '';
    npm.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    return { npm, output: () => out };
  }

  test('finds the npm ancestor through sh, and calls onGone once npm exits without forwarding SIGTERM', async () => {
    const { npm, output } = startFakeNpm(
      `import { watchNpmParent, findNpmAncestor } from ${JSON.stringify(watcher)};
       console.log('npm ' + findNpmAncestor()?.pid);
       const stop = watchNpmParent({ intervalMs: 50, onGone: () => { console.log('gone'); process.exit(0); } });
       if (!stop) { console.log('no npm'); process.exit(1); }
       setInterval(() => {}, 1000);`,
    );
    try {
      await waitFor(() => output().includes('npm '), 'the child to start', 30_000);
      assert.equal(output().trim(), `npm ${npm.pid}`);
      npm.kill('SIGTERM');
      await waitFor(() => output().includes('gone'), 'the child to notice npm is gone', 30_000);
    } finally {
      npm.kill('SIGKILL');
    }
  });

  test('without npm among its ancestors there is nothing to watch', () => {
    // The test runner's ancestors are node and a shell, not npm, when this file runs on its own;
    // under `npm test` they include npm: either way the answer is consistent with the command lines.
    const found = findNpmAncestor();
    if (found) assert.match(readFileSync(`/proc/${found.pid}/cmdline`, 'utf8'), /np[mx]/);
  });
});
