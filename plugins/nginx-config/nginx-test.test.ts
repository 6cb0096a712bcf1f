import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { chmod, mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NginxConfigValidated, NginxInstance } from '../../core/nginx/types.js';
import { NGINX_BIN, needNginx } from '../../core/testing/nginx.js';
import { instanceFixture } from '../../core/testing/nginx-fixtures.js';
import { needTool } from '../../core/testing/tools.js';
import { NginxTester, parseTestOutput, supportsErrorLogFlag, testArgs, testPassed } from './nginx-test.js';
import { permissionProblem } from './test-copy.js';

describe('parseTestOutput', () => {
  it('reads stderr-style and error-log-style lines, with file and line', () => {
    const text = [
      'nginx: [emerg] unknown directive "foo" in /etc/nginx/conf.d/a.conf:12',
      '2026/11/24 07:43:14 [warn] 21488#21488: conflicting server name "a" on 127.0.0.1:22, ignored',
      '2026/11/24 07:43:14 [emerg] 21489#21489: unexpected "}" in /p/conf/nginx.conf:9',
      'nginx: the configuration file /p/conf/nginx.conf syntax is ok',
      'nginx: configuration file /p/conf/nginx.conf test failed',
      '',
    ].join('\n');
    assert.deepEqual(parseTestOutput(text), [
      { level: 'emerg', text: 'unknown directive "foo"', file: '/etc/nginx/conf.d/a.conf', line: 12 },
      { level: 'warn', text: 'conflicting server name "a" on 127.0.0.1:22, ignored' },
      { level: 'emerg', text: 'unexpected "}"', file: '/p/conf/nginx.conf', line: 9 },
      { level: 'notice', text: 'the configuration file /p/conf/nginx.conf syntax is ok' },
      { level: 'notice', text: 'configuration file /p/conf/nginx.conf test failed' },
    ]);
  });

  it('keeps lines of unknown shape whole', () => {
    assert.deepEqual(parseTestOutput('something odd\n'), [{ level: 'info', text: 'something odd' }]);
  });
});

describe('testPassed', () => {
  const warn = [{ level: 'warn', text: 'x' }];
  it('fails on a non-zero exit, and on warnings only when they count as errors', () => {
    assert.equal(testPassed(0, warn, false), true);
    assert.equal(testPassed(0, warn, true), false);
    assert.equal(testPassed(1, [], false), false);
    assert.equal(testPassed(null, [], false), false);
  });
});

describe('testArgs', () => {
  it('passes prefix with a trailing slash, the config, and -g when the master had one', () => {
    assert.deepEqual(testArgs({ prefix: '/p', confPath: '/p/conf/nginx.conf' }), [
      '-t',
      '-p',
      '/p/',
      '-c',
      '/p/conf/nginx.conf',
    ]);
    assert.deepEqual(testArgs({ prefix: '/p/', confPath: '/c', globalDirectives: 'daemon off;' }), [
      '-t',
      '-p',
      '/p/',
      '-c',
      '/c',
      '-g',
      'daemon off;',
    ]);
  });
});

describe('NginxTester against the real nginx binary', { skip: needNginx() }, () => {
  let prefix: string;
  const inst = (): NginxInstance =>
    instanceFixture({ id: 'test', binary: NGINX_BIN, prefix, confPath: join(prefix, 'conf', 'nginx.conf') });
  const conf = (body: string) =>
    writeFile(
      join(prefix, 'conf', 'nginx.conf'),
      `pid logs/nginx.pid;\nerror_log logs/error.log notice;\nevents {}\nhttp {\n  client_body_temp_path tmp;\n${body}\n}\n`,
    );

  before(async () => {
    prefix = await mkdtemp(join(tmpdir(), 'nginx-config-t-'));
    await mkdir(join(prefix, 'conf'));
    await mkdir(join(prefix, 'logs'));
  });
  after(() => rm(prefix, { recursive: true, force: true }));

  it('passes a valid config', async () => {
    await conf('  server { listen 127.0.0.1:1; }');
    const r = await new NginxTester({ warningsAsErrors: false }).test(inst(), 'v1');
    assert.equal(r.ok, true, JSON.stringify(r.messages));
    assert.equal(r.exitCode, 0);
    assert.equal(r.version, 'v1');
    assert.ok(r.messages.some((m) => /syntax is ok/.test(m.text)));
  });

  it('fails a syntax error and names the file and line', async () => {
    await conf('  server { listen 127.0.0.1:1; }\n  bogus_directive on;');
    const r = await new NginxTester({ warningsAsErrors: false }).test(inst(), 'v2');
    assert.equal(r.ok, false);
    assert.equal(r.exitCode, 1);
    const e = r.messages.find((m) => m.level === 'emerg');
    assert.deepEqual(e, {
      level: 'emerg',
      text: 'unknown directive "bogus_directive"',
      file: join(prefix, 'conf', 'nginx.conf'),
      line: 7,
    });
  });

  it('keeps [warn] lines and fails on them only with warnings_as_errors', async () => {
    await conf('  server { listen 127.0.0.1:1; server_name a; }\n  server { listen 127.0.0.1:1; server_name a; }');
    const lenient = await new NginxTester({ warningsAsErrors: false }).test(inst(), 'v3');
    assert.equal(lenient.ok, true);
    assert.ok(lenient.messages.some((m) => m.level === 'warn' && /conflicting server name "a"/.test(m.text)));
    const strict = await new NginxTester({ warningsAsErrors: true }).test(inst(), 'v3');
    assert.equal(strict.ok, false);
    assert.equal(strict.exitCode, 0);
  });

  it('reports a binary that cannot run as a failed test', async () => {
    const r = await new NginxTester({ warningsAsErrors: false }).test(
      { ...inst(), binary: '/nonexistent/nginx' },
      'v4',
    );
    assert.equal(r.ok, false);
    assert.equal(r.exitCode, null);
    assert.match(r.messages.at(-1)!.text, /cannot run \/nonexistent\/nginx/);
  });
});

/**
 * The agent as a service user: nginx -t on a config whose pid file and logs only root may write.
 * The tester runs in a child process as `nobody` (setpriv, no groups, no capabilities).
 */
describe('NginxTester as a non-root user', { skip: needNginx() || needRootAndSetpriv() }, () => {
  let prefix: string;
  const inst = (): NginxInstance =>
    instanceFixture({ id: 'test', binary: NGINX_BIN, prefix, confPath: join(prefix, 'conf', 'nginx.conf') });

  /** Runs one test as nobody and returns its result. */
  function testAsNobody(settings: Record<string, unknown>, extra: Partial<NginxInstance> = {}): NginxConfigValidated {
    const script = join(prefix, 'run.mjs');
    writeFileSync(
      script,
      `const { NginxTester } = await import(${JSON.stringify(new URL('./nginx-test.ts', import.meta.url).pathname)});
       const r = await new NginxTester(${JSON.stringify(settings)}).test(${JSON.stringify({ ...inst(), ...extra })}, 'v');
       process.stdout.write(JSON.stringify(r));`,
    );
    const r = spawnSync(
      'setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        // What the systemd unit grants: nginx -t binds nginx's listen ports.
        '--inh-caps=-all,+net_bind_service',
        '--ambient-caps=-all,+net_bind_service',
        '--bounding-set=-all,+net_bind_service',
        process.execPath,
        '--import',
        'tsx',
        script,
      ],
      { encoding: 'utf8', cwd: process.cwd(), env: { ...process.env, TMPDIR: join(prefix, 'tmp') } },
    );
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as NginxConfigValidated;
  }

  before(async () => {
    prefix = await mkdtemp(join(tmpdir(), 'nginx-config-t-user-'));
    for (const d of ['conf', 'conf/conf.d', 'tmp', 'body']) await mkdir(join(prefix, d), { recursive: true });
    await mkdir(join(prefix, 'root-only'), { mode: 0o700 });
    await writeFile(
      join(prefix, 'conf', 'nginx.conf'),
      `user nobody;\npid ${prefix}/root-only/nginx.pid;\nerror_log ${prefix}/root-only/error.log;\nevents {}\nhttp {\n  client_body_temp_path ${prefix}/body;\n  proxy_temp_path ${prefix}/body; fastcgi_temp_path ${prefix}/body; uwsgi_temp_path ${prefix}/body; scgi_temp_path ${prefix}/body;\n  access_log ${prefix}/root-only/access.log combined;\n  include conf.d/*.conf;\n}\n`,
    );
    await writeFile(join(prefix, 'conf', 'conf.d', 'site.conf'), 'server {\n  listen 127.0.0.1:1;\n}\n');
    for (const d of ['', 'conf', 'conf/conf.d', 'body']) await chmod(join(prefix, d), 0o755);
    await chmod(join(prefix, 'tmp'), 0o1777);
  });
  after(() => rm(prefix, { recursive: true, force: true }));

  it('gets root\u2019s verdict on a valid config (a copy with its own pid and log files)', () => {
    const r = testAsNobody({ warningsAsErrors: true });
    assert.equal(r.ok, true, JSON.stringify(r.messages));
    assert.equal(r.untested, undefined);
    assert.ok(!r.messages.some((m) => m.level === 'warn'), 'no "user directive" warning');
  });

  it('an error in an included file is reported at the original file and line', async () => {
    await writeFile(join(prefix, 'conf', 'conf.d', 'site.conf'), 'server {\n  listen 127.0.0.1:1;\n  bogus on;\n}\n');
    try {
      const r = testAsNobody({ warningsAsErrors: false });
      assert.equal(r.ok, false);
      assert.equal(r.untested, undefined, 'a broken config is a verdict');
      const e = r.messages.find((m) => m.level === 'emerg');
      assert.deepEqual(e, {
        level: 'emerg',
        text: 'unknown directive "bogus"',
        file: join(prefix, 'conf', 'conf.d', 'site.conf'),
        line: 3,
      });
    } finally {
      await writeFile(join(prefix, 'conf', 'conf.d', 'site.conf'), 'server {\n  listen 127.0.0.1:1;\n}\n');
    }
  });

  it('a config without pid or error_log (nginx\u2019s compiled-in, root-owned paths) gets root\u2019s verdict too', async () => {
    const main = join(prefix, 'conf', 'nginx.conf');
    const original = await readFile(main, 'utf8');
    await writeFile(main, original.replace(/^pid .*\n/m, '\n').replace(/^error_log .*\n/m, '\n'));
    try {
      const r = testAsNobody({ warningsAsErrors: true }, { version: '1.22.1' });
      assert.equal(r.ok, true, JSON.stringify(r.messages));
    } finally {
      await writeFile(main, original);
    }
  });

  it('without the copy, the permission problem is reported as that, not as a broken config', () => {
    const r = testAsNobody({ warningsAsErrors: false, useCopy: false });
    assert.equal(r.ok, false);
    assert.match(r.untested ?? '', /^cannot test as user nobody: .*root-only\/\S+ not writable$/);
  });
});

function needRootAndSetpriv(): false | string {
  if (process.geteuid?.() !== 0) return 'runs nginx -t as another user: needs root';
  return needTool('setpriv', 'util-linux');
}

describe('permission problems and nginx -e', () => {
  it('names what nginx could not do as this user', () => {
    assert.equal(
      permissionProblem('open() "/run/nginx.pid" failed (13: Permission denied)'),
      '/run/nginx.pid not writable',
    );
    assert.equal(
      permissionProblem('mkdir() "/var/lib/nginx/body" failed (13: Permission denied)'),
      '/var/lib/nginx/body not writable',
    );
    assert.equal(
      permissionProblem(
        'cannot load certificate key "/etc/ssl/private/site.key": BIO_new_file() failed (SSL: error:8000000D:system library::Permission denied)',
      ),
      '/etc/ssl/private/site.key not readable',
    );
    assert.equal(
      permissionProblem('bind() to 0.0.0.0:80 failed (13: Permission denied)'),
      'binding 0.0.0.0:80 needs CAP_NET_BIND_SERVICE',
    );
    assert.equal(permissionProblem('unknown directive "bogus"'), undefined);
  });

  it('-e is given to nginx 1.19.5 and newer only', () => {
    assert.equal(supportsErrorLogFlag('1.22.1'), true);
    assert.equal(supportsErrorLogFlag('1.19.5'), true);
    assert.equal(supportsErrorLogFlag('1.19.4'), false);
    assert.equal(supportsErrorLogFlag(''), false);
  });
});
