import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { resolveStateDir } from './state-dir.js';

const dir = mkdtempSync(join(tmpdir(), 'state-dir-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a configured directory is created and used', () => {
  const want = join(dir, 'a', 'nginx-agent');
  assert.deepEqual(resolveStateDir(want, { HOME: dir }), { dir: want });
  assert.ok(existsSync(want));
});

test('a configured directory that cannot be used falls back to the per-user one, with a warning', () => {
  const file = join(dir, 'plain-file');
  writeFileSync(file, '');
  const r = resolveStateDir(join(file, 'state'), { HOME: dir, XDG_STATE_HOME: join(dir, 'xdg') });
  assert.equal(r.dir, join(dir, 'xdg', 'nginx-agent'));
  assert.match(
    String(r.warning),
    /plain-file\/state cannot be used .*; using .*xdg\/nginx-agent \(set agent\.state_dir/,
  );
  const home = resolveStateDir(join(file, 'state'), { HOME: join(dir, 'home') });
  assert.equal(home.dir, join(dir, 'home', '.local', 'state', 'nginx-agent'));
});

test('nothing writable: no directory and a warning saying what is lost', () => {
  const file = join(dir, 'another-file');
  writeFileSync(file, '');
  const r = resolveStateDir(join(file, 'x'), { HOME: join(file, 'home') });
  assert.equal(r.dir, undefined);
  assert.match(String(r.warning), /log positions are not kept across restarts/);
});

test('auto: /var/lib/nginx-agent when writable, else the per-user directory, without a warning', () => {
  const r = resolveStateDir('', { HOME: dir, XDG_STATE_HOME: join(dir, 'auto') });
  assert.equal(r.warning, undefined);
  assert.ok(r.dir === '/var/lib/nginx-agent' || r.dir === join(dir, 'auto', 'nginx-agent'), String(r.dir));
});
