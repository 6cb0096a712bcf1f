import { strict as assert } from 'node:assert';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runAgent, startAgent } from '../core/testing/agent-process.js';

async function tempConfig(text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'agent-cli-'));
  const file = join(dir, 'agent.yaml');
  await writeFile(file, text);
  return file;
}

// Keep the child light: only the core runs; plugins are tested in their own folders.
const LIGHT = 'api:\n  port: 0\n';

describe('agent CLI (real child process)', () => {
  test('start serves /health, /metrics and /v1/status, then SIGTERM stops it gracefully with exit 0', async () => {
    const file = await tempConfig(LIGHT);
    const a = await startAgent(['--config', file]);
    try {
      const health = await fetch(`${a.url}/health`);
      assert.equal(health.status, 200);
      assert.equal(((await health.json()) as { status: string }).status, 'running');

      const metrics = await (await fetch(`${a.url}/metrics`)).text();
      assert.match(metrics, /# TYPE agent_bus_published_total counter\nagent_bus_published_total \d+/);
      assert.match(metrics, /agent_bus_delivered_total\{subscriber="metric-store"\}/);

      const status = (await (await fetch(`${a.url}/v1/status`)).json()) as {
        version: string;
        config: { file: string };
      };
      assert.match(status.version, /^\d+\.\d+\.\d+/);
      assert.equal(status.config.file, file);

      const missing = await fetch(`${a.url}/v1/nope`);
      assert.equal(missing.status, 404);
      assert.match(((await missing.json()) as { error: string }).error, /no such endpoint: GET \/v1\/nope/);
    } finally {
      assert.equal(await a.stop('SIGTERM'), 0);
    }
    assert.ok(a.logs.some((l) => l.msg === 'agent stopped'));
  });

  test('a bearer token guards every endpoint but /health', async () => {
    const file = await tempConfig(`${LIGHT}  token: s3cret\n`);
    const a = await startAgent(['--config', file]);
    try {
      assert.equal((await fetch(`${a.url}/health`)).status, 200);
      const denied = await fetch(`${a.url}/metrics`);
      assert.equal(denied.status, 401);
      assert.equal(denied.headers.get('www-authenticate'), 'Bearer');
      assert.equal((await fetch(`${a.url}/v1/status`, { headers: { Authorization: 'Bearer wrong' } })).status, 401);
      assert.equal((await fetch(`${a.url}/v1/status`, { headers: { Authorization: 'Bearer s3cret' } })).status, 200);
    } finally {
      await a.stop();
    }
  });

  test('SIGHUP: a bad new config is refused and the old one stays; a good one is applied', async () => {
    const file = await tempConfig(`${LIGHT}log:\n  level: info\n`);
    const a = await startAgent(['--config', file]);
    try {
      await writeFile(file, `${LIGHT}log:\n  level: info\n  colour: yes\n`);
      a.child.kill('SIGHUP');
      const refused = await a.waitForLog((l) => String(l.msg).startsWith('new config refused'), 'the refusal');
      assert.match(String(refused.msg), new RegExp(`${file}:5:3: log\\.colour: unknown key "colour"`));
      assert.equal((await fetch(`${a.url}/health`)).status, 200, 'still running on the old config');

      await writeFile(file, `${LIGHT}log:\n  level: debug\n`);
      a.child.kill('SIGHUP');
      const ok = await a.waitForLog((l) => String(l.msg).startsWith('config reloaded'), 'the reload');
      assert.deepEqual(ok.changed, ['log']);
    } finally {
      assert.equal(await a.stop(), 0);
    }
  });

  test('a missing api.token_file fails config check and start with exit 2 and file:line:key, no stack trace', async () => {
    const file = await tempConfig(`${LIGHT}  token_file: /nonexistent/agent-token\n`);
    const want = new RegExp(`${file}:3:3: api\\.token_file: cannot read /nonexistent/agent-token: no such file`);
    const check = await runAgent(['config', 'check', '--config', file]);
    assert.equal(check.code, 2);
    assert.match(check.stderr, want);
    const start = await runAgent(['start', '--config', file]);
    assert.equal(start.code, 2);
    assert.match(start.stderr, want);
    assert.doesNotMatch(start.stderr, /\n\s+at /, 'no stack trace');
    const conf = await tempConfig(
      `${LIGHT}nginx_config:\n  static_instances:\n    - conf_path: /nonexistent/nginx.conf\n`,
    );
    const confCheck = await runAgent(['config', 'check', '--config', conf]);
    assert.equal(confCheck.code, 2);
    assert.match(
      confCheck.stderr,
      new RegExp(
        `${conf}:5:\\d+: nginx_config\\.static_instances\\.0\\.conf_path: cannot read /nonexistent/nginx\\.conf: no such file`,
      ),
    );
  });

  test('a bad config stops the agent before it starts, with exit code 2 and the file and line', async () => {
    const file = await tempConfig('api:\n  port: -1\n');
    const r = await runAgent(['start', '--config', file]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`${file}:2:3: api\\.port: must be at least 0, got -1`));
    const flag = await runAgent(['start', '--config', await tempConfig(LIGHT), '--api-port', 'http']);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /flag --api-port \(api\.port\): must be an integer/);
  });

  test('config check prints the effective config; status asks a running agent', async () => {
    const file = await tempConfig(`${LIGHT}agent:\n  shutdown_timeout: 2s\n`);
    const check = await runAgent(['config', 'check', '--config', file], {
      NGINX_AGENT_BUS_QUEUE_SIZE: '123',
      NGINX_AGENT_NOPE: 'x',
    });
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /# config OK: /);
    assert.match(check.stdout, /queue_size: 123/);
    assert.match(check.stdout, /shutdown_timeout: 2s/);
    assert.match(check.stderr, /warning: unknown environment variable NGINX_AGENT_NOPE/);

    const a = await startAgent(['--config', file]);
    try {
      const port = new URL(a.url).port;
      const st = await runAgent(['status', '--json', '--config', file, '--api-port', port]);
      assert.equal(st.code, 0, st.stderr);
      assert.equal((JSON.parse(st.stdout) as { state: string }).state, 'running');
      const human = await runAgent(['status', '--config', file, '--api-port', port]);
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, /^nginx-agent \S+ on \S+ · running · up /);
    } finally {
      await a.stop();
    }
    const none = await runAgent(['status', '--config', file, '--api-port', '1']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no agent answers at http:\/\/127\.0\.0\.1:1\/v1\/summary/);
  });

  test('version prints the package version', async () => {
    const r = await runAgent(['version']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
  });
});
