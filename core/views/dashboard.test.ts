/**
 * The dashboard in a real browser: Debian's Chromium, headless, driven by puppeteer-core, against the
 * agent (API token set) watching a real nginx with traffic. The page must load with no console error,
 * every chart must have points, and an event published during the test must reach the list within 5 s.
 * A screenshot goes to the test's output directory (and to docs/screenshots/ with UPDATE_SCREENSHOTS=1).
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'puppeteer-core';
import { type AgentProcess, REPO_ROOT, startAgent } from '../testing/agent-process.js';
import { type HeadlessChromium, launchChromium } from '../testing/chromium.js';
import { TestNginx, waitFor } from '../testing/nginx.js';
import { needTool } from '../testing/tools.js';
import type { Summary } from './summary-types.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = needTool(CHROMIUM, 'chromium') || needTool('nginx', 'nginx');
const TOKEN = 'dashboard-test-token';
const SCREENSHOT_DIR = join(tmpdir(), 'nginx-agent-screenshots');

describe('the dashboard in headless Chromium', { skip }, () => {
  let nginx: TestNginx;
  let agent: AgentProcess;
  let chromium: HeadlessChromium | undefined;
  let page: Page;
  let traffic: NodeJS.Timeout;
  const consoleErrors: string[] = [];
  const auth = { Authorization: `Bearer ${TOKEN}` };
  const summary = async () => (await (await fetch(`${agent.url}/v1/summary`, { headers: auth })).json()) as Summary;

  before(async () => {
    nginx = await TestNginx.start();
    traffic = setInterval(() => {
      void nginx.get('/ok', 4).catch(() => undefined);
      void nginx.get('/s/404', 1).catch(() => undefined);
      void nginx.get('/s/500', 1).catch(() => undefined);
    }, 150);
    agent = await startAgent(['--api-port', '0'], {
      NGINX_AGENT_API_TOKEN: TOKEN,
      NGINX_AGENT_NGINX_STATUS_INTERVAL: '1s',
      NGINX_AGENT_HOST_METRICS_INTERVAL: '1s',
    });
    await waitFor(
      async () => {
        const mine = (await summary()).nginx.find((i) => i.conf_path === nginx.confPath);
        return !!mine && mine.requests_per_second !== null && mine.request_time_p95_seconds !== null;
      },
      'the agent to show the test nginx with traffic',
      60_000,
    );
    chromium = await launchChromium(CHROMIUM, { width: 1400, height: 1100 });
    page = await chromium.browser.newPage();
    page.on('console', (msg) => {
      if (msg.type() === 'error') consoleErrors.push(`${msg.text()} ${JSON.stringify(msg.location())}`);
    });
    page.on('pageerror', (err) => consoleErrors.push(`page error: ${(err as Error).message}`));
  });
  after(async () => {
    clearInterval(traffic);
    await chromium?.close();
    await agent?.stop();
    await nginx?.stop();
  });

  test('loads with the token, with no console error, and every chart has points', async (t) => {
    const id = (await summary()).nginx.find((i) => i.conf_path === nginx.confPath)?.id ?? '';
    await page.goto(`${agent.url}/#token=${TOKEN}`, { waitUntil: 'load' });
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 30_000 });
    await page.select('#instance', id);
    const pointsPerChart = () =>
      page.$$eval('figure.chart', (figs) =>
        figs.map((f) => ({
          series: f.getAttribute('data-series'),
          points: Number(f.getAttribute('data-points') ?? 0),
        })),
      );
    let charts: { series: string | null; points: number }[] = [];
    await waitFor(
      async () => {
        charts = await pointsPerChart();
        return (
          charts.length === 8 && charts.every((c) => c.points > 0) && (await page.$$('figure.chart canvas')).length >= 8
        );
      },
      'every chart to have points',
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(charts)}`);
    });
    assert.equal(await page.$eval('#instance', (s) => (s as HTMLSelectElement).value), id);
    assert.match(await page.$eval('#config-line', (e) => e.textContent ?? ''), /nginx -t ok/);
    // config-lint flags the test config's proxy_pass without timeouts: shown with its file and line.
    await waitFor(
      async () =>
        (await page.$$eval('#findings tbody tr', (rows) => rows.map((r) => r.textContent ?? ''))).some(
          (text) => text.includes(`${nginx.confPath}:`) && text.includes('lint.nginx.config'),
        ),
      'a lint finding with file and line in the config view',
      30_000,
    );
    assert.ok((await page.$$('#plugins tbody tr')).length >= 3, 'plugin states listed');
    // The requested paths in the top URIs table, with their 5xx.
    await waitFor(
      async () => {
        const rows = await page.$$eval('#top-uris tbody tr', (trs) =>
          trs.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent ?? '')),
        );
        return rows.some((r) => r[0] === '/ok') && rows.some((r) => r[0] === '/s/500' && Number(r[3]) > 0);
      },
      'the top URIs table with /ok and /s/500',
      30_000,
    );
    assert.equal(
      await page.$eval('#login', (e) => (e as HTMLElement).hidden),
      true,
      'no token form: the token from #token= worked',
    );

    if (process.env.UPDATE_SCREENSHOTS) await new Promise((r) => setTimeout(r, 60_000)); // a minute of lines for the README
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    const shot = join(SCREENSHOT_DIR, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    if (process.env.UPDATE_SCREENSHOTS) copyFileSync(shot, join(REPO_ROOT, 'docs', 'screenshots', 'dashboard.png'));
    t.diagnostic(`screenshot written to ${shot}`);
    assert.deepEqual(consoleErrors, [], 'console errors');
  });

  test('an event published during the test reaches the list within 5 s', async (t) => {
    if (!(await summary()).events_available) {
      t.skip('this agent has no events pipeline yet (GET /v1/events)');
      return;
    }
    const before = (await (await fetch(`${agent.url}/v1/events?limit=1`, { headers: auth })).json()) as {
      events?: { id: number }[];
    };
    const lastId = before.events?.at(-1)?.id ?? 0;
    // A reload of nginx is an event (nginx.instance.reloaded).
    await nginx.reload();
    let eventId = 0;
    await waitFor(
      async () => {
        const r = (await (await fetch(`${agent.url}/v1/events?since=${lastId}`, { headers: auth })).json()) as {
          events?: { id: number; kind: string }[];
        };
        eventId = r.events?.find((e) => e.kind.startsWith('nginx.'))?.id ?? 0;
        return eventId > 0;
      },
      'the agent to record an nginx event after the reload',
      30_000,
    );
    const seen = Date.now();
    await page.waitForSelector(`#events li[data-id="${eventId}"]`, { timeout: 5000 });
    t.diagnostic(`event ${eventId} in the list ${Date.now() - seen} ms after the API had it`);
    assert.deepEqual(consoleErrors, [], 'console errors');
  });
});
