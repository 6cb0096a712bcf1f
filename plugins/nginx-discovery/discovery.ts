/**
 * The discovery state machine: one `poll()` scans /proc, compares with what it knew, and returns the
 * bus events (added, removed, reloaded, health) and one metric batch per instance. It holds no timer
 * and publishes nothing itself, so tests drive it poll by poll over fixture trees.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { counter, gauge, type Metric, type MetricBatch } from '../../core/metrics/model.js';
import type { NginxHealth, NginxInstance, NginxInstanceEvent, NginxWorker } from '../../core/nginx/types.js';
import type { BinaryInfoCache, BinaryInfoResult } from './binary-info.js';
import {
  nginxInstanceId,
  parseMasterArgs,
  parseWorkerProcesses,
  resolveInstancePaths,
  workerProcessesFromGlobals,
  type ProcStat,
} from './parse.js';
import type { NginxMasterScan, ProcProcess, ProcReader, WorkerUsage } from './proc.js';

export type InstanceTopic =
  | 'nginx.instance.added'
  | 'nginx.instance.removed'
  | 'nginx.instance.reloaded'
  | 'nginx.instance.health';

export interface DiscoveryEvent {
  topic: InstanceTopic;
  data: NginxInstanceEvent;
}

export interface PollResult {
  events: DiscoveryEvent[];
  batches: MetricBatch[];
}

export interface DiscoverySettings {
  reader: ProcReader;
  binaries: BinaryInfoCache;
  /** Kernel clock ticks per second (USER_HZ), 100 on Linux for x86 and arm. */
  clockTicks?: number;
  /** How long workers of an older generation may run beside the new one before the instance is DEGRADED. */
  oldGenerationGraceMs: number;
  now?: () => number;
  /**
   * Config files to use, in order, for a master whose command line has no `-c` and whose binary
   * cannot be asked (`nginx -V` fails: a sidecar without CAP_SYS_PTRACE cannot run /proc/PID/exe).
   * The first that exists in the agent's own file system (a mounted volume) wins. Default:
   * {@link CONVENTIONAL_CONFS}.
   */
  confCandidates?: readonly string[];
  /** Whether a file exists here (injected by tests). */
  fileExists?: (path: string) => boolean;
}

/** Where nginx packages put the main config, with the prefix each is built with. */
export const CONVENTIONAL_CONFS: readonly { confPath: string; prefix: string }[] = [
  { confPath: '/etc/nginx/nginx.conf', prefix: '/etc/nginx' }, // nginx.org packages and the official image; Debian
  { confPath: '/usr/local/nginx/conf/nginx.conf', prefix: '/usr/local/nginx' }, // built from source
  { confPath: '/usr/local/etc/nginx/nginx.conf', prefix: '/usr/local/etc/nginx' }, // FreeBSD, Homebrew
];

export const SOURCE_PREFIX = 'nginx-discovery:';

interface CpuTotals {
  user: number;
  system: number;
}

interface Tracked {
  instance: NginxInstance;
  masterStartTicks: number;
  /** Workers (`pid:startTicks`) of the established generation, and how many it had when it began. */
  generation: Set<string>;
  genSize: number;
  /** Since when (ms) workers of an older generation have been seen. */
  oldSince?: number;
  /** From the instance's config (`nginx.config.changed`); -g wins. */
  configWorkers?: number;
  /** CPU seconds of workers that exited, and the last values of live workers. */
  cpuExited: CpuTotals;
  cpuLive: Map<string, CpuTotals>;
  firstSeen: number;
  upgradePeer?: number;
}

interface Identity {
  id: string;
  binary: string;
  prefix: string;
  confPath: string;
  globals?: string;
  info: BinaryInfoResult;
  /** What is not known about this instance and why, when `nginx -V` could not run (logged once). */
  degraded?: string;
}

const key = (pid: number, startTicks: number) => `${pid}:${startTicks}`;

export class NginxDiscovery {
  readonly #settings: DiscoverySettings;
  readonly #hz: number;
  readonly #now: () => number;
  readonly #tracked = new Map<string, Tracked>();
  /** Identity of a master process (`pid:startTicks`), so a known master is not resolved again. */
  readonly #identities = new Map<string, Identity>();
  /** Masters seen once without workers, announced at the next scan. */
  readonly #pending = new Set<string>();
  /** Processes in the last scan and the ones rejected (named nginx, not nginx). */
  lastScan = { processes: 0, rejected: 0 };

  constructor(settings: DiscoverySettings) {
    this.#settings = settings;
    this.#hz = settings.clockTicks ?? 100;
    this.#now = settings.now ?? Date.now;
  }

  /** Every instance known now (copies). */
  instances(): NginxInstance[] {
    return [...this.#tracked.values()].map((t) => structuredClone(t.instance));
  }

  /**
   * Every instance known now, not copied: for reading at once (the plugin's status and metrics, read
   * every few seconds, where a deep copy of each instance was most of their cost). Not to be kept
   * or changed: the next poll updates them.
   */
  instanceViews(): readonly Readonly<NginxInstance>[] {
    return [...this.#tracked.values()].map((t) => t.instance);
  }

  /** Workers the instance's config asks for (`worker_processes`), from `nginx.config.changed`. */
  setConfigWorkers(id: string, n: number | undefined): void {
    const t = this.#tracked.get(id);
    if (t) t.configWorkers = n;
  }

  async #identify(m: NginxMasterScan): Promise<Identity> {
    const k = key(m.master.stat.pid, m.master.stat.startTicks);
    const known = this.#identities.get(k);
    if (known) return known;
    const args = parseMasterArgs(m.master.argv);
    // Without a readable exe (another user's master) argv[0] names the binary; a bare `nginx` is
    // looked up in PATH so the id matches what a root agent computes from the exe link.
    const binary = m.exe ?? (isAbsolute(args.binary) ? args.binary : findInPath(args.binary || 'nginx'));
    const info = await this.#settings.binaries.get(binary, this.#settings.reader.exeLink(m.master.stat.pid), {
      replaced: m.exeDeleted === true,
    });
    let { prefix, confPath } = resolveInstancePaths(args, info, m.cwd ?? '/');
    let degraded: string | undefined;
    if (info.error) {
      // No -V: the compiled-in config path and prefix are unknown. Use the command line's -c/-p, else
      // a configured or conventional path that this agent can read (the sidecar's mounted volume).
      let how = args.conf ? `-c ${args.conf} from its command line` : '';
      if (!args.conf) {
        const found = this.#fallbackConf();
        if (found) {
          confPath = found.confPath;
          if (!args.prefix) prefix = found.prefix;
          how = `${found.confPath} (${found.how})`;
        } else
          how = `${confPath} (nginx's built-in default; none of ${this.#candidates().join(', ')} is readable here)`;
      }
      const why =
        m.exe === undefined
          ? ` (/proc/${m.master.stat.pid}/exe and /root cannot be opened by the agent's user without CAP_SYS_PTRACE, as in a sidecar sharing the PID namespace of nginx; its command line can)`
          : '';
      degraded =
        `cannot run ${binary} -V: ${info.error}${why}. ` +
        `Version, modules and the compiled-in paths are unknown; using config ${how}. ` +
        'The version is read from stub_status responses where possible; nginx -t and config apply need the binary.';
    }
    const id = nginxInstanceId(binary, confPath, prefix);
    const ident: Identity = {
      id,
      binary,
      prefix,
      confPath,
      ...(args.globals ? { globals: args.globals } : {}),
      info,
      ...(degraded ? { degraded } : {}),
    };
    this.#identities.set(k, ident);
    return ident;
  }

  #candidates(): string[] {
    return [...(this.#settings.confCandidates ?? CONVENTIONAL_CONFS.map((c) => c.confPath))];
  }

  #fallbackConf(): { confPath: string; prefix: string; how: string } | undefined {
    const exists = this.#settings.fileExists ?? fileExists;
    const configured = this.#settings.confCandidates !== undefined;
    for (const confPath of this.#candidates()) {
      if (!exists(confPath)) continue;
      const known = CONVENTIONAL_CONFS.find((c) => c.confPath === confPath);
      return {
        confPath,
        prefix: known?.prefix ?? dirname(confPath),
        how: configured ? 'nginx_discovery.conf_paths' : 'the conventional path, readable here',
      };
    }
    return undefined;
  }

  /** Why an instance's view is partial (nginx -V could not run), for the plugin to log once; undefined when complete. */
  degradedReason(instanceId: string): string | undefined {
    for (const ident of this.#identities.values()) if (ident.id === instanceId) return ident.degraded;
    return undefined;
  }

  async poll(): Promise<PollResult> {
    const now = this.#now();
    const scan = await this.#settings.reader.scan();
    this.lastScan = { processes: scan.processes, rejected: scan.rejected };
    const events: DiscoveryEvent[] = [];
    const batches: MetricBatch[] = [];

    // Group masters by instance id; two masters with one id is a binary upgrade (USR2) in progress.
    const byId = new Map<string, { scan: NginxMasterScan; ident: Identity }[]>();
    for (const m of scan.masters) {
      const ident = await this.#identify(m);
      const list = byId.get(ident.id) ?? [];
      list.push({ scan: m, ident });
      byId.set(ident.id, list);
    }
    const liveKeys = new Set(scan.masters.map((m) => key(m.master.stat.pid, m.master.stat.startTicks)));
    for (const k of this.#identities.keys()) if (!liveKeys.has(k)) this.#identities.delete(k);
    for (const k of this.#pending) if (!liveKeys.has(k)) this.#pending.delete(k);

    for (const [id, list] of byId) {
      const pids = new Set(list.map((x) => x.scan.master.stat.pid));
      // The original master is the one whose parent is not another master of the same instance.
      const chosen = list.find((x) => !pids.has(x.scan.master.stat.ppid)) ?? list[0];
      const peer = list.find((x) => x !== chosen)?.scan.master.stat.pid;
      let t = this.#tracked.get(id);
      if (
        t &&
        (t.instance.pid !== chosen.scan.master.stat.pid || t.masterStartTicks !== chosen.scan.master.stat.startTicks)
      ) {
        // Same nginx restarted between two polls: a new process, counters start again.
        events.push(...this.#remove(t, batches, now));
        t = undefined;
      }
      const workers = chosen.scan.children.filter(
        (c) => (c.role === 'worker' || c.role === 'worker-shutting-down') && c.stat.state !== 'Z',
      );
      const usage = await Promise.all(workers.map((w) => this.#settings.reader.usage(w.stat.pid)));
      const starting =
        !t && !workers.some((w) => w.role === 'worker') && !['Z', 'T', 't'].includes(chosen.scan.master.stat.state);
      const mk = key(chosen.scan.master.stat.pid, chosen.scan.master.stat.startTicks);
      if (starting && !this.#pending.has(mk)) {
        // A master seen before its first workers (nginx starting): announce it at the next scan.
        this.#pending.add(mk);
        continue;
      }
      this.#pending.delete(mk);
      if (!t) {
        t = this.#create(chosen.ident, chosen.scan.master.stat, now);
        this.#tracked.set(id, t);
        this.#update(t, chosen.scan.master.stat, workers, now, peer);
        events.push({ topic: 'nginx.instance.added', data: { instance: structuredClone(t.instance) } });
      } else {
        const before = t.instance.health;
        const reloaded = this.#update(t, chosen.scan.master.stat, workers, now, peer);
        if (reloaded)
          events.push({ topic: 'nginx.instance.reloaded', data: { instance: structuredClone(t.instance) } });
        if (t.instance.health !== before)
          events.push({
            topic: 'nginx.instance.health',
            data: { instance: structuredClone(t.instance), previousHealth: before },
          });
      }
      batches.push(this.#metrics(t, workers, usage, now));
    }

    for (const t of [...this.#tracked.values()]) {
      if (byId.has(t.instance.id)) continue;
      // Not in the scan: gone, or a zombie whose command line the kernel no longer shows.
      const st = await this.#settings.reader.stat(t.instance.pid);
      if (st && st.startTicks === t.masterStartTicks && st.state !== 'X') {
        const before = t.instance.health;
        this.#update(t, st, [], now, undefined);
        if (t.instance.health !== before)
          events.push({
            topic: 'nginx.instance.health',
            data: { instance: structuredClone(t.instance), previousHealth: before },
          });
        batches.push(this.#metrics(t, [], [], now));
      } else {
        events.push(...this.#remove(t, batches, now));
      }
    }
    return { events, batches };
  }

  #create(ident: Identity, master: ProcStat, now: number): Tracked {
    const info = ident.info;
    return {
      instance: {
        id: ident.id,
        pid: master.pid,
        binary: ident.binary,
        version: info.version,
        plus: info.plus,
        prefix: ident.prefix,
        confPath: ident.confPath,
        ...(ident.globals ? { globalDirectives: ident.globals } : {}),
        configureArgs: info.configureArgs,
        modules: info.modules,
        workers: [],
        health: 'HEALTHY',
      },
      masterStartTicks: master.startTicks,
      generation: new Set(),
      genSize: 0,
      cpuExited: { user: 0, system: 0 },
      cpuLive: new Map(),
      firstSeen: now,
    };
  }

  /** Updates workers and health; returns true when a new generation of workers replaced the previous one. */
  #update(t: Tracked, master: ProcStat, workers: ProcProcess[], now: number, upgradePeer: number | undefined): boolean {
    const current = workers.filter((w) => w.role === 'worker');
    const old = workers.filter((w) => w.role === 'worker-shutting-down');
    const reloaded = this.#generation(t, current);
    t.instance.workers = workers.map((w): NginxWorker => ({ pid: w.stat.pid, startTicks: w.stat.startTicks }));
    t.oldSince = old.length ? (t.oldSince ?? now) : undefined;
    t.upgradePeer = upgradePeer;

    const expected = parseWorkerProcesses(workerProcessesFromGlobals(t.instance.globalDirectives)) ?? t.configWorkers;
    const [health, reason] = this.#health(master, current.length, old.length, expected, t, now);
    t.instance.health = health;
    if (reason) t.instance.healthReason = reason;
    else delete t.instance.healthReason;
    return reloaded;
  }

  /**
   * Tracks the generation of workers by identity (`pid:startTicks`). A reload forks a whole new set
   * of workers: fresh workers at least as many as the established generation had, or fresh workers
   * running alone (the old ones exited or are shutting down). A crashed worker respawned by the
   * master is one fresh worker beside its peers: it joins the generation, no reload.
   */
  #generation(t: Tracked, current: ProcProcess[]): boolean {
    if (current.length === 0) return false;
    const keys = current.map((w) => key(w.stat.pid, w.stat.startTicks));
    if (t.generation.size === 0) {
      t.generation = new Set(keys);
      t.genSize = keys.length;
      return false;
    }
    const remaining = keys.filter((k) => t.generation.has(k));
    const fresh = keys.filter((k) => !t.generation.has(k));
    if (fresh.length > 0 && (remaining.length === 0 || fresh.length >= t.genSize)) {
      t.generation = new Set(fresh);
      t.genSize = fresh.length;
      return true;
    }
    t.generation = new Set(keys);
    return false;
  }

  #health(
    master: ProcStat,
    current: number,
    old: number,
    expected: number | undefined,
    t: Tracked,
    now: number,
  ): [NginxHealth, string?] {
    const pid = master.pid;
    if (master.state === 'Z')
      return ['UNHEALTHY', `master process ${pid} is a zombie: it exited and its parent has not reaped it`];
    if (master.state === 'T' || master.state === 't')
      return ['UNHEALTHY', `master process ${pid} is stopped (SIGSTOP or a debugger); it handles no signals`];
    if (current === 0) return ['UNHEALTHY', `master process ${pid} has no worker processes: nothing serves requests`];
    if (expected !== undefined && current < expected)
      return ['DEGRADED', `${current} of ${expected} worker processes running (worker_processes ${expected})`];
    if (t.oldSince !== undefined && now - t.oldSince >= this.#settings.oldGenerationGraceMs)
      return [
        'DEGRADED',
        `${old} worker process(es) of an older generation still running ${Math.round((now - t.oldSince) / 1000)} s after a reload (long-lived connections; worker_shutdown_timeout bounds this)`,
      ];
    if (t.upgradePeer !== undefined)
      return ['DEGRADED', `binary upgrade in progress: a second master process ${t.upgradePeer} runs beside ${pid}`];
    return ['HEALTHY'];
  }

  #remove(t: Tracked, batches: MetricBatch[], now: number): DiscoveryEvent[] {
    this.#tracked.delete(t.instance.id);
    batches.push({
      source: SOURCE_PREFIX + t.instance.id,
      time: now,
      resource: { 'nginx.instance.id': t.instance.id },
      metrics: [],
      final: true,
    });
    return [{ topic: 'nginx.instance.removed', data: { instance: structuredClone(t.instance) } }];
  }

  #metrics(t: Tracked, workers: ProcProcess[], usage: WorkerUsage[], now: number): MetricBatch {
    // CPU as one cumulative counter per instance: workers that exited keep their share, so a reload
    // does not look like a counter reset and per-PID series do not pile up at every reload.
    const live = new Map<string, CpuTotals>();
    for (const w of workers)
      live.set(key(w.stat.pid, w.stat.startTicks), {
        user: w.stat.utimeTicks / this.#hz,
        system: w.stat.stimeTicks / this.#hz,
      });
    for (const [k, v] of t.cpuLive) {
      if (!live.has(k)) {
        t.cpuExited.user += v.user;
        t.cpuExited.system += v.system;
      }
    }
    t.cpuLive = live;
    let user = t.cpuExited.user;
    let system = t.cpuExited.system;
    for (const v of live.values()) {
      user += v.user;
      system += v.system;
    }
    const rss = usage.reduce((a, u) => a + (u.rssBytes ?? 0), 0);
    const fds = usage.filter((u) => u.openFds !== null);
    const running = workers.filter((w) => w.role === 'worker').length;
    const start = t.firstSeen;
    const metrics: Metric[] = [
      counter(
        {
          name: 'nginx.worker.cpu.time',
          unit: 's',
          description:
            'CPU time used by the worker processes of the instance (workers that exited included), by cpu.mode.',
        },
        [
          { attributes: { 'cpu.mode': 'user' }, value: round(user), startTime: start },
          { attributes: { 'cpu.mode': 'system' }, value: round(system), startTime: start },
        ],
      ),
      gauge(
        {
          name: 'nginx.worker.memory.usage',
          unit: 'By',
          description: 'Resident memory (RSS) of all worker processes of the instance.',
        },
        [{ attributes: {}, value: rss }],
      ),
      gauge(
        {
          name: 'nginx.worker.count',
          unit: '{process}',
          description:
            'Worker processes of the instance, by state: running, or shutting_down (an older generation after a reload).',
        },
        [
          { attributes: { state: 'running' }, value: running },
          { attributes: { state: 'shutting_down' }, value: workers.length - running },
        ],
      ),
    ];
    if (fds.length > 0 || workers.length === 0)
      metrics.push(
        gauge(
          {
            name: 'nginx.worker.open_file_descriptors',
            unit: '{file_descriptor}',
            description: 'Open file descriptors of all worker processes of the instance.',
          },
          [{ attributes: {}, value: fds.reduce((a, u) => a + (u.openFds ?? 0), 0) }],
        ),
      );
    return {
      source: SOURCE_PREFIX + t.instance.id,
      time: now,
      resource: { 'nginx.instance.id': t.instance.id },
      metrics,
    };
  }
}

/** `name` resolved through PATH (and the usual sbin directories), or `name` itself when not found. */
export function findInPath(name: string, path = process.env.PATH ?? ''): string {
  if (name.includes('/')) return name;
  for (const dir of [...path.split(delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin']) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      /* next */
    }
  }
  return name;
}

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}

/** A file this process can read (a config mounted into the agent's container). */
function fileExists(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}
