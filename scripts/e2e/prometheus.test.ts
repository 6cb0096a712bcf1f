/**
 * The agent as Prometheus sees it: /metrics passes promtool, a real Prometheus server scrapes it, and
 * with prometheus.exporter_compat the families of nginx-prometheus-exporter are all there, typed alike.
 * Parts that need a plugin not yet in plugins/registry.ts are skipped with the reason.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startAgent, type AgentProcess } from '../../core/testing/agent-process.js';
import { needNginx, TestNginx, waitFor } from '../../core/testing/nginx.js';
import { builtins } from '../../plugins/registry.js';
import {
  familyTypes,
  needNginxExporter,
  needPrometheus,
  needPromtool,
  promtoolCheck,
  promtoolCheckOpenMetrics,
  startNginxExporter,
  startPrometheus,
} from './tools.js';

const have = (...names: string[]) => names.every((n) => builtins.some((b) => b.name === n));
const NGINX_PLUGINS = ['nginx-discovery', 'nginx-config', 'nginx-status'];
const needNginxPlugins = have(...NGINX_PLUGINS)
  ? false
  : `needs the plugins ${NGINX_PLUGINS.join(', ')} in plugins/registry.ts`;
const needHost = have('host-metrics') ? false : 'needs the host-metrics plugin in plugins/registry.ts';

async function metrics(agent: AgentProcess): Promise<string> {
  const res = await fetch(`${agent.url}/metrics`, { signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200);
  return res.text();
}

// Each part needs nginx and promtool; the scrape needs Prometheus, the comparison the exporter.
const needTools = [needNginx(), needPromtool()].find(Boolean) ?? false;
let nginx: TestNginx;
before(async () => {
  if (needTools) return;
  nginx = await TestNginx.start();
  await nginx.get('/ok', 5);
  await nginx.get('/s/404', 2);
});
after(async () => {
  await nginx?.stop();
});

describe('default /metrics', { skip: needTools }, () => {
  let agent: AgentProcess;
  before(async () => {
    agent = await startAgent(['--api-port', '0']);
    // Wait for what the registered plugins should show, so promtool sees the full exposition.
    const want = [...(needNginxPlugins ? [] : ['nginx_http_requests_total']), ...(needHost ? [] : ['system_cpu_'])];
    await waitFor(
      async () => {
        const text = await metrics(agent);
        return want.every((w) => text.includes(`# TYPE ${w}`));
      },
      `/metrics to show ${want.join(', ') || 'the agent metrics'}`,
      60_000,
    );
  });
  after(async () => {
    await agent?.stop();
  });

  test('passes promtool check metrics with no problem', async () => {
    const text = await metrics(agent);
    const r = promtoolCheck(text);
    assert.deepEqual(r.problems, [], 'promtool complaints');
    assert.equal(r.code, 0);
    // Every family has HELP and TYPE; counters end in _total.
    const types = familyTypes(text);
    assert.ok(types.size > 5);
    for (const [name, type] of types) {
      assert.match(text, new RegExp(`^# HELP ${name} \\S`, 'm'), `HELP for ${name}`);
      if (type === 'counter') assert.match(name, /_total$/, `counter ${name} ends in _total`);
    }
  });

  test('OpenMetrics, as Prometheus asks for it, passes the same checks; gzip and ETag are honoured', async () => {
    const res = await fetch(`${agent.url}/metrics`, {
      headers: {
        Accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1',
        'Accept-Encoding': 'gzip',
      },
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/openmetrics-text; version=1.0.0; charset=utf-8');
    assert.equal(res.headers.get('content-encoding'), 'gzip');
    const text = await res.text(); // fetch gunzips
    const r = promtoolCheckOpenMetrics(text);
    assert.deepEqual(r.problems, [], 'OpenMetrics structure and promtool complaints');
    assert.equal(r.code, 0);
    const etag = res.headers.get('etag') ?? '';
    assert.match(etag, /^"om-[0-9a-f]+-gzip"$/);
  });

  describe('a real Prometheus server scraping the agent', { skip: needPrometheus() }, () => {
    let prom: Awaited<ReturnType<typeof startPrometheus>>;
    before(async () => {
      prom = await startPrometheus([new URL(agent.url).host]);
      await waitFor(
        async () => {
          const r = await prom.query('count_over_time(up{job="nginx-agent"}[5m])');
          return Number(r[0]?.value[1] ?? 0) >= 2;
        },
        'two scrapes of the agent',
        30_000,
      );
    });
    after(async () => {
      await prom?.stop();
    });

    test('the target is up after two scrapes, and the agent metrics are stored', async () => {
      const up = await prom.query('up{job="nginx-agent"}');
      assert.equal(up.length, 1);
      assert.equal(up[0].value[1], '1');
      assert.ok((await prom.query('agent_bus_published_total')).length > 0);
      const errors = await prom.query('scrape_samples_scraped{job="nginx-agent"}');
      assert.ok(Number(errors[0].value[1]) > 0);
    });

    test('nginx_http_requests_total is queryable', { skip: needNginxPlugins }, async () => {
      await waitFor(
        async () => (await prom.query('nginx_http_requests_total')).length > 0,
        'nginx_http_requests_total in Prometheus',
        30_000,
      );
      const r = await prom.query('nginx_http_requests_total');
      assert.ok(
        r.some((s) => Number(s.value[1]) >= 7),
        `a series counts our 7 requests: ${JSON.stringify(r)}`,
      );
    });

    test('a system_cpu_* series is queryable', { skip: needHost }, async () => {
      await waitFor(
        async () => (await prom.query('{__name__=~"system_cpu_.+"}')).length > 0,
        'system_cpu_* in Prometheus',
        30_000,
      );
    });
  });
});

describe('prometheus.exporter_compat against the real nginx-prometheus-exporter', {
  skip: needNginxPlugins || needTools || needNginxExporter(),
}, () => {
  test('every nginx_* family the exporter serves, the agent serves with the same TYPE', async () => {
    const exporter = await startNginxExporter(`${nginx.url()}/nginx_status`);
    const agent = await startAgent(['--api-port', '0'], { NGINX_AGENT_PROMETHEUS_EXPORTER_COMPAT: 'true' });
    try {
      const theirs = familyTypes(await (await fetch(`${exporter.url}/metrics`)).text());
      const nginxFamilies = [...theirs].filter(([n]) => n.startsWith('nginx_'));
      assert.deepEqual(nginxFamilies.map(([n]) => n).sort(), [
        'nginx_connections_accepted',
        'nginx_connections_active',
        'nginx_connections_handled',
        'nginx_connections_reading',
        'nginx_connections_waiting',
        'nginx_connections_writing',
        'nginx_http_requests_total',
        'nginx_up',
      ]);
      let ours = new Map<string, string>();
      let text = '';
      await waitFor(
        async () => {
          text = await metrics(agent);
          ours = familyTypes(text);
          return ours.has('nginx_connections_accepted');
        },
        'the agent to serve the exporter families',
        60_000,
      );
      for (const [name, type] of nginxFamilies)
        assert.equal(ours.get(name), type, `${name}: exporter TYPE ${type}, agent ${ours.get(name)}`);
      assert.match(text, /^nginx_up(\{[^}]*\})? 1$/m, 'nginx_up is 1 for a running nginx');
      // promtool flags the exporter's counters without _total, on the exporter and on us alike, and nothing else.
      const theirLint = promtoolCheck(await (await fetch(`${exporter.url}/metrics`)).text()).problems.filter((p) =>
        p.startsWith('nginx_'),
      );
      const ourLint = promtoolCheck(text).problems;
      assert.deepEqual(ourLint.sort(), theirLint.sort());
    } finally {
      await agent.stop();
      await exporter.stop();
    }
  });
});
