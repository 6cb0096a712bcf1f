import assert from 'node:assert/strict';
import { mkdtemp, mkdir, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isInside, resolveAllowedDirs, resolveInside } from './paths.js';

describe('isInside', () => {
  it('compares whole path segments', () => {
    assert.equal(isInside('/etc/nginx/a.conf', '/etc/nginx'), true);
    assert.equal(isInside('/etc/nginx', '/etc/nginx'), true);
    assert.equal(isInside('/etc/nginx-evil/a.conf', '/etc/nginx'), false);
    assert.equal(isInside('/etc/passwd', '/etc/nginx'), false);
    assert.equal(isInside('/etc/nginx/..foo', '/etc/nginx'), true);
  });
});

describe('resolveInside on a real tree', () => {
  let root: string;
  let allowed: string[];
  before(async () => {
    root = await realpath(await mkdtemp(join(tmpdir(), 'nginx-config-paths-')));
    await mkdir(join(root, 'etc/nginx/conf.d'), { recursive: true });
    await mkdir(join(root, 'outside'));
    await writeFile(join(root, 'etc/nginx/nginx.conf'), 'events {}\n');
    await writeFile(join(root, 'outside/secret'), 'x');
    await symlink(join(root, 'outside'), join(root, 'etc/nginx/escape'));
    await symlink(join(root, 'outside/secret'), join(root, 'etc/nginx/link.conf'));
    await symlink(join(root, 'etc/nginx/conf.d'), join(root, 'etc/nginx/inner'));
    await symlink(join(root, 'nowhere'), join(root, 'etc/nginx/dangling.conf'));
    // The allowed directory itself reached through a symlink.
    await symlink(join(root, 'etc/nginx'), join(root, 'nginx-link'));
    allowed = await resolveAllowedDirs([join(root, 'nginx-link'), join(root, 'missing-dir')]);
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('resolves the allowed directories to their real paths and drops missing ones', () => {
    assert.deepEqual(allowed, [join(root, 'etc/nginx')]);
  });

  it('accepts existing and new files inside, absolute or relative to the config directory', async () => {
    const base = join(root, 'etc/nginx');
    assert.deepEqual(await resolveInside(join(base, 'nginx.conf'), base, allowed), {
      ok: true,
      requested: join(base, 'nginx.conf'),
      real: join(base, 'nginx.conf'),
      exists: true,
    });
    assert.deepEqual(await resolveInside('conf.d/new.conf', base, allowed), {
      ok: true,
      requested: 'conf.d/new.conf',
      real: join(base, 'conf.d/new.conf'),
      exists: false,
    });
    assert.deepEqual(await resolveInside('sub/dir/new.conf', base, allowed), {
      ok: true,
      requested: 'sub/dir/new.conf',
      real: join(base, 'sub/dir/new.conf'),
      exists: false,
    });
    const viaInner = await resolveInside(join(base, 'inner/x.conf'), base, allowed);
    assert.equal(viaInner.ok && viaInner.real, join(base, 'conf.d/x.conf'));
  });

  it('refuses `..`, symlinked files and symlinked directories that lead outside', async () => {
    const base = join(root, 'etc/nginx');
    for (const p of [
      join(base, '../../outside/new.conf'),
      '../../outside/secret',
      join(base, 'escape/new.conf'),
      join(base, 'escape/secret'),
      join(base, 'link.conf'),
      '/etc/passwd',
    ]) {
      const r = await resolveInside(p, base, allowed);
      assert.equal(r.ok, false, `${p} must be refused`);
      assert.match((r as { reason: string }).reason, /outside allowed_directories/);
    }
  });

  it('refuses a dangling symlink, a directory, and the allowed directory itself', async () => {
    const base = join(root, 'etc/nginx');
    assert.match(
      ((await resolveInside('dangling.conf', base, allowed)) as { reason: string }).reason,
      /symbolic link to a missing target/,
    );
    assert.match(((await resolveInside('conf.d', base, allowed)) as { reason: string }).reason, /not a regular file/);
    assert.match(((await resolveInside(base, base, allowed)) as { reason: string }).reason, /allowed directory itself/);
    assert.equal((await resolveInside('', base, allowed)).ok, false);
  });

  it('allows nothing when no allowed directory exists', async () => {
    const r = await resolveInside(join(root, 'etc/nginx/nginx.conf'), root, []);
    assert.equal(r.ok, false);
  });
});
