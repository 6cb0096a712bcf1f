/**
 * Test harness: a real nginx (Debian package) under a temporary prefix, on 127.0.0.1 and a free port,
 * started as a daemon and stopped by the PID in its pid file. Used by every test that needs nginx.
 */
import { get as httpGet } from 'node:http';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { needTool } from './tools.js';

const exec = promisify(execFile);
export const NGINX_BIN = process.env.NGINX_BIN ?? '/usr/sbin/nginx';

/** `skip` option of a test that starts nginx: false when the nginx binary is there (see core/testing/tools.ts). */
export function needNginx(): false | string {
  return needTool(NGINX_BIN, 'nginx');
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface NginxConfParts {
  port: number;
  prefix: string;
}

export interface TestNginxOptions {
  /** Extra directives inside `http {}`. `{{PORT}}` and `{{PREFIX}}` are replaced. */
  httpExtra?: string;
  /** Extra directives inside the default `server {}`. */
  serverExtra?: string;
  /** Replaces the whole default config. */
  conf?: (p: NginxConfParts) => string;
  workers?: number;
}

/** The `log_format` of the default config: combined plus `$request_time` and upstream times. */
export const TIMED_FORMAT =
  '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time $upstream_connect_time $upstream_header_time $upstream_response_time';

export function defaultConf({ port }: NginxConfParts, opts: TestNginxOptions = {}): string {
  const statusLocations = [200, 201, 204, 301, 302, 400, 403, 404, 418, 500, 502, 503]
    .map((c) => `        location = /s/${c} { return ${c}${c >= 300 && c < 400 ? ' /ok' : ''}; }`)
    .join('\n');
  return `worker_processes ${opts.workers ?? 1};
pid logs/nginx.pid;
error_log logs/error.log notice;
events { worker_connections 128; }
http {
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    log_format timed '${TIMED_FORMAT}';
    access_log logs/access.log timed;
    ${opts.httpExtra ?? ''}
    server {
        listen 127.0.0.1:${port};
        server_name localhost;
        location = /nginx_status { stub_status; access_log off; }
        location = /ok { return 200 "ok\\n"; }
        location = /upstream-down { proxy_pass http://127.0.0.1:1; }
${statusLocations}
        ${opts.serverExtra ?? ''}
    }
}
`;
}

export class TestNginx {
  private constructor(
    readonly prefix: string,
    readonly port: number,
  ) {}

  get confPath(): string {
    return join(this.prefix, 'conf', 'nginx.conf');
  }
  get accessLog(): string {
    return join(this.prefix, 'logs', 'access.log');
  }
  get errorLog(): string {
    return join(this.prefix, 'logs', 'error.log');
  }
  get pidFile(): string {
    return join(this.prefix, 'logs', 'nginx.pid');
  }
  url(path = '/'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** Writes the config, checks it with `nginx -t` and starts nginx; throws with nginx's output on failure. */
  static async start(opts: TestNginxOptions = {}): Promise<TestNginx> {
    const prefix = await mkdtemp(join(tmpdir(), 'agent-nginx-'));
    // mkdtemp makes the prefix 0700: workers (user nobody) could not reopen logs after a rotation.
    await chmod(prefix, 0o755);
    for (const d of ['conf', 'logs', 'tmp', 'html']) await mkdir(join(prefix, d), { recursive: true });
    const port = await freePort();
    const parts = { port, prefix };
    const text = (opts.conf ? opts.conf(parts) : defaultConf(parts, opts))
      .replaceAll('{{PORT}}', String(port))
      .replaceAll('{{PREFIX}}', prefix);
    const n = new TestNginx(prefix, port);
    await writeFile(n.confPath, text);
    await n.nginx(['-t', '-q']);
    await n.nginx([]);
    await n.waitFor(async () => (await n.masterPid()) > 0 && (await n.workerPids()).length > 0, 'nginx to start');
    TestNginx.#running.add(n);
    return n;
  }

  static #running = new Set<TestNginx>();
  static {
    process.once('exit', () => {
      for (const n of TestNginx.#running) {
        try {
          process.kill(n.#pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    });
  }
  #pid = 0;

  /** Runs the nginx binary with this instance's prefix and config. */
  async nginx(args: string[]): Promise<{ stdout: string; stderr: string }> {
    try {
      return await exec(NGINX_BIN, ['-p', `${this.prefix}/`, '-c', 'conf/nginx.conf', ...args]);
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new Error(`nginx ${args.join(' ')} failed in ${this.prefix}: ${err.stderr || err.message}`);
    }
  }

  async masterPid(): Promise<number> {
    try {
      this.#pid = Number((await readFile(this.pidFile, 'utf8')).trim());
      return this.#pid;
    } catch {
      return 0;
    }
  }

  /** Worker PIDs from /proc/<master>/task/<master>/children. */
  async workerPids(): Promise<number[]> {
    const pid = await this.masterPid();
    if (!pid) return [];
    try {
      const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8');
      return text.split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  async writeConf(text: string): Promise<void> {
    await writeFile(
      this.confPath,
      text.replaceAll('{{PORT}}', String(this.port)).replaceAll('{{PREFIX}}', this.prefix),
    );
  }

  /** Sends HUP and waits until a new generation of workers runs. */
  async reload(): Promise<void> {
    const before = new Set(await this.workerPids());
    process.kill(await this.masterPid(), 'SIGHUP');
    await this.waitFor(async () => {
      const now = await this.workerPids();
      return now.length > 0 && now.every((p) => !before.has(p));
    }, 'a new worker generation after reload');
  }

  /** `nginx -s reopen` (what logrotate's postrotate does). */
  async reopen(): Promise<void> {
    await this.nginx(['-s', 'reopen']);
  }

  /** GETs `path` `count` times, sequentially, and returns the statuses. */
  async get(path: string, count = 1): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const r = await fetch(this.url(path), { redirect: 'manual' });
      await r.arrayBuffer();
      out.push(r.status);
    }
    return out;
  }

  async stop(): Promise<void> {
    const pid = await this.masterPid();
    if (pid) {
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {
        /* gone */
      }
      await this.waitFor(async () => !processAlive(pid), `nginx master ${pid} to exit`).catch(() => {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      });
    }
    TestNginx.#running.delete(this);
    await rm(this.prefix, { recursive: true, force: true });
  }

  async waitFor(cond: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (await cond()) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }
}

/** Whether a process with this pid exists (signal 0). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls `cond` every 25 ms until true; throws naming `what` after `timeoutMs`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/**
 * GET on a connection of its own, closed after the answer. fetch() reuses idle keep-alive sockets,
 * and right after an nginx reload the old worker closes those, so a fetch then fails with "other
 * side closed" although nginx serves fine.
 */
export function getFresh(url: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { agent: false, headers: { connection: 'close' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}
