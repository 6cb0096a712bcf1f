/**
 * `agent top` in a real terminal: tmux runs a shell on its own server socket, the test types the
 * command with send-keys and reads the screen with capture-pane. Two real nginx instances give the
 * instance switch something to switch to. Writes the captured screen to the test's output directory
 * (and to docs/screenshots/ with UPDATE_SCREENSHOTS=1).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type AgentProcess, REPO_ROOT, runAgent, startAgent } from '../../core/testing/agent-process.js';
import { TestNginx, waitFor } from '../../core/testing/nginx.js';
import { terminalScreenshot } from '../../core/testing/terminal-shot.js';
import { needTool } from '../../core/testing/tools.js';
import type { Summary } from '../../core/views/summary-types.js';
import { NO_TTY } from '../run/top.js';

const skip = needTool('tmux', 'tmux') || needTool('nginx', 'nginx');
const CHROMIUM = '/usr/bin/chromium';
const SOCKET = `agent-top-test-${process.pid}`;
export const SCREENSHOT_DIR = join(tmpdir(), 'nginx-agent-screenshots');

function tmux(...args: string[]): string {
  return execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8', timeout: 10_000 });
}
const screen = () => tmux('capture-pane', '-p', '-t', 'top');
const paneFlag = (flag: string) => tmux('display-message', '-p', '-t', 'top', `#{${flag}}`).trim();

describe('agent top under tmux', { skip }, () => {
  let nginxA: TestNginx;
  let nginxB: TestNginx;
  let agent: AgentProcess;
  let port: string;
  let traffic: NodeJS.Timeout;

  before(async () => {
    nginxA = await TestNginx.start();
    nginxB = await TestNginx.start();
    traffic = setInterval(() => {
      void nginxA.get('/ok?from=top-test', 3).catch(() => undefined);
      void nginxA.get('/s/404', 1).catch(() => undefined);
    }, 200);
    agent = await startAgent(['--api-port', '0'], {
      NGINX_AGENT_NGINX_STATUS_INTERVAL: '1s',
      NGINX_AGENT_HOST_METRICS_INTERVAL: '1s',
    });
    port = new URL(agent.url).port;
    await waitFor(
      async () => {
        const s = (await (await fetch(`${agent.url}/v1/summary`)).json()) as Summary;
        const mine = s.nginx.filter((i) => i.conf_path === nginxA.confPath || i.conf_path === nginxB.confPath);
        return mine.length === 2 && mine.some((i) => i.requests_per_second !== null && i.status_mix !== null);
      },
      'the agent to know both nginx instances, one with traffic',
      60_000,
    );
    tmux('new-session', '-d', '-s', 'top', '-x', '150', '-y', '40', 'env PS1="$ " bash --norc --noprofile');
  });
  after(async () => {
    clearInterval(traffic);
    try {
      tmux('kill-server');
    } catch {
      // already gone
    }
    await agent?.stop();
    await nginxA?.stop();
    await nginxB?.stop();
  });

  const startTop = () =>
    tmux(
      'send-keys',
      '-t',
      'top',
      `clear; echo BEFORE-TOP; NO_COLOR= node --import tsx ${join(REPO_ROOT, 'cmd', 'agent.ts')} top --api-port ${port}; echo TOP-EXIT=$?`,
      'Enter',
    );

  test('shows the instance, traffic, host and keys; → switches instance; q restores the terminal', async (t) => {
    startTop();
    await waitFor(
      () => /requests\/s/.test(screen()) && /^host /m.test(screen()) && paneFlag('alternate_on') === '1',
      'agent top to draw in the alternate screen',
      60_000,
    );
    assert.equal(paneFlag('cursor_flag'), '0', 'cursor hidden while top runs');
    const first = screen();
    assert.match(first, /instance 1\/\d+/);
    assert.match(first, /status mix/);
    assert.match(first, /q quit/);
    const line = (text: string) => /instance \d+\/\d+ {2}(\S+)/.exec(text)?.[1];
    const firstId = line(first);

    tmux('send-keys', '-t', 'top', 'Right');
    await waitFor(() => line(screen()) !== firstId, 'the next instance after →', 10_000);

    // Pick the busy test instance by its number (the list is sorted by config path).
    const s = (await (await fetch(`${agent.url}/v1/summary`)).json()) as Summary;
    const index = s.nginx.findIndex((i) => i.conf_path === nginxA.confPath);
    assert.ok(index >= 0 && index < 9, `test instance at ${index} of ${s.nginx.length}`);
    tmux('send-keys', '-t', 'top', String(index + 1));
    await waitFor(() => screen().includes(nginxA.confPath), 'the busy test instance on screen', 10_000);
    await waitFor(() => /2xx \d/.test(screen()) && /p95 \d/.test(screen()), 'traffic figures', 20_000);
    // The requested paths in the top URIs block: count, share and 5xx (the query string is not part of a path).
    await waitFor(
      () => /^top URIs +last \d+ s, \d+ requests/m.test(screen()) && /^ +\/ok +\d+ +[\d.]+% +5xx 0$/m.test(screen()),
      'the top URIs block with /ok',
      20_000,
    );
    assert.match(screen(), /^ +\/s\/404 +\d+ +[\d.]+% +5xx 0$/m);
    if (process.env.UPDATE_SCREENSHOTS)
      await waitFor(
        () => (/requests\/s +\S+ +(\S+)/.exec(screen())?.[1].length ?? 0) >= 40,
        'a longer sparkline for the README picture',
        120_000,
      );
    const shot = screen();
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    writeFileSync(join(SCREENSHOT_DIR, 'agent-top.txt'), shot);
    const docs = join(REPO_ROOT, 'docs', 'screenshots');
    if (process.env.UPDATE_SCREENSHOTS) writeFileSync(join(docs, 'agent-top.txt'), shot.replace(/\s+$/, '\n'));
    if (!needTool(CHROMIUM, 'chromium')) {
      const png = [join(SCREENSHOT_DIR, 'agent-top.png')];
      if (process.env.UPDATE_SCREENSHOTS) png.push(join(docs, 'agent-top.png'));
      await terminalScreenshot(tmux('capture-pane', '-e', '-p', '-t', 'top'), png, CHROMIUM);
    }
    t.diagnostic(`screen written to ${join(SCREENSHOT_DIR, 'agent-top.txt')} and .png`);

    tmux('send-keys', '-t', 'top', 'q');
    await waitFor(() => /TOP-EXIT=0/.test(screen()), 'agent top to exit 0 on q', 15_000);
    assert.equal(paneFlag('alternate_on'), '0', 'back to the normal screen');
    assert.equal(paneFlag('cursor_flag'), '1', 'cursor shown again');
    assert.match(screen(), /BEFORE-TOP/, 'the screen before top is back');
    tmux('send-keys', '-t', 'top', 'stty -a | tr " " "\\n" | grep -x -- "-\\?icanon"', 'Enter');
    await waitFor(() => /^icanon$/m.test(screen()), 'the terminal back in canonical mode (raw mode undone)', 10_000);
  });

  test('Ctrl-C quits and restores the terminal too', async () => {
    startTop();
    await waitFor(() => /requests\/s/.test(screen()) && paneFlag('alternate_on') === '1', 'agent top to draw', 60_000);
    tmux('send-keys', '-t', 'top', 'C-c');
    await waitFor(() => /TOP-EXIT=130/.test(screen()), 'agent top to exit on Ctrl-C', 15_000);
    assert.equal(paneFlag('alternate_on'), '0');
    assert.equal(paneFlag('cursor_flag'), '1');
  });

  test('agent status on a terminal is in colour, and NO_COLOR turns it off', async () => {
    const agentCmd = `node --import tsx ${join(REPO_ROOT, 'cmd', 'agent.ts')} status --api-port ${port}`;
    const ESC = String.fromCharCode(27);
    tmux('send-keys', '-t', 'top', `clear; NO_COLOR= ${agentCmd}; echo COLOUR-DONE`, 'Enter');
    await waitFor(() => /^COLOUR-DONE$/m.test(screen()), 'agent status to print', 30_000);
    assert.ok(tmux('capture-pane', '-e', '-p', '-t', 'top').includes(`${ESC}[1m`), 'bold/colour codes on a terminal');
    tmux('send-keys', '-t', 'top', `clear; NO_COLOR=1 ${agentCmd}; echo PLAIN-DONE`, 'Enter');
    await waitFor(() => /^PLAIN-DONE$/m.test(screen()), 'agent status to print', 30_000);
    const plain = tmux('capture-pane', '-e', '-p', '-t', 'top');
    assert.ok(/^host /m.test(plain));
    assert.ok(!plain.includes(`${ESC}[1m`) && !plain.includes(`${ESC}[32m`), 'no colour with NO_COLOR=1');
  });

  test('without a terminal it refuses with a clear message', async () => {
    const r = await runAgent(['top', '--api-port', port]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim(), `agent: ${NO_TTY}`);
  });
});
