/**
 * Test harness: a real Prometheus Alertmanager (Debian `prometheus-alertmanager`) on 127.0.0.1 and a
 * free port, with its own storage, no clustering, and one webhook receiver (a local HTTP server
 * the test reads) that is told about resolutions too. Stopped by PID.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from './nginx.js';
import { needTool } from './tools.js';

export const ALERTMANAGER_BIN = process.env.ALERTMANAGER_BIN ?? '/usr/bin/prometheus-alertmanager';

export function needAlertmanager(): false | string {
  return needTool(ALERTMANAGER_BIN, 'prometheus-alertmanager');
}

/** One alert as GET /api/v2/alerts shows it. */
export interface GettableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  status: { state: string };
}

/** One alert in a webhook notification. */
export interface WebhookAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface TestAlertmanager {
  url: string;
  /** Alerts the API lists now (Alertmanager leaves resolved ones out). */
  alerts(): Promise<GettableAlert[]>;
  /** Every alert of every webhook notification so far. */
  notified: WebhookAlert[];
  stop(): Promise<void>;
}

export async function startAlertmanager(): Promise<TestAlertmanager> {
  const dir = await mkdtemp(join(tmpdir(), 'agent-alertmanager-'));
  const notified: WebhookAlert[] = [];
  const hook: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      try {
        notified.push(...(JSON.parse(body) as { alerts: WebhookAlert[] }).alerts);
      } catch {
        // not JSON: nothing to record
      }
      res.end('ok');
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  const hookAddr = hook.address();
  const hookPort = typeof hookAddr === 'object' && hookAddr ? hookAddr.port : 0;
  await writeFile(
    join(dir, 'alertmanager.yml'),
    `route:
  receiver: hook
  group_by: ['alertname', 'key']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:${hookPort}/
        send_resolved: true
`,
  );
  const port = await freePort();
  const child: ChildProcess = spawn(
    ALERTMANAGER_BIN,
    [
      `--config.file=${join(dir, 'alertmanager.yml')}`,
      `--storage.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=',
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.pid) {
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(child.pid, 'SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
    }
    hook.close();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`alertmanager exited (${child.exitCode}): ${stderr}`);
        try {
          return (await fetch(`${url}/-/ready`)).ok;
        } catch {
          return false;
        }
      },
      'alertmanager ready',
      30_000,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    notified,
    alerts: async () => (await (await fetch(`${url}/api/v2/alerts`)).json()) as GettableAlert[],
    stop,
  };
}
