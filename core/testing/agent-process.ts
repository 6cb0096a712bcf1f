/**
 * Test harness: the real `agent` CLI as a child process (through tsx, from source), with its JSON
 * log lines collected and the API address read from its "API listening" line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './nginx.js';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface AgentProcess {
  child: ChildProcess;
  /** Parsed JSON log lines so far. */
  logs: Record<string, unknown>[];
  stderr: () => string;
  /** Base URL of the API, e.g. http://127.0.0.1:40123 */
  url: string;
  exited: Promise<number | null>;
  waitForLog(
    pred: (l: Record<string, unknown>) => boolean,
    what: string,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Runs `agent <args>` to completion and returns its exit code and output. */
export function runAgent(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'cmd', 'agent.ts'), ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Starts `agent start <args>` (add `--api-port 0` for a free port) and waits until its API answers. */
export async function startAgent(args: string[], env: NodeJS.ProcessEnv = {}): Promise<AgentProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'cmd', 'agent.ts'), 'start', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, NGINX_AGENT_LOG_FORMAT: 'json', ...env },
  });
  const logs: Record<string, unknown>[] = [];
  let err = '';
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        logs.push(JSON.parse(line));
      } catch {
        logs.push({ msg: line });
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  let exitCode: number | null | undefined;
  void exited.then((c) => (exitCode = c));
  process.once('exit', () => child.kill('SIGKILL'));

  const waitForLog = async (pred: (l: Record<string, unknown>) => boolean, what: string, timeoutMs = 15_000) => {
    await waitFor(() => logs.some(pred) || exitCode !== undefined, what, timeoutMs);
    const found = logs.find(pred);
    if (!found)
      throw new Error(
        `agent exited (${exitCode}) before ${what}; stderr: ${err}; logs: ${JSON.stringify(logs.slice(-5))}`,
      );
    return found;
  };
  const listening = await waitForLog((l) => typeof l.api === 'string', 'the API to listen', 30_000);
  const url = String(listening.api);
  // The API answers at once; /health says `starting` until every plugin's first collection.
  await waitFor(
    async () => exitCode !== undefined || (await healthStatus(url)) !== 'starting',
    'the agent to finish starting (/health not "starting")',
    30_000,
  );
  return {
    child,
    logs,
    stderr: () => err,
    url,
    exited,
    waitForLog,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (exitCode !== undefined) return exitCode;
      child.kill(signal);
      return exited;
    },
  };
}

async function healthStatus(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(`${url}/health`);
    return ((await res.json()) as { status?: string }).status;
  } catch {
    return undefined;
  }
}
