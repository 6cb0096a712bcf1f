/**
 * The user's run, from the outside (driven by scripts/e2e.sh inside a fresh clone after `npm ci`):
 * a real nginx, the agent started as the README says with default settings, traffic, a config
 * change on disk, and checks over the HTTP API, /metrics, promtool and a real Prometheus scrape.
 * Prints `PASS <part>` or `FAIL <part>: reason` per part and `N passed, N failed`; exits 1 on a failure.
 *
 * Environment: E2E_PASSED / E2E_FAILED carry the counts of the parts e2e.sh already checked;
 * E2E_TIMEOUT_S bounds each wait (default 45).
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, TestNginx } from '../../core/testing/nginx.js';
import { promtoolCheck, startPrometheus } from './tools.js';

const ROOT = join(import.meta.dirname, '..', '..');
const WAIT_MS = Number(process.env.E2E_TIMEOUT_S ?? 45) * 1000;
let passed = Number(process.env.E2E_PASSED ?? 0);
let failed = Number(process.env.E2E_FAILED ?? 0);

function pass(part: string): void {
  passed++;
  console.log(`PASS ${part}`);
}
function fail(part: string, reason: string): void {
  failed++;
  console.log(`FAIL ${part}: ${reason.replace(/\s+/g, ' ').slice(0, 400)}`);
}

/** Polls `probe` until it returns a string (success detail) or the time is up; returns the last reason. */
async function check(
  part: string,
  probe: () => Promise<{ ok: true } | { ok: false; reason: string }>,
  waitMs = WAIT_MS,
): Promise<boolean> {
  const end = Date.now() + waitMs;
  let last = 'not checked';
  for (;;) {
    try {
      const r = await probe();
      if (r.ok) {
        pass(part);
        return true;
      }
      last = r.reason;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > end) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  fail(part, last);
  return false;
}

async function get(url: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, text: await res.text() };
}
async function json(url: string): Promise<{ status: number; body: unknown }> {
  const r = await get(url);
  let body: unknown;
  try {
    body = JSON.parse(r.text);
  } catch {
    body = r.text;
  }
  return { status: r.status, body };
}

/** Sum of the samples of a family whose labels match `labels` (all given pairs). */
function sample(text: string, family: string, labels: Record<string, string> = {}): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith(family)) continue;
    const m = /^(\S+?)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== family) continue;
    const ls = m[3] ?? '';
    if (!Object.entries(labels).every(([k, v]) => ls.includes(`${k}="${v}"`))) continue;
    total = (total ?? 0) + Number(m[4]);
  }
  return total;
}

/** The first object anywhere in `v` whose JSON mentions `needle`, preferring the deepest one in an array. */
function findObject(v: unknown, needle: string): Record<string, unknown> | undefined {
  if (Array.isArray(v)) {
    for (const x of v) {
      if (JSON.stringify(x).includes(needle))
        return (x && typeof x === 'object' && !Array.isArray(x) ? x : findObject(x, needle)) as Record<string, unknown>;
    }
    return undefined;
  }
  if (v && typeof v === 'object') {
    for (const x of Object.values(v)) {
      const f = findObject(x, needle);
      if (f) return f;
    }
  }
  return undefined;
}

/** Every value under keys naming a config version/hash, as one string. */
function versionOf(v: unknown, out: string[] = []): string {
  if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      if (
        /^(config_?)?(version|hash|checksum)$|^configVersion$|^config_version$/i.test(k) &&
        (typeof x === 'string' || typeof x === 'number')
      )
        out.push(`${k}=${x}`);
      else versionOf(x, out);
    }
  }
  return out.join(',');
}

async function main(): Promise<void> {
  const nginx = await TestNginx.start();
  const apiPort = await freePort();
  const pluginsDir = join(ROOT, 'wasm-plugins');
  const exampleWasm = existsSync(pluginsDir)
    ? readdirSync(pluginsDir).filter((n) => existsSync(join(pluginsDir, n, 'plugin.yaml')))
    : [];
  // As the README says (`npx agent start`, which runs bin/agent.js; started directly so signals reach
  // the agent and not npm), default settings; a free API port and the example Wasm plugins.
  const args = [join(ROOT, 'bin', 'agent.js'), 'start', '--api-port', String(apiPort), '--plugins-dir', pluginsDir];
  const agent = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, NGINX_AGENT_LOG_FORMAT: 'json', NGINX_AGENT_TRACE_STARTUP: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let agentOut = '';
  agent.stdout!.on('data', (d: Buffer) => (agentOut = (agentOut + d.toString()).slice(-50_000)));
  agent.stderr!.on('data', (d: Buffer) => (agentOut = (agentOut + d.toString()).slice(-50_000)));
  process.once('exit', () => agent.kill('SIGKILL'));
  const api = `http://127.0.0.1:${apiPort}`;
  let prom: Awaited<ReturnType<typeof startPrometheus>> | undefined;
  try {
    const up = await check('agent starts and answers /health', async () => {
      if (agent.exitCode !== null)
        return { ok: false, reason: `agent exited with ${agent.exitCode}: ${agentOut.slice(-600)}` };
      const r = await json(`${api}/health`);
      return r.status === 200
        ? { ok: true }
        : { ok: false, reason: `/health answered ${r.status}: ${JSON.stringify(r.body)}` };
    });
    if (!up) return;
    // `npm ci` built dist/agent.cjs and its code cache (scripts/bundle.mjs): the fast start-up path ran.
    await check('bin/agent.js ran the start-up bundle with its code cache', async () =>
      agentOut.includes('agent: running dist/agent.cjs, code cache accepted')
        ? { ok: true }
        : { ok: false, reason: `no "code cache accepted" trace: ${agentOut.split('\n')[0]}` },
    );

    // Traffic: 20 x 200, 5 x 404.
    await nginx.get('/ok', 20);
    await nginx.get('/s/404', 5);
    const pid = await nginx.masterPid();

    await check('host metrics', async () => {
      const t = (await get(`${api}/metrics`)).text;
      return /^# TYPE system_cpu_\S+ /m.test(t) && /^# TYPE system_memory_\S+ /m.test(t)
        ? { ok: true }
        : { ok: false, reason: 'no system_cpu_* and system_memory_* families on /metrics (host-metrics plugin)' };
    });

    let instance: Record<string, unknown> | undefined;
    await check('nginx discovered', async () => {
      const r = await json(`${api}/v1/nginx`);
      if (r.status !== 200) return { ok: false, reason: `GET /v1/nginx answered ${r.status}` };
      instance = findObject(r.body, nginx.prefix) ?? findObject(r.body, String(pid));
      return instance
        ? { ok: true }
        : {
            ok: false,
            reason: `GET /v1/nginx does not list the nginx under ${nginx.prefix} (master ${pid}): ${JSON.stringify(r.body).slice(0, 200)}`,
          };
    });

    await check('stub_status metrics', async () => {
      const t = (await get(`${api}/metrics`)).text;
      const req = sample(t, 'nginx_http_requests_total') ?? 0;
      const acc = sample(t, 'nginx_http_connections_total', { outcome: 'accepted' });
      return req >= 25 && acc !== undefined
        ? { ok: true }
        : {
            ok: false,
            reason: `nginx_http_requests_total=${req} (want >= 25), nginx_http_connections_total{outcome="accepted"}=${acc}`,
          };
    });

    // The access log is followed from its end once the instance's config is parsed (lines written
    // before that are history, not counted), so traffic goes on until the counts show up.
    await check('access log metrics', async () => {
      await nginx.get('/ok', 4);
      await nginx.get('/s/404', 1);
      const t = (await get(`${api}/metrics`)).text;
      const r4 = sample(t, 'nginx_http_responses_total', { status_range: '4xx' }) ?? 0;
      const r2 = sample(t, 'nginx_http_responses_total', { status_range: '2xx' }) ?? 0;
      return r4 >= 5 && r2 >= 20
        ? { ok: true }
        : { ok: false, reason: `nginx_http_responses_total 2xx=${r2} (want >= 20), 4xx=${r4} (want >= 5)` };
    });

    // Change the config on disk (no reload): the agent must notice.
    const before = instance ? versionOf(await configView(api, instance)) : '';
    const conf = readFileSync(nginx.confPath, 'utf8');
    writeFileSync(
      nginx.confPath,
      conf.replace('location = /ok {', 'location = /e2e-added { return 204; }\n        location = /ok {'),
    );
    await check('config change detected (version changed)', async () => {
      if (!instance) return { ok: false, reason: 'nginx instance not discovered' };
      const after = versionOf(await configView(api, instance));
      if (!before)
        return { ok: false, reason: 'no config version/hash field found in GET /v1/nginx or /v1/nginx/{id}/config' };
      return after && after !== before ? { ok: true } : { ok: false, reason: `config version unchanged (${before})` };
    });

    await check('wasm plugins loaded', async () => {
      if (exampleWasm.length === 0)
        return { ok: false, reason: 'no example Wasm plugins (wasm-plugins/<name>/plugin.yaml)' };
      const r = await json(`${api}/v1/plugins`);
      const plugins = ((r.body as { plugins?: { name: string; kind: string; state: string }[] }).plugins ?? []).filter(
        (p) => p.kind === 'external',
      );
      const running = plugins.filter((p) => p.state === 'running');
      if (running.length < exampleWasm.length) {
        return {
          ok: false,
          reason: `${running.length} of ${exampleWasm.length} example Wasm plugins running (${JSON.stringify(plugins)})`,
        };
      }
      // config-lint subscribes to nginx.config.changed, which the edit above published: it was called.
      const m = /^agent_wasm_plugin_messages_total\{plugin="config-lint"\} (\d+)/m.exec(
        (await get(`${api}/metrics`)).text,
      );
      return m && Number(m[1]) > 0
        ? { ok: true }
        : {
            ok: false,
            reason: `config-lint got no message (${m ? m[0] : 'no agent_wasm_plugin_messages_total for it'})`,
          };
    });

    await check(
      'promtool check metrics',
      async () => {
        const r = promtoolCheck((await get(`${api}/metrics`)).text);
        return r.code === 0 && r.problems.length === 0
          ? { ok: true }
          : { ok: false, reason: `exit ${r.code}: ${r.problems.slice(0, 5).join('; ')}` };
      },
      5000,
    );

    try {
      prom = await startPrometheus([`127.0.0.1:${apiPort}`]);
    } catch (e) {
      fail('prometheus scrape', (e as Error).message);
    }
    if (prom) {
      const p = prom;
      await check('prometheus scrape', async () => {
        const scrapes = Number((await p.query('count_over_time(up{job="nginx-agent"}[5m])'))[0]?.value[1] ?? 0);
        const upNow = (await p.query('up{job="nginx-agent"}'))[0]?.value[1];
        const reqs = await p.query('nginx_http_requests_total');
        const cpu = await p.query('{__name__=~"system_cpu_.+"}');
        return scrapes >= 2 && upNow === '1' && reqs.length > 0 && cpu.length > 0
          ? { ok: true }
          : {
              ok: false,
              reason: `scrapes=${scrapes} up=${upNow} nginx_http_requests_total series=${reqs.length} system_cpu_* series=${cpu.length}`,
            };
      });
    }

    await check(
      'graceful stop',
      async () => {
        agent.kill('SIGTERM');
        const code = await new Promise<number | null>((r) =>
          agent.exitCode !== null ? r(agent.exitCode) : agent.once('exit', (c) => r(c)),
        );
        return code === 0 ? { ok: true } : { ok: false, reason: `exit code ${code}` };
      },
      0,
    );
  } finally {
    agent.kill('SIGKILL');
    await prom?.stop();
    await nginx.stop();
  }
}

/** The instance as listed, plus its config view when the API has one (`/v1/nginx/{id}/config`). */
async function configView(api: string, instance: Record<string, unknown>): Promise<unknown> {
  const id = instance.id ?? instance.instance_id ?? instance.instanceId;
  const list = await json(`${api}/v1/nginx`);
  const cur = findObject(list.body, String(id)) ?? instance;
  if (typeof id !== 'string') return cur;
  const cfg = await json(`${api}/v1/nginx/${encodeURIComponent(id)}/config`);
  return cfg.status === 200 ? { instance: cur, config: cfg.body } : cur;
}

try {
  await main();
} catch (e) {
  fail('e2e run', (e as Error).stack ?? String(e));
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
