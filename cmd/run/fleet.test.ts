/**
 * End to end: one nats-server with per-agent users, two real agents (child processes) each with a
 * real nginx, and the `agent fleet` CLI as the operator: ls, status, config get, a staged apply that
 * nginx serves, and a bad config that stops at the canary with the second agent untouched.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { sendCommand } from '../../core/fleet/operator.js';
import { natsAuthorization } from '../../core/fleet/subjects.js';
import { instanceId, readMachineId } from '../../core/instance-id.js';
import { REPO_ROOT, runAgent, startAgent, type AgentProcess } from '../../core/testing/agent-process.js';
import { TestNats } from '../../core/testing/nats.js';
import { NGINX_BIN, TestNginx, waitFor } from '../../core/testing/nginx.js';
import { needTool } from '../../core/testing/tools.js';

const skip = needTool('nats-server', 'nats-server') || needTool('nginx', 'nginx');

interface Member {
  name: string;
  nginx: TestNginx;
  agent: AgentProcess;
  id: string;
}

describe('agent fleet (two real agents, two nginx, one nats-server)', { skip }, () => {
  let dir: string;
  let nats: TestNats;
  const members: Member[] = [];
  let operatorFlags: string[];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fleet-e2e-'));
    const names = ['web-a', 'web-b'];
    const configs = names.map((n) => join(dir, `${n}.yaml`));
    const ids = configs.map((c) => instanceId(readMachineId(), hostname(), c));
    nats = await TestNats.start({
      extraConf: natsAuthorization(
        'nginx_agent',
        { user: 'operator', password: 'op-secret' },
        names.map((n, i) => ({ user: n, password: `${n}-secret`, agentId: ids[i] })),
      ),
    });
    await writeFile(join(dir, 'operator.pw'), 'op-secret\n');
    operatorFlags = ['--server', nats.url, '--user', 'operator', '--password-file', join(dir, 'operator.pw')];
    await Promise.all(
      names.map(async (name, i) => {
        const nginx = await TestNginx.start({ serverExtra: 'include fleet/*.conf;' });
        await writeFile(join(dir, `${name}.pw`), `${name}-secret\n`);
        await writeFile(
          configs[i],
          `api: { port: 0 }
agent: { labels: { env: e2e, role: edge } }
wasm: { enabled: false }
nginx_discovery: { enabled: false }
nginx_status: { enabled: false }
nginx_logs: { enabled: false }
host_metrics: { enabled: false }
nginx_config:
  apply_enabled: true
  apply_confirm_period: 300ms
  allowed_directories: [${nginx.prefix}/conf]
  static_instances:
    - { conf_path: ${nginx.confPath}, prefix: ${nginx.prefix}, binary: ${NGINX_BIN}, pid_file: ${nginx.pidFile} }
fleet:
  enabled: true
  servers: [${nats.url}]
  name: ${name}
  user: ${name}
  password_file: ${join(dir, `${name}.pw`)}
  heartbeat_interval: 1s
`,
        );
        const agent = await startAgent(['--config', configs[i]]);
        members[i] = { name, nginx, agent, id: ids[i] };
      }),
    );
  });

  after(async () => {
    for (const m of members) {
      await m?.agent.stop();
      await m?.nginx.stop();
    }
    await nats?.stop();
  });

  const fleet = (...args: string[]) => runAgent(['fleet', ...args, ...operatorFlags]);
  /** plugins.list to web-a straight over NATS, as the operator. */
  const sendPluginsList = async () => {
    const nc = await connect({ servers: nats.url, user: 'operator', pass: 'op-secret' });
    try {
      const reply = await sendCommand(nc, 'nginx_agent', members[0].id, 'plugins.list');
      assert.equal(reply.status, 200);
    } finally {
      await nc.close();
    }
  };

  test('ls lists both agents with their nginx; status and config get answer through NATS', async () => {
    let listed: { name: string; id: string; nginx: { config_path: string; up: boolean }[]; fleet_state: string }[] = [];
    await waitFor(
      async () => {
        const r = await fleet('ls', '--select', 'role=edge', '--json');
        if (r.code !== 0) return false;
        listed = JSON.parse(r.stdout);
        return listed.length === 2 && listed.every((a) => a.nginx.length === 1);
      },
      'both agents with their nginx in `agent fleet ls`',
      60_000,
    );
    assert.deepEqual(
      listed.map((a) => [a.name, a.id, a.nginx[0].config_path, a.nginx[0].up, a.fleet_state]),
      members.map((m) => [m.name, m.id, m.nginx.confPath, true, 'online']),
    );
    const table = await fleet('ls');
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^NAME\s+HOST\s+VERSION\s+NGINX\s+CONFIG VERSIONS\s+LAST SEEN\s+STATE\n/);
    assert.match(table.stdout, /\nweb-a .* 1 \(1 up\) .* online\n/);
    assert.equal((await fleet('ls', '--select', 'role=db', '--json')).stdout.trim(), '[]');

    const status = await fleet('status', 'web-b');
    assert.equal(status.code, 0, status.stderr);
    assert.equal(JSON.parse(status.stdout).instance_id, members[1].id);
    const conf = await fleet('config', 'get', 'web-a');
    assert.equal(conf.code, 0, conf.stderr);
    assert.equal(JSON.parse(conf.stdout).confPath, members[0].nginx.confPath);

    const health = (await (await fetch(`${members[0].agent.url}/health`)).json()) as { fleet: { state: string } };
    assert.equal(health.fleet.state, 'connected');
    const missing = await fleet('status', 'web-z');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no agent named "web-z" in the fleet \(known: web-a, web-b\)/);
  });

  test('apply --select changes both configs, nginx serves it; a bad config stops at the canary', async () => {
    const good = join(dir, 'good.conf');
    await writeFile(good, 'location = /fleet { return 200 "v2\\n"; }\n');
    const dry = await fleet('apply', '--select', 'role=edge', '--file', `fleet/app.conf=${good}`, '--dry-run');
    assert.equal(dry.code, 0, dry.stdout + dry.stderr);
    assert.match(dry.stdout, /web-b\s+tested/);
    assert.equal((await members[0].nginx.get('/fleet'))[0], 404, 'a dry run changes nothing');

    const r = await fleet('apply', '--select', 'env=e2e,role=edge', '--file', `fleet/app.conf=${good}`, '--batch', '1');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /canary: 1 agent\(s\), 1 ok, 0 failed/);
    assert.match(r.stdout, /wave 1\/1: 1 agent\(s\), 1 ok, 0 failed/);
    assert.match(r.stdout, /AGENT\s+RESULT\s+DURATION\s+ERROR\nweb-a\s+applied .*\nweb-b\s+applied/);
    for (const m of members) {
      const res = await fetch(m.nginx.url('/fleet'));
      assert.equal(await res.text(), 'v2\n', `${m.name} serves the new config`);
    }

    const bad = join(dir, 'bad.conf');
    await writeFile(bad, 'location = /fleet { no_such_directive on; }\n');
    const refused = await fleet('apply', '--select', 'role=edge', '--file', `fleet/app.conf=${bad}`);
    assert.equal(refused.code, 1);
    assert.match(refused.stdout, /canary: 1 agent\(s\), 0 ok, 1 failed .*stopping: --max-failures reached/);
    assert.match(refused.stdout, /web-a\s+failed .*422: test: .*no_such_directive/);
    assert.match(refused.stdout, /web-b\s+skipped/);
    for (const m of members) {
      assert.equal(await (await fetch(m.nginx.url('/fleet'))).text(), 'v2\n', `${m.name} still serves v2`);
      assert.match(await readFile(join(m.nginx.prefix, 'conf/fleet/app.conf'), 'utf8'), /v2/);
    }
  });

  test("apply is refused over the fleet when the agent's own nginx_config.apply_enabled is off", async () => {
    const b = members[1];
    const file = join(dir, 'web-b.yaml');
    await writeFile(file, (await readFile(file, 'utf8')).replace('apply_enabled: true', 'apply_enabled: false'));
    b.agent.child.kill('SIGHUP');
    await b.agent.waitForLog((l) => /config reloaded; changed: .*nginx_config/.test(String(l.msg)), 'the reload');
    const good = join(dir, 'v3.conf');
    await writeFile(good, 'location = /fleet { return 200 "v3\\n"; }\n');
    const r = await fleet('apply', 'web-b', '--file', `fleet/app.conf=${good}`);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /web-b\s+failed .*403: config apply is disabled: set nginx_config.apply_enabled: true/);
    assert.equal(await (await fetch(b.nginx.url('/fleet'))).text(), 'v2\n');
    const logged = b.agent.logs.find((l) => l.verb === 'nginx.config.apply' && l.outcome === 'error');
    assert.ok(logged, 'the refused command is logged with its outcome');

    // Every command is an event too, and the events reach the stream through the agents' real
    // events pipeline: the refused apply on web-b, the applies and their nginx.config.applied on both.
    let lines: string[] = [];
    await waitFor(
      async () => {
        const r = await fleet(
          'events',
          '--select',
          'role=edge',
          '--kind',
          'fleet.command',
          '--kind',
          'nginx.config.applied',
        );
        lines = r.stdout.trim().split('\n');
        return lines.some((l) => /web-b\s+warning\s+fleet.command\s+fleet command nginx.config.apply: 403/.test(l));
      },
      'the refused command as an event in the stream',
      30_000,
    );
    assert.ok(
      lines.some((l) => /web-a\s+info\s+nginx.config.applied/.test(l)),
      lines.join('\n'),
    );
    assert.ok(
      lines.some((l) =>
        /web-a\s+info\s+fleet.command\s+fleet command status: ok|web-b\s+info\s+fleet.command\s+fleet command status: ok/.test(
          l,
        ),
      ),
      lines.join('\n'),
    );
    assert.ok(
      lines.every((l) => /fleet.command|nginx.config.applied/.test(l)),
      'only the kinds asked for',
    );

    // --follow prints new events as they come, until SIGINT.
    const follow = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(REPO_ROOT, 'cmd', 'agent.ts'),
        'fleet',
        'events',
        '--follow',
        '--kind',
        'fleet.command',
        ...operatorFlags,
      ],
      { cwd: REPO_ROOT },
    );
    let followed = '';
    follow.stdout.on('data', (d: Buffer) => (followed += d.toString()));
    const exited = new Promise<number | null>((r) => follow.on('exit', (code) => r(code)));
    try {
      await waitFor(() => followed.includes('fleet command'), 'the existing events on --follow', 30_000);
      const before = followed.split('fleet command plugins.list').length;
      await sendPluginsList();
      await waitFor(
        () => followed.split('fleet command plugins.list').length > before,
        'the new command event on --follow',
        30_000,
      );
    } finally {
      follow.kill('SIGINT');
    }
    assert.equal(await exited, 0);
  });

  test('an agent killed without a word shows as lost after 3 heartbeats, the other stays online', async () => {
    await members[1].agent.stop('SIGKILL');
    let rows: { name: string; fleet_state: string }[] = [];
    await waitFor(
      async () => {
        const r = await fleet('ls', '--json');
        rows = r.code === 0 ? JSON.parse(r.stdout) : [];
        // Both in one listing: web-b lost while web-a, still beating every second, is online. (On a
        // loaded machine a single listing can catch web-a's heartbeat late, so wait for the pair.)
        return (
          rows.find((a) => a.name === 'web-b')?.fleet_state === 'lost' &&
          rows.find((a) => a.name === 'web-a')?.fleet_state === 'online'
        );
      },
      'web-b shown as lost and web-a online in the same listing',
      60_000,
    );
    assert.equal(rows.find((a) => a.name === 'web-a')?.fleet_state, 'online');
  });
});
