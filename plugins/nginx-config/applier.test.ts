import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, readdir, stat, symlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NginxInstance } from '../../core/nginx/types.js';
import { defaultConf, freePort, getFresh, NGINX_BIN, needNginx, TestNginx } from '../../core/testing/nginx.js';
import { instanceFixture } from '../../core/testing/nginx-fixtures.js';
import { ConfigApplier, writeMode } from './applier.js';
import { NginxTester } from './nginx-test.js';
import { OwnWrites, sha256 } from './own-writes.js';

const body = getFresh;

/** Every file under a directory with its content hash, to prove nothing changed on disk. */
async function tree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out[join(e.parentPath, e.name)] = sha256(await readFile(join(e.parentPath, e.name)));
  }
  return out;
}

/**
 * `tree(prefix)` less the logs nginx writes itself: the workers a previous test's reload retired
 * write their "exiting" notices to error.log whenever they get to it.
 */
async function treeWithoutNginxLogs(prefix: string): Promise<Record<string, string>> {
  const out = await tree(prefix);
  for (const log of ['access.log', 'error.log']) delete out[join(prefix, 'logs', log)];
  return out;
}

describe('writeMode', () => {
  it('drops execute bits from an existing mode and uses 0644 for new files', () => {
    assert.equal(writeMode(undefined), 0o644);
    assert.equal(writeMode(0o755), 0o644);
    assert.equal(writeMode(0o640), 0o640);
    assert.equal(writeMode(0o4775), 0o664);
  });
});

describe('ConfigApplier against a real nginx', { skip: needNginx() }, () => {
  let nginx: TestNginx;
  let instance: NginxInstance;
  let applier: ConfigApplier;
  let own: OwnWrites;
  let confDir: string;
  const conf = (serverExtra = '', httpExtra = '') =>
    defaultConf(
      { port: nginx.port, prefix: nginx.prefix },
      { serverExtra, httpExtra: `include conf.d/*.conf;\n    ${httpExtra}` },
    );
  const apply = (files: { path: string; content: string }[]) => applier.apply(instance, files, [nginx.errorLog]);

  before(async () => {
    nginx = await TestNginx.start({ httpExtra: 'include conf.d/*.conf;' });
    confDir = join(nginx.prefix, 'conf');
    await mkdir(join(confDir, 'conf.d'));
    instance = instanceFixture({
      id: 'test',
      pid: await nginx.masterPid(),
      binary: NGINX_BIN,
      prefix: nginx.prefix,
      confPath: nginx.confPath,
    });
    own = new OwnWrites();
    applier = new ConfigApplier({
      allowedDirectories: [confDir],
      confirmPeriodMs: 600,
      procRoot: '/proc',
      ownWrites: own,
      tester: new NginxTester({ warningsAsErrors: false }),
    });
  });
  after(() => nginx.stop());

  it('applies a valid change: written atomically with safe modes, nginx reloaded, the new location served', async () => {
    await chmod(nginx.confPath, 0o755);
    const workersBefore = await nginx.workerPids();
    const r = await apply([
      { path: nginx.confPath, content: conf('location = /applied { return 200 "applied\\n"; }') },
      { path: 'conf.d/extra.conf', content: '# added by the apply test\nmap $uri $applied_extra { default 1; }\n' },
    ]);
    assert.equal(r.status, 200, JSON.stringify(r.steps, null, 1));
    assert.equal(r.ok, true);
    assert.equal(r.rolledBack, false);
    assert.deepEqual(
      r.steps.map((s) => [s.step, s.ok]),
      [
        ['check-paths', true],
        ['check-master', true],
        ['backup', true],
        ['write', true],
        ['test', true],
        ['reload', true],
        ['confirm', true],
      ],
    );
    assert.ok(r.steps.every((s) => typeof s.durationMs === 'number' && s.durationMs >= 0));
    assert.deepEqual(await body(nginx.url('/applied')), { status: 200, text: 'applied\n' });
    assert.ok(
      (await nginx.workerPids()).every((p) => !workersBefore.includes(p)),
      'a new worker generation runs',
    );
    assert.equal((await stat(nginx.confPath)).mode & 0o777, 0o644, 'existing mode without execute bits');
    assert.equal((await stat(join(confDir, 'conf.d/extra.conf'))).mode & 0o777, 0o644, 'new files are 0644');
    assert.deepEqual(r.written, [nginx.confPath, join(confDir, 'conf.d/extra.conf')]);
    assert.equal(
      own.isOwn(nginx.confPath, sha256(await readFile(nginx.confPath))),
      true,
      'own writes are recorded for the watcher',
    );
    assert.deepEqual(
      (await readdir(confDir)).filter((n) => n.endsWith('.tmp')),
      [],
      'no temp file left behind',
    );
  });

  it('refuses a change nginx -t rejects: files restored, new files deleted, the old config keeps serving', async () => {
    const before = await tree(`${nginx.prefix}/conf`);
    const workers = await nginx.workerPids();
    const r = await apply([
      { path: nginx.confPath, content: conf('location = /broken { return 200; }\n        bogus_directive on;') },
      { path: join(confDir, 'conf.d/new.conf'), content: 'map $uri $x { default 1; }\n' },
    ]);
    assert.equal(r.status, 422);
    assert.equal(r.ok, false);
    assert.equal(r.rolledBack, true);
    const test = r.steps.find((s) => s.step === 'test')!;
    assert.equal(test.ok, false);
    assert.match(test.detail!, /unknown directive "bogus_directive" in .*nginx\.conf:\d+/);
    assert.deepEqual(
      r.test?.messages.find((m) => m.level === 'emerg'),
      {
        level: 'emerg',
        text: 'unknown directive "bogus_directive"',
        file: nginx.confPath,
        line:
          conf('location = /broken { return 200; }\n        bogus_directive on;')
            .split('\n')
            .findIndex((l) => l.includes('bogus_directive')) + 1,
      },
    );
    assert.deepEqual(
      r.steps.map((s) => s.step),
      ['check-paths', 'check-master', 'backup', 'write', 'test', 'restore'],
    );
    assert.deepEqual(await tree(`${nginx.prefix}/conf`), before, 'nothing on disk changed');
    assert.deepEqual(await nginx.workerPids(), workers, 'nginx was not reloaded');
    assert.equal((await body(nginx.url('/applied'))).status, 200);
    assert.notEqual((await body(nginx.url('/broken'))).status, 200);
  });

  it('rolls back a change that passes -t but fails at reload (port taken) and reloads the old config', async () => {
    const port = await freePort();
    const holder: Server = createServer();
    await new Promise<void>((res) => holder.listen(port, '127.0.0.1', () => res()));
    try {
      const before = await tree(`${nginx.prefix}/conf`);
      const r = await apply([
        {
          path: nginx.confPath,
          content: conf('location = /never { return 200; }', `server { listen 127.0.0.1:${port}; return 200; }`),
        },
      ]);
      assert.equal(r.status, 409, JSON.stringify(r.steps, null, 1));
      assert.equal(r.ok, false);
      assert.equal(r.rolledBack, true);
      const confirm = r.steps.find((s) => s.step === 'confirm')!;
      assert.equal(confirm.ok, false);
      assert.match(confirm.detail!, /emerg.*Address already in use/);
      assert.deepEqual(
        r.steps.map((s) => s.step),
        [
          'check-paths',
          'check-master',
          'backup',
          'write',
          'test',
          'reload',
          'confirm',
          'restore',
          'reload-previous',
          'confirm-previous',
        ],
      );
      assert.equal(r.steps.find((s) => s.step === 'confirm-previous')!.ok, true, JSON.stringify(r.steps.at(-1)));
      assert.deepEqual(await tree(`${nginx.prefix}/conf`), before, 'files restored');
      assert.equal((await body(nginx.url('/applied'))).status, 200, 'the old config keeps serving');
      assert.notEqual((await body(nginx.url('/never'))).status, 200);
    } finally {
      await new Promise((res) => holder.close(res));
    }
  });

  it('refuses paths outside allowed_directories (.., symlinks, absolute) and writes nothing', async () => {
    await mkdir(join(nginx.prefix, 'outside'));
    await symlink(join(nginx.prefix, 'outside'), join(confDir, 'escape'));
    await symlink(join(nginx.prefix, 'html'), join(confDir, 'conf.d', 'html-link'));
    const before = await treeWithoutNginxLogs(nginx.prefix);
    const cases = [
      join(confDir, '../outside/evil.conf'),
      '../outside/evil.conf',
      join(confDir, 'escape/evil.conf'),
      'conf.d/html-link/index.html',
      join(nginx.prefix, 'logs/evil.conf'),
    ];
    for (const p of cases) {
      const r = await apply([
        { path: 'conf.d/fine.conf', content: '# would be allowed\n' },
        { path: p, content: 'evil' },
      ]);
      assert.equal(r.status, 403, p);
      assert.equal(r.ok, false);
      assert.equal(r.rolledBack, false);
      assert.deepEqual(
        r.steps.map((s) => [s.step, s.ok]),
        [['check-paths', false]],
      );
      assert.match(r.steps[0].detail!, /outside allowed_directories/);
    }
    assert.deepEqual(await treeWithoutNginxLogs(nginx.prefix), before, 'nothing on disk changed');
  });

  it('refuses two entries that resolve to the same file', async () => {
    const r = await apply([
      { path: nginx.confPath, content: 'a' },
      { path: 'nginx.conf', content: 'b' },
    ]);
    assert.equal(r.status, 403);
    assert.match(r.steps[0].detail!, /another entry of the request also writes/);
  });

  it('answers 409 without writing when the master is not running', async () => {
    const before = await tree(confDir);
    const r = await applier.apply({ ...instance, pid: 0 }, [{ path: 'conf.d/x.conf', content: '# x\n' }], []);
    assert.equal(r.status, 409);
    assert.deepEqual(
      r.steps.map((s) => [s.step, s.ok]),
      [
        ['check-paths', true],
        ['check-master', false],
      ],
    );
    assert.deepEqual(await tree(confDir), before);
  });
});
