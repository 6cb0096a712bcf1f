import { strict as assert } from 'node:assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { bool, duration, int, object, record, string } from './schema.js';
import { defineBuiltin } from '../plugin/builtin.js';
import { ConfigError, changedSections, displayConfig, loadConfig, rootSchema } from './load.js';

const dir = join(import.meta.dirname, 'testdata');
const demo = defineBuiltin({
  name: 'demo-plugin',
  description: 'test plugin',
  schema: object({
    enabled: bool({ default: true }),
    interval: duration({ default: '15s' }),
    workers: int({ default: 2, min: 1, max: 8 }),
  }),
  create: () => ({ name: 'demo-plugin', subscriptions: () => [], init() {}, close() {} }),
});
const builtins = [demo];

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    assert.equal(e.exitCode, 2);
    return e.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('config loading', () => {
  test('embedded defaults when no file is found', () => {
    const l = loadConfig({ builtins, env: {}, searchPaths: ['/nonexistent/a.yaml'] });
    assert.equal(l.file, null);
    assert.equal(l.config.api.host, '127.0.0.1');
    assert.equal(l.config.api.port, 8039);
    assert.equal(l.config.agent.shutdown_timeout, 10_000);
    assert.deepEqual(l.config.demo_plugin, { enabled: true, interval: 15000, workers: 2 });
    assert.ok(Object.isFrozen(l.config.api), 'validated config is frozen');
  });

  test('the first existing file of the search path is used', () => {
    const l = loadConfig({ builtins, env: {}, searchPaths: ['/nonexistent/a.yaml', join(dir, 'good.yaml')] });
    assert.equal(l.file, join(dir, 'good.yaml'));
    assert.equal(l.config.api.port, 9001);
  });

  test('precedence: flags > env > file > defaults', () => {
    const file = join(dir, 'good.yaml');
    const base = loadConfig({ builtins, file, env: {} });
    assert.equal(base.config.log.level, 'warn');
    assert.equal(base.config.api.port, 9001);
    assert.equal(base.config.bus.queue_size, 10000);

    const env = {
      NGINX_AGENT_API_PORT: '9002',
      NGINX_AGENT_LOG_LEVEL: 'debug',
      NGINX_AGENT_DEMO_PLUGIN_INTERVAL: '30s',
      NGINX_AGENT_AGENT_LABELS: 'team=web,tier=edge',
    };
    const withEnv = loadConfig({ builtins, file, env });
    assert.equal(withEnv.config.api.port, 9002);
    assert.equal(withEnv.config.log.level, 'debug');
    assert.equal((withEnv.config.demo_plugin as { interval: number }).interval, 30000);
    assert.deepEqual(withEnv.config.agent.labels, { team: 'web', tier: 'edge' });
    assert.deepEqual(withEnv.env.sort(), Object.keys(env).sort());

    const withFlags = loadConfig({
      builtins,
      file,
      env,
      flags: [{ path: 'api.port', flag: '--api-port', value: 9003 }],
    });
    assert.equal(withFlags.config.api.port, 9003);
    assert.equal(withFlags.config.log.level, 'debug', 'env still wins over the file where no flag is given');
  });

  test('every problem of a bad file is reported at once with file, line, column and key', () => {
    const file = join(dir, 'bad.yaml');
    const p = problems(() => loadConfig({ builtins, file, env: {} }));
    const has = (re: RegExp) =>
      assert.ok(
        p.some((x) => re.test(x)),
        `no problem matches ${re}:\n${p.join('\n')}`,
      );
    has(
      new RegExp(
        `^${file}:2:3: log\\.level: must be one of trace, debug, info, warn, error, fatal, got the string "loud"$`,
      ),
    );
    has(new RegExp(`^${file}:4:3: api\\.port: must be at most 65535, got 70000$`));
    has(
      new RegExp(
        `^${file}:5:3: api\\.hots: unknown key "hots" \\(known keys here: enabled, host, port, token, token_file, dashboard\\)$`,
      ),
    );
    has(new RegExp(`^${file}:7:3: bus\\.queue_size: must be an integer, got the string "many"$`));
    has(
      new RegExp(
        `^${file}:9:3: agent\\.shutdown_timeout: must be a duration with a unit like 500ms, 15s, 1m or 2h, got number 5$`,
      ),
    );
    has(new RegExp(`^${file}:12:5: agent\\.labels\\.bad label: key "bad label" is not valid`));
    assert.equal(p.length, 6);
  });

  test('a file the config names (api.token_file) must exist and be readable: file:line:key', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'token-file-'));
    const file = join(tmp, 'agent.yaml');
    const missing = join(tmp, 'no-such-token');
    writeFileSync(file, `api:\n  port: 0\n  token_file: ${missing}\n`);
    assert.deepEqual(
      problems(() => loadConfig({ builtins, file, env: {} })),
      [`${file}:3:3: api.token_file: cannot read ${missing}: no such file`],
    );
    assert.deepEqual(
      problems(() => loadConfig({ builtins, file, env: { NGINX_AGENT_API_TOKEN_FILE: tmp } })),
      [`environment variable NGINX_AGENT_API_TOKEN_FILE (api.token_file): ${tmp} is not a regular file`],
    );
    writeFileSync(missing, 's3cret\n');
    assert.equal(loadConfig({ builtins, file, env: {} }).config.api.token_file, missing);
  });

  test('a YAML syntax error names the file and line', () => {
    const file = join(dir, 'syntax.yaml');
    const p = problems(() => loadConfig({ builtins, file, env: {} }));
    assert.match(p[0], new RegExp(`^${file}:\\d+:\\d+: YAML syntax error`));
  });

  test('a missing --config file is an error, not a silent fallback', () => {
    const p = problems(() => loadConfig({ builtins, file: '/nonexistent/agent.yaml', env: {} }));
    assert.match(p[0], /config file \/nonexistent\/agent\.yaml does not exist/);
  });

  test('bad env values and flags name the variable or flag', () => {
    const p = problems(() =>
      loadConfig({
        builtins,
        env: { NGINX_AGENT_API_PORT: 'eighty' },
        searchPaths: [],
        flags: [{ path: 'log.level', flag: '--log-level', value: 'chatty' }],
      }),
    );
    assert.ok(
      p.includes('environment variable NGINX_AGENT_API_PORT (api.port): must be an integer, got the string "eighty"'),
      p.join('\n'),
    );
    assert.ok(
      p.some((x) => x.startsWith('flag --log-level (log.level): must be one of')),
      p.join('\n'),
    );
  });

  test('an unknown NGINX_AGENT_* variable is a warning naming it', () => {
    // The launcher's and bin/agent.js's own variables are not config keys, and not unknown either.
    const own = { NGINX_AGENT_EXTRA_CA_CERTS: '/etc/ssl/certs/ca-certificates.crt', NGINX_AGENT_TRACE_STARTUP: '1' };
    const env = { NGINX_AGENT_API_PROT: '1', OTHER: 'x', ...own };
    const l = loadConfig({ builtins, env, searchPaths: [] });
    assert.deepEqual(l.warnings, [
      'unknown environment variable NGINX_AGENT_API_PROT is ignored (no config key maps to it)',
    ]);
  });

  test('labels follow the agent label rule', () => {
    const p = problems(() => loadConfig({ builtins, env: { NGINX_AGENT_AGENT_LABELS: 'ok=-bad' }, searchPaths: [] }));
    assert.match(p[0], /^environment variable NGINX_AGENT_AGENT_LABELS \(agent\.labels\.ok\): "-bad" is not valid/);
  });

  test('changedSections and displayConfig', () => {
    const a = loadConfig({ builtins, env: {}, searchPaths: [] }).config;
    const b = loadConfig({
      builtins,
      env: { NGINX_AGENT_DEMO_PLUGIN_WORKERS: '3', NGINX_AGENT_API_TOKEN: 's3cret' },
      searchPaths: [],
    }).config;
    assert.deepEqual(changedSections(a, b), ['api', 'demo_plugin']);
    const shown = displayConfig(rootSchema(builtins), b) as Record<string, Record<string, unknown>>;
    assert.equal(shown.demo_plugin.interval, '15s');
    assert.equal(shown.api.token, '<redacted>');
    assert.equal(shown.agent.shutdown_timeout, '10s');
  });

  test('displayConfig shows header names but not their values', () => {
    const schema = object({ headers: record(string(), { default: {}, description: 'h' }) }, { description: 'x' });
    const shown = displayConfig(schema, { headers: { Authorization: 'Bearer s3cret' } }) as {
      headers: Record<string, string>;
    };
    assert.deepEqual(shown.headers, { Authorization: '<redacted>' });
  });

  test("unknownSections ignore: a client reads the core sections without the plugins' schemas", () => {
    const file = join(dir, 'plugin-section.yaml');
    assert.ok(
      problems(() => loadConfig({ builtins: [], file, env: {} })).some((p) => /unknown key "demo_plugin"/.test(p)),
    );
    const l = loadConfig({
      builtins: [],
      file,
      env: { NGINX_AGENT_DEMO_PLUGIN_WORKERS: '3', NGINX_AGENT_API_PORT: '9002' },
      unknownSections: 'ignore',
    });
    assert.equal(l.config.api.port, 9002);
    assert.equal(l.config.demo_plugin, undefined);
    assert.deepEqual(l.warnings, []);
    assert.ok(
      problems(() =>
        loadConfig({
          builtins: [],
          file,
          env: {},
          unknownSections: 'ignore',
          flags: [{ path: 'api.port', flag: '--api-port', value: -1 }],
        }),
      ).some((p) => /flag --api-port/.test(p)),
      'core sections are still checked',
    );
  });
});
