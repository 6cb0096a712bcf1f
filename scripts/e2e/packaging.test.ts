/**
 * Install and run as an operator would: the systemd unit passes `systemd-analyze verify` and is
 * hardened as documented; scripts/install.sh installs into a DESTDIR twice (idempotent), the installed
 * agent runs from production dependencies only, and scripts/uninstall.sh undoes it (config kept
 * unless --purge).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO_ROOT } from '../../core/testing/agent-process.js';
import { freePort, waitFor } from '../../core/testing/nginx.js';
import { needTool } from '../../core/testing/tools.js';
import { spawn } from 'node:child_process';

const UNIT = join(REPO_ROOT, 'config', 'nginx-agent.service');

/** `Key=value` lines of a unit file's [Service] section (repeated keys joined by a space). */
function serviceKeys(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      section = sec[1];
      continue;
    }
    const eq = line.indexOf('=');
    if (section !== 'Service' || eq < 0) continue;
    const k = line.slice(0, eq);
    out.set(k, out.has(k) ? `${out.get(k)} ${line.slice(eq + 1)}` : line.slice(eq + 1));
  }
  return out;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 300_000 });
  if (r.error) throw r.error;
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

function verify(unitText: string, dir: string): { code: number | null; out: string } {
  const f = join(dir, 'nginx-agent.service');
  writeFileSync(f, unitText);
  return run('systemd-analyze', ['verify', f]);
}

describe('config/nginx-agent.service', () => {
  const text = readFileSync(UNIT, 'utf8');
  const k = serviceKeys(text);

  test('is hardened as documented', () => {
    assert.ok(['simple', 'notify'].includes(k.get('Type')!));
    assert.equal(k.get('Restart'), 'on-failure');
    assert.equal(k.get('User'), 'nginx-agent');
    assert.equal(k.get('NoNewPrivileges'), 'yes');
    assert.equal(k.get('ProtectSystem'), 'strict');
    assert.equal(k.get('ProtectHome'), 'yes');
    assert.equal(k.get('PrivateTmp'), 'yes');
    // Only what nginx -t needs to bind nginx's ports below 1024.
    assert.equal(k.get('CapabilityBoundingSet'), 'CAP_NET_BIND_SERVICE');
    assert.equal(k.get('AmbientCapabilities'), 'CAP_NET_BIND_SERVICE');
    assert.equal(k.get('RuntimeDirectory'), 'nginx-agent', 'where nginx -t copies of the config go');
    assert.equal(k.get('StateDirectory'), 'nginx-agent', 'agent.state_dir, /var/lib/nginx-agent');
    assert.deepEqual(k.get('ReadWritePaths')!.split(/\s+/).sort(), ['/var/lib/nginx-agent', '/var/log/nginx-agent']);
    assert.equal(k.get('ExecStart'), '/opt/nginx-agent/bin/agent start --config /etc/nginx-agent/nginx-agent.yaml');
    assert.equal(k.get('ExecReload'), '/bin/kill -HUP $MAINPID');
    assert.equal(k.get('RestartPreventExitStatus'), '2', 'a config error (exit 2) is not restarted in a loop');
    assert.doesNotMatch(text, /^MemoryDenyWriteExecute=yes/m, 'V8 needs W+X memory');
  });

  test('passes systemd-analyze verify (ExecStart pointed at an existing file), and fails on a broken one', {
    skip: needTool('systemd-analyze', 'systemd'),
  }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'unit-'));
    try {
      const fake = join(dir, 'opt', 'nginx-agent', 'bin');
      mkdirSync(fake, { recursive: true });
      writeFileSync(join(fake, 'agent'), '#!/bin/sh\n', { mode: 0o755 });
      const ok = verify(text.replaceAll('/opt/nginx-agent', join(dir, 'opt', 'nginx-agent')), dir);
      assert.equal(ok.code, 0, ok.out);
      assert.equal(ok.out.trim(), '', 'no warnings');
      // The config-apply drop-in merged in stays valid.
      const dropIn = readFileSync(join(REPO_ROOT, 'examples', 'systemd', 'config-apply.conf'), 'utf8').replace(
        /^\[Service\]$/m,
        '',
      );
      const merged = verify(
        text
          .replaceAll('/opt/nginx-agent', join(dir, 'opt', 'nginx-agent'))
          .replace('[Install]', `${dropIn}\n[Install]`),
        dir,
      );
      assert.equal(merged.code, 0, merged.out);
      // The check is real: a typo is reported.
      const bad = verify(
        text
          .replaceAll('/opt/nginx-agent', join(dir, 'opt', 'nginx-agent'))
          .replace('Restart=on-failure', 'Restart=sometimes'),
        dir,
      );
      assert.match(bad.out, /restart specifier.*sometimes/i);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('scripts/install.sh and scripts/uninstall.sh into a DESTDIR', () => {
  let work: string;
  let dest: string;
  let dist: string;
  const prefix = '/opt/nginx-agent';
  const root = () => join(dest, prefix);
  const passwdLines = () =>
    readFileSync(join(dest, 'etc', 'passwd'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('nginx-agent:'));

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'install-'));
    dest = join(work, 'root');
    dist = join(work, 'dist');
    // Compile to a private dist so the shared checkout is not touched (tsc emits even when some
    // file elsewhere has a type error; the entry point is what matters here).
    run(join(REPO_ROOT, 'node_modules', '.bin', 'tsc'), ['-p', join(REPO_ROOT, 'tsconfig.json'), '--outDir', dist]);
    assert.ok(existsSync(join(dist, 'cmd', 'agent.js')), 'tsc produced dist/cmd/agent.js');
    // A target system's user database, so useradd --prefix works without touching this machine's.
    mkdirSync(join(dest, 'etc'), { recursive: true });
    for (const f of ['passwd', 'group', 'shadow', 'gshadow']) writeFileSync(join(dest, 'etc', f), '');
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  const install = () => run('sh', [join(REPO_ROOT, 'scripts', 'install.sh'), '--destdir', dest, '--dist', dist]);

  test('first install lays out program, unit, config, state dirs and user', () => {
    const r = install();
    assert.equal(r.code, 0, r.out);
    for (const f of [
      'bin/agent',
      'bin/agent.js',
      'bin/package.json',
      'dist/cmd/agent.js',
      'package.json',
      'package-lock.json',
      'config/agent.yaml',
      'node_modules/pino/package.json',
      'node_modules/@opentelemetry/otlp-transformer/package.json',
    ]) {
      assert.ok(existsSync(join(root(), f)), `${prefix}/${f} installed`);
    }
    assert.ok(!existsSync(join(root(), 'node_modules', 'typescript')), 'no dev dependencies');
    assert.ok(!existsSync(join(root(), 'node_modules', 'tsx')), 'no dev dependencies');
    const wrapper = readFileSync(join(root(), 'bin', 'agent'), 'utf8');
    assert.ok(wrapper.startsWith('#!/bin/sh\n'));
    assert.match(wrapper, /^NGINX_AGENT_NODE="\/\S*node"$/m);
    // Executed, not given to node: its shell lines defer NODE_EXTRA_CA_CERTS (core/extra-ca-certs.ts).
    assert.match(wrapper, /^exec "\/opt\/nginx-agent\/bin\/agent\.js" "\$@"$/m);
    assert.ok(statSync(join(root(), 'bin', 'agent')).mode & 0o111);
    const unit = readFileSync(join(dest, 'etc/systemd/system/nginx-agent.service'), 'utf8');
    assert.match(
      unit,
      /^ExecStart=\/opt\/nginx-agent\/bin\/agent start --config \/etc\/nginx-agent\/nginx-agent\.yaml$/m,
    );
    const cfg = join(dest, 'etc/nginx-agent/nginx-agent.yaml');
    // The defaults, with the Wasm plugin directories of the installation: the examples and the state dir.
    const defaults = readFileSync(join(REPO_ROOT, 'config', 'agent.yaml'), 'utf8');
    assert.equal(
      readFileSync(cfg, 'utf8'),
      defaults.replace(/^ {2}dirs: \[\]$/m, '  dirs: [/opt/nginx-agent/wasm-plugins, /var/lib/nginx-agent/plugins]'),
    );
    assert.notEqual(readFileSync(cfg, 'utf8'), defaults);
    assert.equal(statSync(cfg).mode & 0o777, 0o640);
    assert.ok(statSync(join(dest, 'var/lib/nginx-agent/plugins')).isDirectory());
    assert.ok(statSync(join(dest, 'var/log/nginx-agent')).isDirectory());
    const users = passwdLines();
    assert.equal(users.length, 1);
    const [, , uid, gid, , home, shell] = users[0].split(':');
    assert.equal(home, '/var/lib/nginx-agent');
    assert.equal(shell, '/usr/sbin/nologin');
    assert.ok(Number(uid) < 1000, 'a system user');
    assert.equal(statSync(join(dest, 'var/lib/nginx-agent')).uid, Number(uid));
    assert.equal(statSync(cfg).gid, Number(gid), 'config readable by the service group');
    // Built example Wasm plugins come along with their manifests.
    const wp = join(REPO_ROOT, 'wasm-plugins');
    for (const name of existsSync(wp) ? readdirSync(wp) : []) {
      const d = join(wp, name);
      if (!existsSync(join(d, 'plugin.yaml')) || !readdirSync(d).some((f) => f.endsWith('.wasm'))) continue;
      assert.ok(
        existsSync(join(root(), 'wasm-plugins', name, 'plugin.yaml')),
        `wasm-plugins/${name}/plugin.yaml installed`,
      );
    }
  });

  test('the installed agent runs from production dependencies only', async () => {
    const agentJs = join(root(), 'bin', 'agent.js');
    const cfg = join(dest, 'etc/nginx-agent/nginx-agent.yaml');
    const v = run(process.execPath, [agentJs, 'version']);
    assert.equal(v.code, 0, v.out);
    assert.equal(v.out.trim(), JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version);
    const check = run(process.execPath, [agentJs, 'config', 'check', '--config', cfg]);
    assert.equal(check.code, 0, check.out);
    const port = await freePort();
    const child = spawn(process.execPath, [agentJs, 'start', '--config', cfg, '--api-port', String(port)], {
      cwd: work,
      stdio: 'ignore',
    });
    try {
      await waitFor(
        async () => {
          try {
            return (await fetch(`http://127.0.0.1:${port}/health`)).status === 200;
          } catch {
            return false;
          }
        },
        'the installed agent to answer /health',
        30_000,
      );
      const m = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      assert.match(m, /^# TYPE agent_bus_published_total counter$/m);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });

  test('a second install is idempotent and keeps an edited config', () => {
    const cfg = join(dest, 'etc/nginx-agent/nginx-agent.yaml');
    writeFileSync(cfg, 'log:\n  level: debug\n');
    const stamp = statSync(join(root(), 'node_modules')).mtimeMs;
    const r = install();
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /kept the existing \/etc\/nginx-agent\/nginx-agent\.yaml/);
    assert.match(r.out, /user nginx-agent exists/);
    assert.match(r.out, /production dependencies are up to date/);
    assert.equal(readFileSync(cfg, 'utf8'), 'log:\n  level: debug\n');
    assert.equal(passwdLines().length, 1, 'no second user');
    assert.equal(statSync(join(root(), 'node_modules')).mtimeMs, stamp, 'node_modules not reinstalled');
    assert.ok(existsSync(join(root(), 'dist', 'cmd', 'agent.js')));
  });

  test('uninstall removes program and unit, keeps config and user; --purge removes those too', () => {
    const r = run('sh', [join(REPO_ROOT, 'scripts', 'uninstall.sh'), '--destdir', dest]);
    assert.equal(r.code, 0, r.out);
    assert.ok(!existsSync(root()));
    assert.ok(!existsSync(join(dest, 'etc/systemd/system/nginx-agent.service')));
    assert.ok(existsSync(join(dest, 'etc/nginx-agent/nginx-agent.yaml')), 'config kept');
    assert.equal(passwdLines().length, 1, 'user kept');
    const again = run('sh', [join(REPO_ROOT, 'scripts', 'uninstall.sh'), '--destdir', dest]);
    assert.equal(again.code, 0, again.out);
    const purge = run('sh', [join(REPO_ROOT, 'scripts', 'uninstall.sh'), '--destdir', dest, '--purge']);
    assert.equal(purge.code, 0, purge.out);
    for (const d of ['etc/nginx-agent', 'var/lib/nginx-agent', 'var/log/nginx-agent'])
      assert.ok(!existsSync(join(dest, d)), `${d} purged`);
    assert.equal(passwdLines().length, 0, 'user removed');
  });

  test('uninstall refuses to delete a prefix that is not an agent installation', () => {
    const other = join(work, 'other');
    mkdirSync(join(other, 'opt', 'data'), { recursive: true });
    writeFileSync(join(other, 'opt', 'data', 'keep.txt'), 'x');
    const r = run('sh', [join(REPO_ROOT, 'scripts', 'uninstall.sh'), '--destdir', other, '--prefix', '/opt/data']);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /does not look like an agent installation/);
    assert.ok(existsSync(join(other, 'opt', 'data', 'keep.txt')));
  });
});
