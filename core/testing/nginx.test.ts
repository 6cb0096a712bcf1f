import { strict as assert } from 'node:assert';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { needNginx, TestNginx, waitFor } from './nginx.js';

test('the harness starts a real nginx, serves statuses, logs them and stops by PID', {
  skip: needNginx(),
}, async () => {
  const n = await TestNginx.start();
  let pid = 0;
  try {
    assert.deepEqual(await n.get('/s/404', 2), [404, 404]);
    assert.deepEqual(await n.get('/ok'), [200]);
    const status = await (await fetch(n.url('/nginx_status'))).text();
    assert.match(status, /^Active connections: \d+ \n/);
    await waitFor(async () => (await readFile(n.accessLog, 'utf8')).split('\n').length >= 4, 'three log lines');
    pid = await n.masterPid();
    const before = await n.workerPids();
    await n.reload();
    assert.equal(await n.masterPid(), pid);
    assert.notDeepEqual(await n.workerPids(), before);
  } finally {
    await n.stop();
  }
  assert.ok(pid > 0);
  assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the master is gone after stop()');
});
