/**
 * `host-metrics`: CPU, memory, load, file systems, disks, network, the agent's cgroup and the agent
 * process itself, published as one `metrics` batch (source `host-metrics`) every interval, the first
 * right away. See README.md.
 */
import { readFile } from 'node:fs/promises';
import { arch, cpus, platform } from 'node:os';
import { bool, duration, list, object, string, type Infer } from '../../core/config/schema.js';
import { gauge } from '../../core/metrics/model.js';
import { defineBuiltin } from '../../core/plugin/builtin.js';
import type { Plugin, PluginContext, PluginStatus } from '../../core/plugin/types.js';
import type { ScheduledJob } from '../../core/scheduler.js';
import { HostCollector } from './collector.js';

/** Pseudo and virtual file systems with no disk space to report (node_exporter and OTel keep similar lists). */
export const DEFAULT_EXCLUDE_FS_TYPES = [
  'autofs',
  'binfmt_misc',
  'bpf',
  'cgroup',
  'cgroup2',
  'configfs',
  'debugfs',
  'devpts',
  'devtmpfs',
  'fusectl',
  'hugetlbfs',
  'mqueue',
  'nsfs',
  'proc',
  'procfs',
  'pstore',
  'ramfs',
  'rpc_pipefs',
  'securityfs',
  'selinuxfs',
  'squashfs',
  'sysfs',
  'tracefs',
];
export const DEFAULT_EXCLUDE_MOUNTPOINTS = [
  '/proc',
  '/sys',
  '/dev',
  '/run/credentials',
  '/run/user',
  '/var/lib/docker',
  '/var/lib/containers/storage',
  '/snap',
];

export const schema = object(
  {
    enabled: bool({ default: true, description: 'Collect host, container and agent-process metrics.' }),
    interval: duration({
      default: '15s',
      min: '1s',
      max: '1h',
      description: 'How often a batch is collected and published.',
    }),
    proc_root: string({
      default: '/proc',
      description: 'Where procfs is mounted (e.g. /host/proc for a host view from a container).',
    }),
    sys_root: string({
      default: '/sys',
      description: 'Where sysfs is mounted (whole disks are the entries of <sys_root>/block).',
    }),
    cgroup_root: string({
      default: '/sys/fs/cgroup',
      description: "Where the cgroup file system is mounted (the agent's own cgroup is read).",
    }),
    connections: bool({
      default: true,
      description:
        'Count sockets per protocol and state (system.network.connections) from /proc/net/{tcp,udp}{,6}, every connections_interval.',
    }),
    connections_interval: duration({
      default: '1m',
      min: '1s',
      max: '1h',
      description:
        'How often each socket table is recounted for system.network.connections; its counts are repeated in between. Reading /proc/net/tcp6 walks the whole socket hash (~2 ms of CPU), so the IPv4 and IPv6 tables are read on different cycles.',
    }),
    exclude_fs_types: list(string(), {
      default: DEFAULT_EXCLUDE_FS_TYPES,
      description: 'File system types left out of system.filesystem.*.',
    }),
    exclude_mountpoints: list(string(), {
      default: DEFAULT_EXCLUDE_MOUNTPOINTS,
      description: 'Mount points left out of system.filesystem.*, with everything under them.',
    }),
    exclude_disks: list(string(), {
      default: ['^(z?ram|loop|fd)\\d+$'],
      description: 'Regular expressions: block devices left out of system.disk.*.',
    }),
    exclude_network_devices: list(string(), {
      default: [],
      description:
        "Regular expressions: interfaces left out of system.network.* (lo is kept: nginx's local upstream traffic goes over it).",
    }),
  },
  {
    description:
      'Host metrics: CPU, memory, load, file systems, disks, network, container limits, and the agent process.',
  },
);

export type HostMetricsConfig = Infer<typeof schema>;

function regexps(key: string, patterns: readonly string[]): RegExp[] {
  return patterns.map((p, i) => {
    try {
      return new RegExp(p);
    } catch (err) {
      throw new Error(
        `host_metrics.${key}[${i}]: ${JSON.stringify(p)} is not a valid regular expression (${(err as Error).message}); fix or remove it`,
        { cause: err },
      );
    }
  });
}

/**
 * Host inventory, read once at start from os-release(5) and <proc_root>/cpuinfo. Not systeminformation:
 * its osInfo() and cpu() start about ten child processes and cost ~100 ms of CPU before the first batch.
 */
async function inventory(procRoot: string): Promise<Record<string, string>> {
  const [osRelease, cpuinfo] = await Promise.all([
    readFile('/etc/os-release', 'utf8').catch(() => readFile('/usr/lib/os-release', 'utf8').catch(() => '')),
    readFile(`${procRoot}/cpuinfo`, 'utf8').catch(() => ''),
  ]);
  const field = (text: string, re: RegExp) =>
    re
      .exec(text)?.[1]
      ?.trim()
      .replace(/^"(.*)"$/, '$1') ?? '';
  const description = `${field(osRelease, /^NAME=(.*)$/m)} ${field(osRelease, /^VERSION_ID=(.*)$/m)}`.trim();
  const cpuModel = field(cpuinfo, /^model name\s*:(.*)$/m) || cpus()[0]?.model || '';
  return {
    'os.type': platform(),
    ...(description ? { 'os.description': description } : {}),
    'host.arch': arch(),
    ...(cpuModel ? { 'host.cpu.model.name': cpuModel } : {}),
  };
}

export class HostMetricsPlugin implements Plugin<HostMetricsConfig> {
  readonly name = 'host-metrics';
  #ctx!: PluginContext<HostMetricsConfig>;
  /** Declared on each batch so the store drops the series if collection stops (core/metrics/store.ts). */
  #interval = 0;
  #collector: HostCollector | undefined;
  #job: ScheduledJob | undefined;
  #running: Promise<void> | undefined;
  #resource: Record<string, string> | undefined;
  #cycles = 0;
  #lastError: string | undefined;
  readonly #inventory: (procRoot: string) => Promise<Record<string, string>>;

  /** `inv` replaces the systeminformation inventory (tests). */
  constructor(inv: (procRoot: string) => Promise<Record<string, string>> = inventory) {
    this.#inventory = inv;
  }

  subscriptions(): readonly string[] {
    return [];
  }

  init(ctx: PluginContext<HostMetricsConfig>): void {
    this.#ctx = ctx;
    this.#start(ctx.config, true);
  }

  #start(c: HostMetricsConfig, first: boolean): void {
    this.#interval = c.interval;
    this.#collector?.close();
    this.#collector = new HostCollector({
      procRoot: c.proc_root,
      sysRoot: c.sys_root,
      cgroupRoot: c.cgroup_root,
      excludeFsTypes: c.exclude_fs_types,
      excludeMountpoints: c.exclude_mountpoints,
      excludeDisks: regexps('exclude_disks', c.exclude_disks),
      excludeNetDevices: regexps('exclude_network_devices', c.exclude_network_devices),
      connections: c.connections,
      connectionsIntervalMs: c.connections_interval,
      self: true,
      onMissing: (what, err) =>
        this.#ctx.logger.debug(
          { what, err: (err as Error)?.message },
          'host-metrics: left out (not readable); not logged again',
        ),
    });
    const run = async (): Promise<void> => {
      if (first && !this.#resource) {
        try {
          this.#resource = await this.#inventory(c.proc_root);
          this.#ctx.logger.info(this.#resource, 'host inventory');
        } catch (err) {
          this.#resource = {};
          this.#ctx.logger.debug({ err: (err as Error).message }, 'host inventory unavailable');
        }
      }
      await this.#cycle();
    };
    this.#running = run();
    this.#job?.cancel();
    this.#job = this.#ctx.scheduler.every('host-metrics', c.interval, () => {
      if (this.#ctx.signal.aborted) return;
      this.#running = (this.#running ?? Promise.resolve()).then(() => this.#cycle());
      return this.#running;
    });
  }

  async #cycle(): Promise<void> {
    const collector = this.#collector;
    if (!collector || this.#ctx.signal.aborted) return;
    try {
      const metrics = await collector.collect();
      this.#cycles++;
      this.#lastError = undefined;
      // Inventory as one info series (like node_exporter's node_os_info), not as resource attributes
      // that would be copied onto every series.
      if (this.#resource && Object.keys(this.#resource).length) {
        metrics.push(
          gauge(
            {
              name: 'system.info',
              unit: '{info}',
              description: 'Always 1; the attributes describe the host (read once at start).',
            },
            [{ attributes: this.#resource, value: 1 }],
          ),
        );
      }
      this.#ctx.bus.publish('metrics', { source: 'host-metrics', time: Date.now(), metrics, interval: this.#interval });
    } catch (err) {
      // Every file read is guarded in the collector; this is a bug, logged once per distinct message.
      const msg = (err as Error).message;
      if (msg !== this.#lastError) this.#ctx.logger.warn({ err: msg }, 'host-metrics cycle failed');
      this.#lastError = msg;
    }
  }

  reconfigure(config: HostMetricsConfig): void {
    this.#start(config, false);
  }

  status(): PluginStatus {
    return {
      // `starting` until the first batch: /health says the agent is starting until then.
      state: this.#lastError ? 'degraded' : this.#cycles === 0 ? 'starting' : 'running',
      ...(this.#lastError ? { reason: this.#lastError } : {}),
      details: { cycles: this.#cycles, left_out: this.#collector?.missing ?? [] },
    };
  }

  async close(): Promise<void> {
    this.#job?.cancel();
    this.#collector?.close();
    await this.#running;
  }
}

export const plugin = defineBuiltin({
  name: 'host-metrics',
  description: 'Host CPU, memory, load, file systems, disks, network, container limits and the agent process.',
  schema,
  create: () => new HostMetricsPlugin(),
});
