/**
 * examples/grafana/nginx-agent.json against real data: a real Prometheus scrapes the agent while a
 * real nginx serves traffic (2xx, 4xx, 5xx, and a proxy_pass to a closed port for the upstream
 * panels), and every panel's every PromQL expression, with the dashboard variables substituted,
 * must return data from Prometheus' query API. A panel with no data fails the test, by name.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type AgentProcess, REPO_ROOT, startAgent } from '../../core/testing/agent-process.js';
import { TestNginx, waitFor } from '../../core/testing/nginx.js';
import { needTool } from '../../core/testing/tools.js';
import type { Summary } from '../../core/views/summary-types.js';
import { PROMETHEUS, startPrometheus } from './tools.js';

const DASHBOARD = join(REPO_ROOT, 'examples', 'grafana', 'nginx-agent.json');
const skip = needTool(PROMETHEUS, 'prometheus') || needTool('nginx', 'nginx');

interface Panel {
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: { expr: string; refId: string }[];
}
interface Dashboard {
  templating: { list: { name: string; type: string; query: unknown }[] };
  panels: Panel[];
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const queryPanels = dashboard.panels.filter((p) => p.type !== 'row');

/** Grafana's substitution of the dashboard variables and the built-in interval ones. */
function substitute(expr: string, vars: Record<string, string>): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__interval', '15s')
    .replace(/\$\{?(\w+)\}?/g, (whole, name: string) => vars[name] ?? whole);
}

describe('examples/grafana/nginx-agent.json', () => {
  test('has a Prometheus datasource variable, an nginx_instance_id variable, and panels on it', () => {
    const vars = dashboard.templating.list;
    const ds = vars.find((v) => v.type === 'datasource');
    assert.equal(ds?.query, 'prometheus');
    assert.ok(vars.some((v) => v.name === 'nginx_instance_id' && v.type === 'query'));
    assert.ok(queryPanels.length >= 20);
    for (const p of queryPanels) {
      assert.equal(p.datasource?.uid, `\${${ds?.name}}`, `${p.title} uses the datasource variable`);
      assert.ok(p.targets?.length, `${p.title} has a query`);
    }
    const nginxPanels = queryPanels.filter((p) => p.targets?.some((t) => t.expr.includes('nginx_')));
    assert.ok(nginxPanels.every((p) => p.targets?.every((t) => !t.expr.includes('{') || t.expr.includes('$'))));
    assert.ok(
      nginxPanels.filter((p) => p.targets?.some((t) => t.expr.includes('$nginx_instance_id'))).length >= 10,
      'the nginx panels filter on $nginx_instance_id',
    );
  });

  describe('every panel returns data from a real Prometheus scraping the agent', { skip }, () => {
    let nginx: TestNginx;
    let agent: AgentProcess;
    let prom: Awaited<ReturnType<typeof startPrometheus>>;
    let traffic: NodeJS.Timeout;
    let vars: Record<string, string>;

    before(async () => {
      nginx = await TestNginx.start();
      traffic = setInterval(() => {
        for (const path of ['/ok', '/ok', '/ok', '/s/404', '/s/500', '/upstream-down'])
          void nginx.get(path).catch(() => undefined);
      }, 200);
      agent = await startAgent(['--api-port', '0'], {
        NGINX_AGENT_NGINX_STATUS_INTERVAL: '1s',
        NGINX_AGENT_HOST_METRICS_INTERVAL: '1s',
      });
      let id = '';
      await waitFor(
        async () => {
          const s = (await (await fetch(`${agent.url}/v1/summary`)).json()) as Summary;
          id = s.nginx.find((i) => i.conf_path === nginx.confPath)?.id ?? '';
          return id !== '';
        },
        'the agent to find the test nginx',
        60_000,
      );
      const target = new URL(agent.url).host;
      vars = { nginx_instance_id: id, instance: target.replaceAll('.', '\\\\.') };
      prom = await startPrometheus([target]);
    });
    after(async () => {
      clearInterval(traffic);
      await prom?.stop();
      await agent?.stop();
      await nginx?.stop();
    });

    test('each expression, variables substituted, has at least one series', async (t) => {
      const exprs = queryPanels.flatMap((p) =>
        (p.targets ?? []).map((target) => ({
          panel: p.title,
          ref: target.refId,
          expr: substitute(target.expr, vars),
        })),
      );
      for (const e of exprs) assert.doesNotMatch(e.expr, /\$/, `${e.panel}: a variable left in ${e.expr}`);
      const empty = new Set<string>();
      const results = new Map<string, number>();
      // rate() over 1m needs two scrapes with traffic in between: wait, with a generous deadline.
      await waitFor(
        async () => {
          empty.clear();
          for (const e of exprs) {
            if ((results.get(`${e.panel}/${e.ref}`) ?? 0) > 0) continue;
            const samples = await prom.query(e.expr);
            results.set(`${e.panel}/${e.ref}`, samples.length);
            if (samples.length === 0) empty.add(`${e.panel} (${e.ref}): ${e.expr}`);
          }
          return empty.size === 0;
        },
        'every panel to have data',
        120_000,
      ).catch(() => undefined);
      assert.deepEqual([...empty], [], 'panels with no data');
      t.diagnostic(`${exprs.length} expressions in ${queryPanels.length} panels, all with data`);
    });
  });
});
