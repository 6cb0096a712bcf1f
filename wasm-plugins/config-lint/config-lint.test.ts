/**
 * config-lint.wasm in-process with the Extism SDK on configs parsed by the agent's own parser
 * (core/nginx/config/parse.ts): every rule at its file and line across includes, nginx's
 * inheritance, a clean Debian default, and a live nginx.config.changed from the nginx-config
 * plugin watching a real nginx.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { parseNginxConfig, parseNginxText } from '../../core/nginx/config/parse.js';
import type { ConfigPayload, NginxConfigChanged } from '../../core/nginx/types.js';
import { NGINX_BIN, needNginx, TestNginx } from '../../core/testing/nginx.js';
import { instanceFixture } from '../../core/testing/nginx-fixtures.js';
import { startPlugin } from '../../core/testing/plugin-harness.js';
import { plugin as nginxConfig } from '../../plugins/nginx-config/index.js';
import { loadTestPlugin, readManifest, type TestPlugin } from '../_lib/testing.js';

const dir = dirname(fileURLToPath(import.meta.url));
const risky = join(dir, 'testdata', 'risky');
const debian = join(dir, '..', '..', 'core', 'nginx', 'config', 'testdata', 'corpus', 'debian');

interface Finding {
  rule: string;
  severity: string;
  message: string;
  file: string;
  line: number;
}
interface Lint {
  instance_id: string;
  version: string;
  conf_path: string;
  findings: Finding[];
  counts: Record<string, number>;
}

/** What the nginx-config plugin publishes, around a parsed payload (the fields the linter reads are real). */
function changed(
  payload: ConfigPayload,
  confPath: string,
  instanceId = 'inst-1',
): { topic: string; data: Partial<NginxConfigChanged> } {
  return {
    topic: 'nginx.config.changed',
    data: {
      instanceId,
      confPath,
      prefix: dirname(confPath),
      version: `v-${instanceId}`,
      files: [],
      payload,
      added: [],
      removed: [],
      changed: [],
    },
  };
}

const brief = (f: Finding[]) => f.map((x) => `${x.file}:${x.line} ${x.rule} ${x.severity}`).sort();

describe('config-lint', () => {
  const open: TestPlugin[] = [];
  async function load(config: Record<string, string> = {}, opts: { refuse?: boolean } = {}): Promise<TestPlugin> {
    const p = await loadTestPlugin(dir, config, opts);
    open.push(p);
    assert.equal(await p.init(), 0);
    return p;
  }
  async function lint(p: TestPlugin, payload: ConfigPayload, confPath: string): Promise<Lint> {
    const out = await p.process([changed(payload, confPath)]);
    assert.equal(out.length, 1, 'one lint message per change');
    assert.equal(out[0].topic, 'lint.nginx.config');
    assert.equal(out[0].via, 'host', 'published through the publish host function');
    return out[0].data as unknown as Lint;
  }
  after(async () => {
    for (const p of open) await p.close();
  });

  it('has a manifest with the ABI v1 keys, and describes itself', async () => {
    const m = readManifest(dir);
    assert.equal(m.name, 'config-lint');
    assert.equal(m.wasm, 'config-lint.wasm');
    assert.deepEqual(m.subscriptions, ['nginx.config.changed']);
    assert.deepEqual(m.publishes, ['lint.nginx.config']);
    assert.deepEqual(m.config, {}, 'every rule on by default');
    assert.ok(Number.isInteger(m.timeout_ms) && Number.isInteger(m.memory_mb));
    const d = await (await load()).describe();
    assert.match(d!.version, /^\d+\.\d+\.\d+$/);
  });

  it('finds every rule at its file and line, through includes and with inheritance', async () => {
    const confPath = join(risky, 'nginx.conf');
    const payload = await parseNginxConfig(confPath);
    assert.equal(payload.status, 'ok');
    const l = await lint(await load(), payload, confPath);
    const old = join(risky, 'conf.d', 'old-tls.conf');
    assert.deepEqual(
      brief(l.findings),
      [
        `${confPath}:13 proxy-timeouts-missing info`, // proxy_connect_timeout from http, no read timeout
        `${confPath}:21 tls-protocols-missing warning`, // listen 443 ssl, no ssl_protocols at server or http
        `${confPath}:26 access-log-off warning`,
        `${confPath}:27 server-tokens-on info`, // overrides http's server_tokens off
        `${confPath}:29 autoindex-on warning`,
        `${confPath}:33 access-log-missing warning`, // its proxy_pass is fine: proxy_read_timeout after the location still applies
        `${old}:5 tls-protocols-old warning`, // its proxy_pass inside if: connect from http, read from the location
      ].sort(),
    );
    assert.deepEqual(l.counts, { info: 2, warning: 5 });
    const order = l.findings.map((f) => [f.file, f.line]);
    assert.deepEqual(
      order,
      [...order].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : (a[1] as number) - (b[1] as number))),
      'sorted by file and line',
    );
    assert.equal(l.instance_id, 'inst-1');
    assert.equal(l.conf_path, confPath);
    const byRule = Object.fromEntries(l.findings.map((f) => [f.rule, f.message]));
    assert.match(byRule['proxy-timeouts-missing'], /proxy_pass http:\/\/app has no proxy_read_timeout/);
    assert.match(
      byRule['tls-protocols-old'],
      new RegExp(`enables TLSv1, TLSv1.1 .* at ${old.replaceAll('.', '\\.')}:1;`),
    );
  });

  it('does not flag the Debian default nginx.conf', async () => {
    const confPath = join(debian, 'nginx.conf');
    const payload = await parseNginxConfig(confPath);
    assert.ok(payload.config.length >= 3, 'includes followed');
    const l = await lint(await load(), payload, confPath);
    assert.deepEqual(l.findings, []);
    assert.deepEqual(l.counts, {});
  });

  it('inherits ssl_protocols and access_log from http, and reports one http-level directive once', async () => {
    const text = [
      'http {', //                              1
      '    ssl_protocols TLSv1.1 TLSv1.2;', //  2
      '    access_log off;', //                 3
      '    server { listen 443 ssl; }', //      4
      '    server { listen 8443 ssl; }', //     5
      '    server { listen 8444 ssl; ssl_protocols TLSv1.3; access_log /x.log; }', // 6
      '}',
    ].join('\n');
    const l = await lint(await load(), parseNginxText(text, '/etc/nginx/nginx.conf'), '/etc/nginx/nginx.conf');
    assert.deepEqual(brief(l.findings), [
      '/etc/nginx/nginx.conf:2 tls-protocols-old warning',
      '/etc/nginx/nginx.conf:3 access-log-off warning',
    ]);
  });

  it('a non-off access_log beside access_log off on the same level keeps logging; location-level off is not flagged', async () => {
    const text =
      'http {\n  access_log off;\n  access_log /var/log/a.log;\n  server { listen 80; location /health { access_log off; } }\n}\n';
    const l = await lint(await load(), parseNginxText(text, 'n.conf'), 'n.conf');
    assert.deepEqual(l.findings, []);
  });

  it('carries file names and arguments with quotes, backslashes and non-ASCII through unchanged', async () => {
    const file = '/etc/nginx/sites/café "main" \\ 🚀.conf';
    const text = 'http { access_log /l; server { listen 80; location / { proxy_pass "http://up\\"x\\"/é"; } } }';
    const l = await lint(await load(), parseNginxText(text, file), file);
    assert.equal(l.findings.length, 1);
    assert.equal(l.findings[0].file, file);
    assert.equal(l.conf_path, file);
    assert.match(l.findings[0].message, /^proxy_pass http:\/\/up"x"\/é has no/);
  });

  it('follows files that include each other only so deep, and reports a finding in them once', async () => {
    const files: Record<string, string> = {
      '/etc/nginx/nginx.conf': 'http { include a.conf; }\n',
      '/etc/nginx/a.conf': 'include b.conf; include b.conf;\nautoindex on;\n',
      '/etc/nginx/b.conf': 'include a.conf;\n',
    };
    const payload = await parseNginxConfig('/etc/nginx/nginx.conf', {
      readFile: async (f) => files[f] ?? Promise.reject(new Error(`ENOENT ${f}`)),
    });
    const l = await lint(await load(), payload, '/etc/nginx/nginx.conf');
    assert.deepEqual(brief(l.findings), ['/etc/nginx/a.conf:2 autoindex-on warning']);
  });

  it('skips the rules named in disabled_rules, and init refuses an unknown rule id', async () => {
    const confPath = join(risky, 'nginx.conf');
    const l = await lint(
      await load({ disabled_rules: 'server-tokens-on, autoindex-on' }),
      await parseNginxConfig(confPath),
      confPath,
    );
    assert.ok(!l.findings.some((f) => f.rule === 'server-tokens-on' || f.rule === 'autoindex-on'));
    assert.equal(l.findings.length, 5);
    const bad = await loadTestPlugin(dir, { disabled_rules: 'server-tokens-on,no-such-rule' });
    open.push(bad);
    await assert.rejects(bad.plugin.call('init'), /unknown rule "no-such-rule"; known: server-tokens-on/);
  });

  it('lints every change of a batch, and carries on (with one warning) when the host refuses', async () => {
    const a = parseNginxText('http { server { listen 80; autoindex on; } }', 'a.conf');
    const b = parseNginxText('http { access_log /l; server { listen 80; } }', 'b.conf');
    const p = await load();
    const out = await p.process([
      changed(a, 'a.conf', 'inst-a'),
      { topic: 'nginx.instance.health', data: {} },
      changed(b, 'b.conf', 'inst-b'),
    ]);
    assert.deepEqual(
      out.map((o) => [
        (o.data as unknown as Lint).instance_id,
        (o.data as unknown as Lint).findings.map((f) => f.rule),
      ]),
      [
        ['inst-a', ['autoindex-on', 'access-log-missing']],
        ['inst-b', []],
      ],
    );
    const refused = await load({}, { refuse: true });
    assert.deepEqual(await refused.process([changed(a, 'a.conf')]), []);
    assert.ok(
      refused.logs.some((l) => l.startsWith('warn: ') && l.includes('refused 1 message(s) on lint.nginx.config')),
      String(refused.logs),
    );
  });

  it('lints the nginx.config.changed of a real nginx as the nginx-config plugin publishes it', {
    skip: needNginx(),
  }, async () => {
    const nginx = await TestNginx.start({ httpExtra: 'server_tokens on;' });
    const h = await startPlugin(nginxConfig, { debounce: '100ms' });
    try {
      h.publish('nginx.instance.added', {
        instance: instanceFixture({
          id: 'live-1',
          pid: await nginx.masterPid(),
          binary: NGINX_BIN,
          version: '1.22.1',
          prefix: nginx.prefix,
          confPath: nginx.confPath,
        }),
      });
      await h.waitFor(() => h.published.some((e) => e.topic === 'nginx.config.changed'), 'nginx.config.changed');
      const ev = h.published.find((e) => e.topic === 'nginx.config.changed')!;
      const p = await load();
      const [out] = await p.process([{ topic: ev.topic, time: ev.time, data: ev.data }]);
      const l = out.data as unknown as Lint;
      const lines = readFileSync(nginx.confPath, 'utf8').split('\n');
      const lineOf = (s: string) => lines.findIndex((x) => x.includes(s)) + 1;
      assert.equal(l.instance_id, 'live-1');
      assert.equal(l.version, (ev.data as NginxConfigChanged).version);
      assert.deepEqual(
        brief(l.findings),
        [
          `${nginx.confPath}:${lineOf('server_tokens on')} server-tokens-on info`,
          `${nginx.confPath}:${lineOf('proxy_pass http://127.0.0.1:1')} proxy-timeouts-missing info`,
        ].sort(),
      );
    } finally {
      await h.close();
      await nginx.stop();
    }
  });
});
