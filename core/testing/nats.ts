/**
 * Test harness: a real nats-server (Debian package) with JetStream on 127.0.0.1, a free port and a
 * temporary store directory, stopped by PID. It can be killed and restarted on the same store and
 * port, and three of them can form a cluster on loopback.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from './nginx.js';

export const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN ?? 'nats-server';

export interface TestNatsOptions {
  /** Extra config text (authorization, accounts, ...) appended to the generated file. */
  extraConf?: string;
  /** Cluster: this node's name, its cluster port and the routes to the others. */
  cluster?: { name: string; port: number; routes: number[] };
  serverName?: string;
}

export class TestNats {
  #child: ChildProcess | undefined;
  #log = '';
  static readonly #running = new Set<TestNats>();
  static {
    process.once('exit', () => {
      for (const n of TestNats.#running) n.#child?.kill('SIGKILL');
    });
  }

  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly confPath: string,
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }
  get pid(): number {
    return this.#child?.pid ?? 0;
  }
  get log(): string {
    return this.#log;
  }

  static async start(opts: TestNatsOptions = {}): Promise<TestNats> {
    const dir = await mkdtemp(join(tmpdir(), 'agent-nats-'));
    const port = await freePort();
    const confPath = join(dir, 'nats-server.conf');
    const name = opts.serverName ?? `n${port}`;
    const cluster = opts.cluster
      ? `cluster {\n  name: ${opts.cluster.name}\n  listen: 127.0.0.1:${opts.cluster.port}\n  routes: [${opts.cluster.routes
          .map((p) => `nats-route://127.0.0.1:${p}`)
          .join(', ')}]\n}\n`
      : '';
    await writeFile(
      confPath,
      `server_name: ${name}\nlisten: 127.0.0.1:${port}\njetstream { store_dir: "${join(dir, 'js')}" }\n${cluster}${opts.extraConf ?? ''}\n`,
    );
    const n = new TestNats(dir, port, confPath);
    await n.restart();
    return n;
  }

  /** Starts the server (again) on the same config, port and store; waits until it accepts connections. */
  async restart(): Promise<void> {
    const child = spawn(NATS_SERVER_BIN, ['-c', this.confPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    TestNats.#running.add(this);
    child.stdout?.on('data', (d: Buffer) => (this.#log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.#log = (this.#log + d.toString()).slice(-200_000)));
    let exited = false;
    child.once('exit', () => (exited = true));
    await waitFor(
      async () => {
        if (exited) throw new Error(`nats-server exited at start:\n${this.#log.slice(-2000)}`);
        return /Server is ready/.test(this.#log) && (await canConnect(this.port));
      },
      `nats-server on port ${this.port}`,
      20_000,
    );
  }

  /** SIGKILL, as a crash; the store stays for restart(). */
  async kill(): Promise<void> {
    await this.#stop('SIGKILL');
  }

  async stop(): Promise<void> {
    await this.#stop('SIGTERM');
    TestNats.#running.delete(this);
    await rm(this.dir, { recursive: true, force: true });
  }

  async #stop(signal: NodeJS.Signals): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    process.kill(child.pid!, signal);
    await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
    this.#log = '';
  }
}

/** Three nodes with JetStream in one cluster on loopback. */
export async function startNatsCluster(extraConf = ''): Promise<TestNats[]> {
  const clusterPorts = [await freePort(), await freePort(), await freePort()];
  return Promise.all(
    clusterPorts.map((port, i) =>
      TestNats.start({
        serverName: `node${i + 1}`,
        extraConf,
        cluster: { name: 'fleet', port, routes: clusterPorts.filter((p) => p !== port) },
      }),
    ),
  );
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
