import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './testing/agent-process.js';

test('an uncaught exception or unhandled rejection is logged and the process goes on', () => {
  const script = `
    import { guardProcess } from ${JSON.stringify(join(REPO_ROOT, 'core', 'process-guard.ts'))};
    import pino from 'pino';
    const guard = guardProcess(pino({ level: 'info', base: null }));
    setTimeout(() => { throw new TypeError('timer bug'); }, 1);
    setTimeout(() => void Promise.reject(new Error('forgotten rejection')), 2);
    setTimeout(() => { console.log(JSON.stringify({ alive: true, ...guard.count })); process.exitCode = 0; }, 50);
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.match(lines[0].msg, /^uncaught exception \(a bug; the agent goes on, please report it\): timer bug/);
  assert.match(lines[1].msg, /^unhandled promise rejection .*: forgotten rejection/);
  assert.deepEqual(lines[2], { alive: true, exceptions: 1, rejections: 1 });
});
