/**
 * The plugin on the real bus (plugin harness), against a real nginx under a temp prefix: first
 * parse, watcher events, `nginx -t` results, the API (list, config, apply with its statuses),
 * certificates, and static instances.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFile, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import type { GaugeMetric } from '../../core/metrics/model.js';
import type {
  CertificateExpiring,
  NginxConfigApplied,
  NginxConfigChanged,
  NginxConfigValidated,
  NginxInstance,
} from '../../core/nginx/types.js';
import { startPlugin, type PluginHarness } from '../../core/testing/plugin-harness.js';
import { defaultConf, getFresh, NGINX_BIN, needNginx, TestNginx } from '../../core/testing/nginx.js';
import { instanceFixture } from '../../core/testing/nginx-fixtures.js';
import type { Envelope } from '../../core/topics.js';
import { APPLY_DISABLED, plugin } from './index.js';

const DEBOUNCE_MS = 200;
const settle = () => new Promise((r) => setTimeout(r, DEBOUNCE_MS * 4));

function instanceOf(n: TestNginx, pid: number, id = 'inst-1'): NginxInstance {
  return instanceFixture({ id, pid, binary: NGINX_BIN, version: '1.22.1', prefix: n.prefix, confPath: n.confPath });
}

function of<T>(h: PluginHarness, topic: string): T[] {
  return h.published.filter((e: Envelope) => e.topic === topic).map((e) => e.data as T);
}

describe('nginx-config plugin with a real nginx', { skip: needNginx() }, () => {
  let nginx: TestNginx;
  let h: PluginHarness;
  let confD: string;
  let certPath: string;
  const changed = () => of<NginxConfigChanged>(h, 'nginx.config.changed');
  const validated = () => of<NginxConfigValidated>(h, 'nginx.config.validated');

  /** Waits for one more nginx.config.changed (and its validation), then for the quiet period; returns it. */
  async function nextChange(n: number): Promise<{ change: NginxConfigChanged; test: NginxConfigValidated }> {
    await h.waitFor(
      () => changed().length > n && validated().some((v) => v.version === changed()[n].version),
      `nginx.config.changed #${n + 1} and its validation`,
    );
    await settle();
    assert.equal(
      changed().length,
      n + 1,
      `exactly one nginx.config.changed, got ${JSON.stringify(
        changed()
          .slice(n)
          .map((c) => [c.added, c.removed, c.changed]),
      )}`,
    );
    const change = changed()[n];
    return {
      change,
      test: validated()
        .filter((v) => v.version === change.version)
        .at(-1)!,
    };
  }

  before(async () => {
    nginx = await TestNginx.start({ httpExtra: 'include conf.d/*.conf;' });
    confD = join(nginx.prefix, 'conf', 'conf.d');
    await mkdir(confD);
    await writeFile(join(confD, 'a.conf'), 'map $uri $a_conf { default 1; }\n');
    certPath = join(nginx.prefix, 'conf', 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '10',
        '-subj',
        '/CN=expiring.test',
        '-keyout',
        join(nginx.prefix, 'conf', 'key.pem'),
        '-out',
        certPath,
      ],
      { stdio: 'ignore' },
    );
    h = await startPlugin(plugin, {
      debounce: `${DEBOUNCE_MS}ms`,
      apply_enabled: true,
      allowed_directories: [join(nginx.prefix, 'conf')],
      apply_confirm_period: '400ms',
    });
    h.publish('nginx.instance.added', { instance: instanceOf(nginx, await nginx.masterPid()) });
  });
  after(async () => {
    await h?.close();
    await nginx?.stop();
  });

  it('parses the config when the instance appears: every file added, nginx -t passes', async () => {
    const { change, test } = await nextChange(0);
    assert.equal(change.instanceId, 'inst-1');
    assert.equal(change.previousVersion, undefined);
    assert.deepEqual(change.added, [join(confD, 'a.conf'), nginx.confPath].sort());
    assert.deepEqual([change.removed, change.changed], [[], []]);
    assert.equal(change.payload.status, 'ok');
    assert.match(change.version, /^[0-9a-f]{64}$/);
    assert.ok(change.analysis.accessLogs.some((l) => l.path === nginx.accessLog));
    assert.equal(test.ok, true, JSON.stringify(test.messages));
    assert.equal(test.exitCode, 0);
  });

  it('GET /v1/nginx lists the instance with its config version and last nginx -t result', async () => {
    const r = await h.request('GET', '/v1/nginx');
    assert.equal(r.status, 200);
    const [i] = (r.body as { instances: Record<string, unknown>[] }).instances;
    assert.equal(i.id, 'inst-1');
    assert.equal(i.binary, NGINX_BIN);
    assert.equal(i.confPath, nginx.confPath);
    assert.equal(i.configVersion, changed()[0].version);
    assert.equal((i.lastTest as { ok: boolean }).ok, true);
  });

  it('GET /v1/nginx/:id/config returns the crossplane payload, files and version; unknown ids are 404', async () => {
    const r = await h.request('GET', '/v1/nginx/inst-1/config');
    assert.equal(r.status, 200);
    const b = r.body as NginxConfigChanged;
    assert.equal(b.version, changed().at(-1)!.version);
    assert.equal(b.payload.config[0].file, nginx.confPath);
    assert.ok(b.payload.config[0].parsed.some((d) => d.directive === 'http'));
    assert.deepEqual(b.files.map((f) => f.path).sort(), [join(confD, 'a.conf'), nginx.confPath].sort());
    assert.equal((await h.request('GET', '/v1/nginx/nope/config')).status, 404);
  });

  describe('watcher', () => {
    let n = 0;
    beforeEach(async () => {
      await settle();
      n = changed().length;
    });

    it('an edit is one change of that file', async () => {
      await appendFile(nginx.confPath, '# edited\n');
      await appendFile(nginx.confPath, '# edited again\n');
      const { change, test } = await nextChange(n);
      assert.deepEqual([change.added, change.removed, change.changed], [[], [], [nginx.confPath]]);
      assert.equal(change.previousVersion, changed()[n - 1].version);
      assert.equal(test.ok, true);
    });

    it('an editor-style atomic save is one change', async () => {
      const tmp = join(confD, '.a.conf.swp');
      await writeFile(tmp, 'map $uri $a_conf { default 2; }\n');
      await rename(tmp, join(confD, 'a.conf'));
      const { change } = await nextChange(n);
      assert.deepEqual([change.added, change.removed, change.changed], [[], [], [join(confD, 'a.conf')]]);
    });

    it('a new file matching the include glob is one change with the file added; other files are ignored', async () => {
      await writeFile(join(confD, 'notes.txt'), 'not config');
      await writeFile(join(confD, 'b.conf~'), 'backup');
      await writeFile(join(confD, 'b.conf'), 'map $uri $b_conf { default 1; }\n');
      const { change } = await nextChange(n);
      assert.deepEqual([change.added, change.removed, change.changed], [[join(confD, 'b.conf')], [], []]);
    });

    it('a deleted file is one change with the file removed', async () => {
      await unlink(join(confD, 'b.conf'));
      const { change } = await nextChange(n);
      assert.deepEqual([change.added, change.removed, change.changed], [[], [join(confD, 'b.conf')], []]);
    });

    it('a syntax error is reported by nginx -t with file and line, and the fix passes again', async () => {
      await writeFile(join(confD, 'bad.conf'), 'map $uri $bad {\n  default 1;\n}\nbogus_directive on;\n');
      const { test } = await nextChange(n);
      assert.equal(test.ok, false);
      assert.deepEqual(
        test.messages.find((m) => m.level === 'emerg'),
        { level: 'emerg', text: 'unknown directive "bogus_directive"', file: join(confD, 'bad.conf'), line: 4 },
      );
      const listed = (await h.request('GET', '/v1/nginx')).body as { instances: { lastTest: { ok: boolean } }[] };
      assert.equal(listed.instances[0].lastTest.ok, false);
      await unlink(join(confD, 'bad.conf'));
      const fixed = await nextChange(n + 1);
      assert.equal(fixed.test.ok, true);
    });
  });

  describe('apply', () => {
    const base = () => defaultConf({ port: nginx.port, prefix: nginx.prefix }, { httpExtra: 'include conf.d/*.conf;' });

    it('a valid change is applied and served; the watcher does not report the agent\u2019s own write', async () => {
      await settle();
      const n = changed().length;
      const content = base().replace(
        'location = /ok {',
        'location = /from-api { return 200 "from api\\n"; }\n        location = /ok {',
      );
      const r = await h.request('PUT', '/v1/nginx/inst-1/config', { files: [{ path: nginx.confPath, content }] });
      assert.equal(r.status, 200, JSON.stringify(r.body, null, 1));
      const b = r.body as NginxConfigApplied & { steps: { step: string }[] };
      assert.equal(b.ok, true);
      assert.equal(b.rolledBack, false);
      assert.deepEqual(
        b.steps.map((s) => s.step),
        ['check-paths', 'check-master', 'backup', 'write', 'test', 'reload', 'confirm'],
      );
      const res = await getFresh(nginx.url('/from-api'));
      assert.equal(res.text, 'from api\n');
      const applied = of<NginxConfigApplied>(h, 'nginx.config.applied').at(-1)!;
      assert.equal(applied.ok, true);
      assert.equal(applied.version, b.version);
      await settle();
      // One change, announced by the apply itself, with the applied version; nothing from the watcher.
      assert.equal(changed().length, n + 1);
      assert.equal(changed().at(-1)!.version, b.version);
      assert.deepEqual(changed().at(-1)!.changed, [nginx.confPath]);
      assert.equal(validated().at(-1)!.version, b.version);
    });

    it('a change with a syntax error is 422, nothing on disk changes, the old config keeps serving', async () => {
      const before = await readFile(nginx.confPath, 'utf8');
      const n = changed().length;
      const r = await h.request('PUT', '/v1/nginx/inst-1/config', {
        files: [{ path: nginx.confPath, content: `${before}\nbogus_directive on;\n` }],
      });
      assert.equal(r.status, 422);
      const b = r.body as { ok: boolean; rolledBack: boolean; test: NginxConfigValidated; error: string };
      assert.equal(b.ok, false);
      assert.equal(b.rolledBack, true);
      assert.match(b.error, /^test: .*unknown directive "bogus_directive"/);
      assert.equal(b.test.messages.find((m) => m.level === 'emerg')?.file, nginx.confPath);
      assert.equal(await readFile(nginx.confPath, 'utf8'), before);
      assert.equal((await getFresh(nginx.url('/from-api'))).status, 200);
      assert.equal(of<NginxConfigApplied>(h, 'nginx.config.applied').at(-1)!.ok, false);
      await settle();
      assert.equal(changed().length, n, 'the restore is not a change');
    });

    it('paths outside allowed_directories are 403 and nothing is written', async () => {
      const before = await readFile(nginx.confPath, 'utf8');
      const r = await h.request('PUT', '/v1/nginx/inst-1/config', {
        files: [
          { path: nginx.confPath, content: 'x' },
          { path: '/etc/passwd', content: 'x' },
        ],
      });
      assert.equal(r.status, 403);
      assert.match((r.body as { error: string }).error, /outside allowed_directories/);
      assert.equal(await readFile(nginx.confPath, 'utf8'), before);
    });

    it('bad bodies are 400 and unknown instances 404', async () => {
      for (const body of [
        'not json',
        {},
        { files: [] },
        { files: [{ path: 1, content: '' }] },
        { files: [{ path: '/a' }] },
        { files: [{ path: '/a', content: '', mode: 7 }] },
        { files: [], extra: 1 },
      ]) {
        const r = await h.request('PUT', '/v1/nginx/inst-1/config', body);
        assert.equal(r.status, 400, JSON.stringify(body));
        assert.ok((r.body as { error: string }).error.length > 10);
      }
      assert.equal(
        (await h.request('PUT', '/v1/nginx/other/config', { files: [{ path: '/a', content: '' }] })).status,
        404,
      );
    });

    it('two applies at once run one after the other', async () => {
      const one = base().replace(
        'location = /ok {',
        'location = /one { return 200 "one\\n"; }\n        location = /ok {',
      );
      const two = base().replace(
        'location = /ok {',
        'location = /two { return 200 "two\\n"; }\n        location = /ok {',
      );
      const [r1, r2] = await Promise.all([
        h.request('PUT', '/v1/nginx/inst-1/config', { files: [{ path: nginx.confPath, content: one }] }),
        h.request('PUT', '/v1/nginx/inst-1/config', { files: [{ path: nginx.confPath, content: two }] }),
      ]);
      assert.equal(r1.status, 200, JSON.stringify(r1.body));
      assert.equal(r2.status, 200, JSON.stringify(r2.body));
      assert.equal(await readFile(nginx.confPath, 'utf8'), two);
      assert.equal((await getFresh(nginx.url('/two'))).text, 'two\n');
      const applied = of<NginxConfigApplied>(h, 'nginx.config.applied').slice(-2);
      assert.deepEqual(
        applied.map((a) => [a.ok, a.version]),
        [
          [true, (r1.body as { version: string }).version],
          [true, (r2.body as { version: string }).version],
        ],
      );
    });
  });

  it('publishes the certificate expiry gauge and an expiring event for a certificate within the window', async () => {
    const n = changed().length;
    await writeFile(
      join(confD, 'tls.conf'),
      `server {\n  listen 127.0.0.1:1 ssl;\n  ssl_certificate ${certPath};\n  ssl_certificate_key ${join(nginx.prefix, 'conf', 'key.pem')};\n}\n`,
    );
    await h.waitFor(() => changed().length > n, 'the change adding tls.conf');
    await h.waitFor(() => of(h, 'nginx.ssl.certificate.expiring').length > 0, 'nginx.ssl.certificate.expiring');
    const ev = of<CertificateExpiring>(h, 'nginx.ssl.certificate.expiring')[0];
    assert.equal(ev.path, certPath);
    assert.equal(ev.instanceId, 'inst-1');
    assert.ok(ev.secondsLeft > 9 * 86_400 && ev.secondsLeft <= 10 * 86_400, String(ev.secondsLeft));
    const m = h.metric('nginx.ssl.certificate.expiry') as GaugeMetric;
    assert.equal(m.unit, 's');
    const p = m.points.find((x) => x.attributes.path === certPath)!;
    assert.match(p.attributes.subject, /expiring\.test/);
    assert.ok(p.value > 9 * 86_400 && p.value <= 10 * 86_400);
    await unlink(join(confD, 'tls.conf'));
    await h.waitFor(
      () => !(h.metric('nginx.ssl.certificate.expiry') as GaugeMetric | undefined)?.points.length,
      'the gauge to drop the certificate',
    );
  });

  it('forgets the instance when it is removed', async () => {
    h.publish('nginx.instance.removed', { instance: instanceOf(nginx, await nginx.masterPid()) });
    await h.waitFor(
      async () => ((await h.request('GET', '/v1/nginx')).body as { instances: unknown[] }).instances.length === 0,
      'the instance to be forgotten',
    );
    assert.equal((await h.request('GET', '/v1/nginx/inst-1/config')).status, 404);
  });
});

describe('nginx-config plugin defaults and static instances', { skip: needNginx() }, () => {
  let nginx: TestNginx;
  before(async () => {
    nginx = await TestNginx.start();
  });
  after(() => nginx.stop());

  it('answers PUT with 403 and how to enable apply when apply_enabled is false (the default)', async () => {
    const h = await startPlugin(plugin, {});
    try {
      h.publish('nginx.instance.added', { instance: instanceOf(nginx, await nginx.masterPid()) });
      await h.waitFor(() => of(h, 'nginx.config.validated').length > 0, 'the first validation');
      const before = await readFile(nginx.confPath, 'utf8');
      const r = await h.request('PUT', '/v1/nginx/inst-1/config', { files: [{ path: nginx.confPath, content: 'x' }] });
      assert.equal(r.status, 403);
      assert.equal((r.body as { error: string }).error, APPLY_DISABLED);
      assert.match(APPLY_DISABLED, /nginx_config\.apply_enabled: true/);
      assert.equal(await readFile(nginx.confPath, 'utf8'), before);
    } finally {
      await h.close();
    }
  });

  it('reconfigure keeps the known instances: enabling apply makes PUT work without a new discovery event', async () => {
    const h = await startPlugin(plugin, {});
    try {
      h.publish('nginx.instance.added', { instance: instanceOf(nginx, await nginx.masterPid()) });
      await h.waitFor(() => of(h, 'nginx.config.validated').length > 0, 'the first validation');
      const content = (await readFile(nginx.confPath, 'utf8')).replace(
        'location = /ok {',
        'location = /reconfigured { return 200 "yes\\n"; }\n        location = /ok {',
      );
      const put = () => h.request('PUT', '/v1/nginx/inst-1/config', { files: [{ path: nginx.confPath, content }] });
      assert.equal((await put()).status, 403);
      const issues: never[] = [];
      const section = plugin.schema.parse(
        { apply_enabled: true, allowed_directories: [join(nginx.prefix, 'conf')], apply_confirm_period: '300ms' },
        ['nginx_config'],
        issues,
      );
      assert.deepEqual(issues, []);
      await h.host.reconfigure({ nginx_config: section } as never, ['nginx_config']);
      const r = await put();
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal((await getFresh(nginx.url('/reconfigured'))).text, 'yes\n');
    } finally {
      await h.close();
    }
  });

  it('a static instance whose nginx binary does not exist: one warning naming it', async () => {
    const lines: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const binary = join(nginx.prefix, 'no-such-nginx');
    const h = await startPlugin(
      plugin,
      { static_instances: [{ conf_path: nginx.confPath, prefix: nginx.prefix, binary, pid_file: nginx.pidFile }] },
      { logger },
    );
    try {
      await h.waitFor(() => lines.some((l) => l.msg.includes(binary)), 'the warning about the binary');
      const warns = lines.filter((l) => l.level === 40 && l.msg.includes(`the nginx binary ${binary} cannot be run`));
      assert.equal(warns.length, 1, JSON.stringify(lines.map((l) => l.msg)));
      assert.match(warns[0].msg, /set binary to the nginx that runs it/);
    } finally {
      await h.close();
    }
  });

  it('a config that parses but cannot be tested here is listed as parsed ("ok"), the test as untested', async () => {
    // The sidecar case: the agent reads nginx's config but cannot run nginx -t (no binary, no ptrace).
    const binary = join(nginx.prefix, 'no-such-nginx');
    const h = await startPlugin(plugin, {
      static_instances: [{ conf_path: nginx.confPath, prefix: nginx.prefix, binary, pid_file: nginx.pidFile }],
    });
    try {
      await h.waitFor(() => of(h, 'nginx.config.validated').length > 0, 'the first (untested) validation');
      const listed = (await h.request('GET', '/v1/nginx')).body as {
        instances: { configStatus: string; lastTest: { ok: boolean; untested?: string } }[];
      };
      assert.equal(listed.instances.length, 1);
      assert.equal(listed.instances[0].configStatus, 'ok', JSON.stringify(listed));
      assert.equal(listed.instances[0].lastTest.ok, false);
      assert.match(listed.instances[0].lastTest.untested ?? '', /cannot run/);
      const report = h.host.report().find((r) => r.name === 'nginx-config');
      assert.equal(report?.state, 'degraded');
      assert.match(report?.reason ?? '', /untested: cannot run/);
      assert.doesNotMatch(report?.reason ?? '', /does not parse/);
    } finally {
      await h.close();
    }
  });

  it('follows a static instance from its config path and pid file, and a discovered one replaces it', async () => {
    const h = await startPlugin(plugin, {
      static_instances: [
        { conf_path: nginx.confPath, prefix: nginx.prefix, binary: NGINX_BIN, pid_file: nginx.pidFile },
      ],
    });
    try {
      await h.waitFor(() => of(h, 'nginx.config.validated').length > 0, 'the first validation of the static instance');
      const listed = (await h.request('GET', '/v1/nginx')).body as {
        instances: { id: string; source: string; pid: number; configVersion: string }[];
      };
      assert.equal(listed.instances.length, 1);
      assert.equal(listed.instances[0].source, 'static');
      assert.equal(listed.instances[0].pid, await nginx.masterPid());
      assert.equal(of<NginxConfigValidated>(h, 'nginx.config.validated')[0].ok, true);
      h.publish('nginx.instance.added', { instance: instanceOf(nginx, await nginx.masterPid(), 'discovered-id') });
      await h.waitFor(async () => {
        const l = ((await h.request('GET', '/v1/nginx')).body as { instances: { id: string }[] }).instances;
        return l.length === 1 && l[0].id === 'discovered-id';
      }, 'the discovered instance to replace the static one');
    } finally {
      await h.close();
    }
  });
});
