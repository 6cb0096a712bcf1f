/**
 * What the start-up and footprint benchmarks share: the agent and the three Debian daemons it
 * replaces (prometheus-node-exporter, prometheus-nginx-exporter, mtail) as child processes on free
 * ports against one nginx, and their CPU (/proc/PID/stat) and memory (/proc/PID/status).
 *
 * The benchmarks run in their own PID namespace (`unshare --pid --fork --mount-proc`, root only) when
 * they can, so the agent discovers the benchmark's nginx and not every nginx on a shared machine.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../core/testing/nginx.js';

export const REPO = join(import.meta.dirname, '..', '..');
export const AGENT_BIN = join(REPO, 'bin', 'agent.js');
export const NODE_EXPORTER = '/usr/bin/prometheus-node-exporter';
export const NGINX_EXPORTER = '/usr/bin/prometheus-nginx-exporter';
export const MTAIL = '/usr/bin/mtail';
const CLOCK_TICK_MS = 1000 / Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim() || 100);

/**
 * Re-runs this script in a PID namespace of its own unless it is in one, or cannot be (not root).
 * The parent waits for it and passes SIGINT/SIGTERM on (the namespace ends with its first process).
 */
export async function isolate(script: string): Promise<void> {
  if (process.env.AGENT_BENCH_ISOLATED || process.argv.includes('--shared-proc')) return;
  const probe = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true']);
  if (probe.status !== 0) {
    console.log('# not isolated (unshare --pid failed; not root?): the agent sees every nginx on this machine');
    return;
  }
  const child = spawn(
    'unshare',
    [
      '--pid',
      '--fork',
      '--kill-child',
      '--mount-proc',
      process.execPath,
      ...process.execArgv,
      script,
      ...process.argv.slice(2),
    ],
    { stdio: 'inherit', env: { ...process.env, AGENT_BENCH_ISOLATED: '1' } },
  );
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
  const code = await new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
  process.exit(code);
}

/** utime + stime of a process, in ms (clock-tick resolution). */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_MS;
}

/** VmRSS and VmHWM (peak) of a process, in MB. */
export function memoryMb(pid: number): { rss: number; peak: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

/** GET with node:http: status, body bytes as received (gzip when asked and given) and the body as text. */
export function get(
  url: string,
  opts: { gzip?: boolean; timeoutMs?: number } = {},
): Promise<{ status: number; bytes: number; encoding: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { headers: opts.gzip ? { 'accept-encoding': 'gzip' } : {}, timeout: opts.timeoutMs ?? 5000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const raw = Buffer.concat(chunks);
          const encoding = String(res.headers['content-encoding'] ?? 'identity');
          resolve({
            status: res.statusCode ?? 0,
            bytes: raw.length,
            encoding,
            text: encoding === 'identity' ? raw.toString() : '',
          });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer`)));
    req.on('error', reject);
    req.end();
  });
}

export interface Daemon {
  name: string;
  child: ChildProcess;
  pid: number;
  metricsUrl: string;
  /** Matches the daemon's `nginx_up 1` line, when it has one. */
  nginxUp?: RegExp;
  stop(): Promise<void>;
}

function launch(name: string, cmd: string, args: string[], metricsUrl: string, extra: Partial<Daemon> = {}, env = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.once('exit', (code, signal) => {
    if (!stopping && code !== 0) console.error(`# ${name} exited (${code ?? signal}): ${stderr.trim().slice(-600)}`);
  });
  let stopping = false;
  const daemon: Daemon = {
    name,
    child,
    pid: child.pid!,
    metricsUrl,
    ...extra,
    async stop() {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
  return daemon;
}

export interface AgentOptions {
  /** Wasm plugins from the checkout's wasm-plugins folder (the default config) or none. */
  wasm: boolean;
  /** Extra YAML appended to the config. */
  yaml?: string;
  /** Node flags: the agent then runs as `node <flags> bin/agent.js`, without its launcher. */
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
  /** Another build's bin/agent.js, to compare (default: this checkout's). */
  bin?: string;
  /**
   * Run as `node bin/agent.js`, which skips the launcher in the file's first lines (/bin/sh). By
   * default the file is executed, as npx, install.sh's wrapper and a shell run it.
   */
  viaNode?: boolean;
}

export async function startAgent(opts: AgentOptions, name = opts.wasm ? 'agent' : 'agent (no Wasm)'): Promise<Daemon> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'agent-bench-'));
  const file = join(dir, 'agent.yaml');
  writeFileSync(
    file,
    `api:\n  port: ${port}\nlog:\n  level: warn\n  format: json\nagent:\n  state_dir: ${dir}\n` +
      (opts.wasm ? '' : 'wasm:\n  enabled: false\n') +
      (opts.yaml ?? ''),
  );
  const bin = opts.bin ?? AGENT_BIN;
  const args = ['start', '--config', file];
  const viaNode = opts.viaNode || opts.nodeArgs !== undefined;
  const d = launch(
    name,
    viaNode ? process.execPath : bin,
    viaNode ? [...(opts.nodeArgs ?? []), bin, ...args] : args,
    `http://127.0.0.1:${port}/metrics`,
    { nginxUp: /^nginx_up\{[^}]*\} 1$/m },
    opts.env,
  );
  const stop = d.stop;
  d.stop = async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return d;
}

export async function startNodeExporter(): Promise<Daemon> {
  const port = await freePort();
  return launch(
    'node_exporter',
    NODE_EXPORTER,
    [`--web.listen-address=127.0.0.1:${port}`],
    `http://127.0.0.1:${port}/metrics`,
  );
}

export async function startNginxExporter(stubStatusUrl: string): Promise<Daemon> {
  const port = await freePort();
  return launch(
    'nginx exporter',
    NGINX_EXPORTER,
    ['-nginx.scrape-uri', stubStatusUrl, '-web.listen-address', `127.0.0.1:${port}`],
    `http://127.0.0.1:${port}/metrics`,
    { nginxUp: /^nginx_up 1$/m },
  );
}

/** mtail with one program that counts the lines of the access log (`access_lines_total`). */
export async function startMtail(accessLog: string): Promise<Daemon> {
  const port = await freePort();
  const progs = mkdtempSync(join(tmpdir(), 'mtail-progs-'));
  writeFileSync(join(progs, 'lines.mtail'), 'counter access_lines_total\n\n/$/ {\n  access_lines_total++\n}\n');
  const d = launch(
    'mtail',
    MTAIL,
    ['-progs', progs, '-logs', accessLog, '-address', '127.0.0.1', '-port', String(port), '-logtostderr'],
    `http://127.0.0.1:${port}/metrics`,
  );
  const stop = d.stop;
  d.stop = async () => {
    await stop();
    rmSync(progs, { recursive: true, force: true });
  };
  return d;
}

/** Polls `daemon.metricsUrl` every `everyMs` until `until(text)`; resolves with ms since `t0`, or NaN on timeout. */
export async function waitForMetrics(
  daemon: Daemon,
  t0: number,
  until: (status: number, text: string) => boolean,
  timeoutMs = 20_000,
  everyMs = 2,
): Promise<number> {
  const end = t0 + timeoutMs;
  while (performance.now() < end) {
    try {
      const r = await get(daemon.metricsUrl, { timeoutMs: 2000 });
      if (until(r.status, r.text)) return performance.now() - t0;
    } catch {
      /* not listening yet */
    }
    if (daemon.child.exitCode !== null) return Number.NaN;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return Number.NaN;
}

export function tools(): { missing: string[] } {
  return { missing: [NODE_EXPORTER, NGINX_EXPORTER, MTAIL, '/usr/sbin/nginx'].filter((p) => !existsSync(p)) };
}

export const median = (xs: number[]) => {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : Number.NaN;
};
export const range = (xs: number[], digits = 0) => {
  const s = xs.filter((x) => !Number.isNaN(x));
  return s.length ? `${Math.min(...s).toFixed(digits)}-${Math.max(...s).toFixed(digits)}` : 'n/a';
};
