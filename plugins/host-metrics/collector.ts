/**
 * One collection cycle: reads /proc, /sys and the cgroup files through injected roots and turns
 * them into metrics. Never forks (see parsers.ts for why /proc and not systeminformation).
 * A file that cannot be read leaves its metrics out; `onMissing` is called once per file kind.
 */
import { readdirSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { counter, gauge, type Metric, type NumberPoint } from '../../core/metrics/model.js';
import { readCgroup } from './cgroup.js';
import { FileReader } from './read.js';
import {
  CPU_STATES,
  cpuUtilization,
  memoryState,
  parseDiskstats,
  parseLoadavg,
  parseMeminfo,
  parseMounts,
  parseNetDev,
  parseNetTcp,
  parseProcStat,
  parseSockstat,
  type CpuTimes,
} from './parsers.js';

/** What the code injects: roots and filters (already validated). */
export interface CollectorSettings {
  procRoot: string;
  sysRoot: string;
  cgroupRoot: string;
  /** File systems whose type is in this list are left out. */
  excludeFsTypes: readonly string[];
  /** Mount points equal to, or under, one of these are left out. */
  excludeMountpoints: readonly string[];
  excludeDisks: readonly RegExp[];
  excludeNetDevices: readonly RegExp[];
  /** Where the agent's own open fds are counted; default /proc/self/fd. */
  selfFdDir?: string;
  /** Text source of the agent's cgroup membership; default `<procRoot>/self/cgroup`. */
  selfCgroupFile?: string;
  /** Read /proc/net/{tcp,udp}{,6} for system.network.connections (default true). */
  connections?: boolean;
  /**
   * How long the counts of a socket table are reused before it is read again (default 0: every cycle).
   * With a period, the IPv4 and IPv6 tables are never read in the same cycle (but the first).
   */
  connectionsIntervalMs?: number;
  /** Include the agent's own process metrics (off for fixture tests). */
  self?: boolean;
  onMissing?: (what: string, err: unknown) => void;
}

const DIRS = ['read', 'write'] as const;
const LOOP_RESOLUTION_MS = 1000;

export class HostCollector {
  readonly #settings: CollectorSettings;
  #prevCpu: CpuTimes | undefined;
  readonly #missing = new Set<string>();
  readonly #start = Date.now();
  #loop: IntervalHistogram | undefined;
  readonly #files = new FileReader();
  /** Last counts per socket table (tcp, tcp6, udp, udp6) and when it was read. */
  readonly #tables = new Map<string, { at: number; counts: Map<string, number> | undefined }>();
  #connectionCycles = 0;

  constructor(settings: CollectorSettings) {
    this.#settings = settings;
    if (settings.self) {
      // One sample a second: the sampler is a libuv timer that wakes the process. Measured idle at a
      // 15 s interval: 20 ms resolution cost 0.33 % of a core, 1 s cost 0.14 % (no plugin: 0.05 %).
      // Over a 15 s interval the p99 of ~15 samples is close to their maximum.
      this.#loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
      this.#loop.enable();
    }
  }

  /** File kinds that could not be read so far (for status and tests). */
  get missing(): readonly string[] {
    return [...this.#missing];
  }

  close(): void {
    this.#loop?.disable();
  }

  #miss(what: string, err: unknown): void {
    if (this.#missing.has(what)) return;
    this.#missing.add(what);
    this.#settings.onMissing?.(what, err);
  }

  #read(what: string, path: string): string | undefined {
    try {
      return this.#files.read(path);
    } catch (err) {
      this.#miss(what, err);
      return undefined;
    }
  }

  async collect(): Promise<Metric[]> {
    // The parts read /proc synchronously, 6-8 ms together in a cold agent: in one piece they held up
    // whatever I/O came due meanwhile (at start-up, the answer to the first stub_status read, and so
    // nginx_up). So each part runs in a turn of the event loop of its own, I/O handled in between.
    // The file systems' statfs calls run in the thread pool meanwhile.
    const filesystems = this.#filesystems();
    // Awaited below, after the other parts: until then a failure must not count as unhandled.
    filesystems.catch(() => undefined);
    const parts: Metric[][] = [];
    for (const part of [
      () => this.#cpu(),
      () => this.#memory(),
      () => this.#disks(),
      () => this.#network(),
      () => this.#connections(),
      () => this.#cgroup(),
      () => (this.#settings.self ? this.#self() : []),
    ]) {
      await new Promise((resolve) => setImmediate(resolve));
      parts.push(await part());
    }
    // In the order the parts had before they took turns.
    parts.splice(2, 0, await filesystems);
    return parts.flat();
  }

  async #cpu(): Promise<Metric[]> {
    const out: Metric[] = [];
    const stat = this.#read('/proc/stat', join(this.#settings.procRoot, 'stat'));
    const load = this.#read('/proc/loadavg', join(this.#settings.procRoot, 'loadavg'));
    const s = stat === undefined ? null : parseProcStat(stat);
    if (s) {
      // Rates need two samples: the first cycle has no utilization rather than a wrong one.
      const u = this.#prevCpu ? cpuUtilization(this.#prevCpu, s.total) : null;
      this.#prevCpu = s.total;
      if (u) {
        out.push(
          gauge(
            {
              name: 'system.cpu.utilization',
              unit: '1',
              description: 'Share of CPU time per state since the previous cycle, over all CPUs.',
            },
            CPU_STATES.map((st) => ({ attributes: { state: st }, value: u[st] })),
          ),
        );
      }
      out.push(
        gauge({ name: 'system.cpu.logical.count', unit: '{cpu}', description: 'Online logical CPUs.' }, [
          { attributes: {}, value: s.logicalCount },
        ]),
      );
    }
    const l = load === undefined ? null : parseLoadavg(load);
    if (l) {
      for (const [k, v] of [
        ['1m', l.m1],
        ['5m', l.m5],
        ['15m', l.m15],
      ] as const) {
        out.push(
          gauge({ name: `system.cpu.load_average.${k}`, unit: '{thread}', description: `Load average over ${k}.` }, [
            { attributes: {}, value: v },
          ]),
        );
      }
    }
    return out;
  }

  async #memory(): Promise<Metric[]> {
    const text = this.#read('/proc/meminfo', join(this.#settings.procRoot, 'meminfo'));
    const m = text === undefined ? null : memoryState(parseMeminfo(text));
    if (!m) return [];
    // used + free + buffered + cached = total; `available` is the kernel's estimate and overlaps them.
    const states = { used: m.used, free: m.free, buffered: m.buffered, cached: m.cached, available: m.available };
    const out: Metric[] = [
      gauge(
        {
          name: 'system.memory.usage',
          unit: 'By',
          description: 'Memory per state (used+free+buffered+cached = limit; available overlaps them).',
        },
        Object.entries(states).map(([state, value]) => ({ attributes: { state }, value })),
      ),
      gauge(
        { name: 'system.memory.utilization', unit: '1', description: 'Memory per state as a share of the total.' },
        Object.entries(states).map(([state, value]) => ({
          attributes: { state },
          value: m.total > 0 ? value / m.total : 0,
        })),
      ),
      gauge({ name: 'system.memory.limit', unit: 'By', description: 'Total usable memory (MemTotal).' }, [
        { attributes: {}, value: m.total },
      ]),
    ];
    if (m.swapTotal > 0) {
      out.push(
        gauge({ name: 'system.paging.usage', unit: 'By', description: 'Swap space per state.' }, [
          { attributes: { state: 'used' }, value: m.swapTotal - m.swapFree },
          { attributes: { state: 'free' }, value: m.swapFree },
        ]),
      );
    } else this.#miss('swap', new Error('SwapTotal is 0 in /proc/meminfo: no swap configured'));
    return out;
  }

  #fsExcluded(type: string, mountpoint: string): boolean {
    if (this.#settings.excludeFsTypes.includes(type)) return true;
    return this.#settings.excludeMountpoints.some(
      (p) => mountpoint === p || mountpoint.startsWith(p.endsWith('/') ? p : `${p}/`),
    );
  }

  async #filesystems(): Promise<Metric[]> {
    const text = this.#read('/proc/mounts', join(this.#settings.procRoot, 'mounts'));
    if (text === undefined) return [];
    const usage: NumberPoint[] = [];
    const inodes: NumberPoint[] = [];
    const seen = new Set<string>();
    const mounts = parseMounts(text).filter((m) => !this.#fsExcluded(m.type, m.mountpoint));
    // statfs(2) is one system call per mount point; the thread pool runs them in parallel.
    const stats = await Promise.all(
      mounts.map(async (m) => {
        if (seen.has(m.mountpoint)) return null; // over-mounted: the top mount is listed last, statfs sees it anyway
        seen.add(m.mountpoint);
        try {
          return { m, st: await statfs(m.mountpoint) };
        } catch (err) {
          this.#miss(`statfs ${m.mountpoint}`, err);
          return null;
        }
      }),
    );
    for (const r of stats) {
      if (!r) continue;
      const { m, st } = r;
      if (st.blocks === 0) continue; // pseudo file system not in the exclude list
      const a = { device: m.device, mountpoint: m.mountpoint, type: m.type };
      usage.push(
        { attributes: { ...a, state: 'used' }, value: (st.blocks - st.bfree) * st.bsize },
        { attributes: { ...a, state: 'free' }, value: st.bavail * st.bsize },
        { attributes: { ...a, state: 'reserved' }, value: (st.bfree - st.bavail) * st.bsize },
      );
      if (st.files > 0) {
        inodes.push(
          { attributes: { ...a, state: 'used' }, value: st.files - st.ffree },
          { attributes: { ...a, state: 'free' }, value: st.ffree },
        );
      }
    }
    const out: Metric[] = [];
    if (usage.length)
      out.push(
        gauge({ name: 'system.filesystem.usage', unit: 'By', description: 'File system space per state.' }, usage),
      );
    if (inodes.length)
      out.push(
        gauge(
          { name: 'system.filesystem.inodes.usage', unit: '{inode}', description: 'File system inodes per state.' },
          inodes,
        ),
      );
    return out;
  }

  async #disks(): Promise<Metric[]> {
    const text = this.#read('/proc/diskstats', join(this.#settings.procRoot, 'diskstats'));
    if (text === undefined) return [];
    // Whole disks are the entries of /sys/block; partitions are left out so sums are not doubled.
    let whole: Set<string> | undefined;
    try {
      whole = new Set(readdirSync(join(this.#settings.sysRoot, 'block')));
    } catch (err) {
      this.#miss('/sys/block', err);
    }
    const disks = parseDiskstats(text).filter(
      (d) => (!whole || whole.has(d.device)) && !this.#settings.excludeDisks.some((r) => r.test(d.device)),
    );
    if (disks.length === 0) {
      this.#miss('block devices', new Error('no block device left after filtering /proc/diskstats'));
      return [];
    }
    const startTime = this.#start;
    const pts = (f: (d: (typeof disks)[number], dir: 'read' | 'write') => number): NumberPoint[] =>
      disks.flatMap((d) =>
        DIRS.map((direction) => ({ attributes: { device: d.device, direction }, value: f(d, direction), startTime })),
      );
    return [
      counter(
        { name: 'system.disk.io', unit: 'By', description: 'Bytes read and written.' },
        pts((d, r) => (r === 'read' ? d.readBytes : d.writeBytes)),
      ),
      counter(
        { name: 'system.disk.operations', unit: '{operation}', description: 'Read and write operations completed.' },
        pts((d, r) => (r === 'read' ? d.readOps : d.writeOps)),
      ),
      counter(
        {
          name: 'system.disk.operation_time',
          unit: 's',
          description: 'Time spent on reads and writes (summed over requests).',
        },
        pts((d, r) => (r === 'read' ? d.readTime : d.writeTime)),
      ),
    ];
  }

  async #network(): Promise<Metric[]> {
    const text = this.#read('/proc/net/dev', join(this.#settings.procRoot, 'net', 'dev'));
    if (text === undefined) return [];
    const devs = parseNetDev(text).filter((d) => !this.#settings.excludeNetDevices.some((r) => r.test(d.device)));
    const startTime = this.#start;
    const pts = (rx: (d: (typeof devs)[number]) => number, tx: (d: (typeof devs)[number]) => number): NumberPoint[] =>
      devs.flatMap((d) => [
        { attributes: { device: d.device, direction: 'receive' }, value: rx(d), startTime },
        { attributes: { device: d.device, direction: 'transmit' }, value: tx(d), startTime },
      ]);
    if (devs.length === 0) return [];
    return [
      counter(
        { name: 'system.network.io', unit: 'By', description: 'Bytes received and sent.' },
        pts(
          (d) => d.rxBytes,
          (d) => d.txBytes,
        ),
      ),
      counter(
        { name: 'system.network.packets', unit: '{packet}', description: 'Packets received and sent.' },
        pts(
          (d) => d.rxPackets,
          (d) => d.txPackets,
        ),
      ),
      counter(
        { name: 'system.network.errors', unit: '{error}', description: 'Receive and transmit errors.' },
        pts(
          (d) => d.rxErrors,
          (d) => d.txErrors,
        ),
      ),
      counter(
        { name: 'system.network.dropped', unit: '{packet}', description: 'Packets dropped on receive and transmit.' },
        pts(
          (d) => d.rxDropped,
          (d) => d.txDropped,
        ),
      ),
    ];
  }

  async #connections(): Promise<Metric[]> {
    if (this.#settings.connections === false) return [];
    // Reading /proc/net/tcp{,6} walks the kernel's whole socket hash (tcp6 2 ms of CPU a read here
    // whatever the socket count), so a family with no TCP socket (sockstat `inuse` 0 and no TIME_WAIT)
    // is skipped, and with connectionsIntervalMs each table is read once per period, IPv4 and IPv6 on
    // different cycles, its counts reused in between: no cycle pays for both families.
    let sock: Map<string, number> | undefined;
    try {
      sock = parseSockstat(this.#files.read(join(this.#settings.procRoot, 'net', 'sockstat')));
      parseSockstat(this.#files.read(join(this.#settings.procRoot, 'net', 'sockstat6')), sock);
    } catch {
      sock = undefined; // no sockstat (fixtures, old kernels): read every file
    }
    const now = Date.now();
    const period = this.#settings.connectionsIntervalMs ?? 0;
    const due = (f: string) => {
      const last = this.#tables.get(f);
      return !last || now - last.at >= period;
    };
    const families = [
      ['tcp', 'udp'],
      ['tcp6', 'udp6'],
    ];
    let toRead = families.filter((fs) => fs.some(due));
    if (period > 0 && this.#connectionCycles > 0 && toRead.length > 1) {
      // Both due: the one read longest ago now, the other next cycle.
      const age = (fs: string[]) => Math.min(...fs.map((f) => this.#tables.get(f)?.at ?? 0));
      toRead = [toRead.reduce((a, b) => (age(b) < age(a) ? b : a))];
    }
    this.#connectionCycles++;
    for (const f of toRead.flat()) {
      const skip =
        sock !== undefined &&
        f.startsWith('tcp') &&
        (sock.get(f === 'tcp' ? 'TCP.inuse' : 'TCP6.inuse') ?? 1) === 0 &&
        (sock.get('TCP.tw') ?? 1) === 0;
      const text = skip ? '' : this.#read(`/proc/net/${f}`, join(this.#settings.procRoot, 'net', f));
      this.#tables.set(f, { at: now, counts: text === undefined ? undefined : parseNetTcp(text) });
    }
    const points: NumberPoint[] = [];
    for (const protocol of ['tcp', 'udp'] as const) {
      const tables = [protocol, `${protocol}6`].map((f) => this.#tables.get(f)?.counts);
      if (tables.every((t) => t === undefined)) continue;
      const counts = new Map<string, number>();
      for (const t of tables) for (const [state, n] of t ?? []) counts.set(state, (counts.get(state) ?? 0) + n);
      for (const [state, value] of counts) points.push({ attributes: { protocol, state }, value });
    }
    return points.length
      ? [
          gauge(
            {
              name: 'system.network.connections',
              unit: '{connection}',
              description: 'Sockets per protocol and state (IPv4 and IPv6).',
            },
            points,
          ),
        ]
      : [];
  }

  async #cgroup(): Promise<Metric[]> {
    const self = this.#read(
      '/proc/self/cgroup',
      this.#settings.selfCgroupFile ?? join(this.#settings.procRoot, 'self', 'cgroup'),
    );
    if (self === undefined) return [];
    const c = readCgroup(this.#settings.cgroupRoot, self, this.#files);
    if (!c) {
      this.#miss('cgroup', new Error(`no readable cgroup files under ${this.#settings.cgroupRoot}`));
      return [];
    }
    const startTime = this.#start;
    const out: Metric[] = [];
    const one = (v: number | undefined, f: (p: NumberPoint[]) => Metric, isCounter = false): void => {
      if (v !== undefined && Number.isFinite(v))
        out.push(f([{ attributes: {}, value: v, ...(isCounter ? { startTime } : {}) }]));
    };
    one(
      c.cpuSeconds,
      (p) => counter({ name: 'container.cpu.time', unit: 's', description: "CPU time used by the agent's cgroup." }, p),
      true,
    );
    one(c.cpuLimit, (p) =>
      gauge(
        { name: 'container.cpu.limit', unit: '{cpu}', description: 'CPU quota / period (absent when unlimited).' },
        p,
      ),
    );
    one(
      c.periods,
      (p) =>
        counter(
          {
            name: 'container.cpu.throttling_data.periods',
            unit: '{period}',
            description: 'Enforcement periods elapsed.',
          },
          p,
        ),
      true,
    );
    one(
      c.throttledPeriods,
      (p) =>
        counter(
          {
            name: 'container.cpu.throttling_data.throttled_periods',
            unit: '{period}',
            description: 'Periods in which the cgroup was throttled.',
          },
          p,
        ),
      true,
    );
    one(
      c.throttledSeconds,
      (p) =>
        counter(
          {
            name: 'container.cpu.throttling_data.throttled_time',
            unit: 's',
            description: 'Time the cgroup was throttled.',
          },
          p,
        ),
      true,
    );
    one(c.memoryUsage, (p) =>
      gauge({ name: 'container.memory.usage', unit: 'By', description: "Memory charged to the agent's cgroup." }, p),
    );
    one(c.memoryLimit, (p) =>
      gauge(
        {
          name: 'container.memory.limit',
          unit: 'By',
          description: 'Memory limit of the cgroup (absent when unlimited).',
        },
        p,
      ),
    );
    one(
      c.oomKills,
      (p) =>
        counter(
          {
            name: 'container.memory.oom_events',
            unit: '{event}',
            description: 'Processes killed by the OOM killer in the cgroup.',
          },
          p,
        ),
      true,
    );
    return out;
  }

  async #self(): Promise<Metric[]> {
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    const startTime = Math.round(performance.timeOrigin);
    const out: Metric[] = [
      counter({ name: 'process.cpu.time', unit: 's', description: 'CPU time used by the agent.' }, [
        { attributes: { state: 'user' }, value: cpu.user / 1e6, startTime },
        { attributes: { state: 'system' }, value: cpu.system / 1e6, startTime },
      ]),
      gauge({ name: 'process.memory.usage', unit: 'By', description: 'Resident set size of the agent.' }, [
        { attributes: {}, value: mem.rss },
      ]),
      gauge({ name: 'process.runtime.nodejs.memory.heap.used', unit: 'By', description: 'V8 heap in use.' }, [
        { attributes: {}, value: mem.heapUsed },
      ]),
    ];
    // Node 20 records the whole time between two samples (resolution + delay), so the resolution is
    // taken off. The first sample arrives about two resolutions after enable().
    if (this.#loop && this.#loop.count > 0) {
      out.push(
        gauge(
          {
            name: 'nodejs.eventloop.delay.p99',
            unit: 's',
            description: 'Event-loop delay, 99th percentile since the previous cycle.',
          },
          [{ attributes: {}, value: Math.max(0, this.#loop.percentile(99) - LOOP_RESOLUTION_MS * 1e6) / 1e9 }],
        ),
      );
      this.#loop.reset();
    }
    try {
      const fds = readdirSync(this.#settings.selfFdDir ?? '/proc/self/fd');
      // readdir itself holds one fd open while listing; it is counted like any other.
      out.push(
        gauge(
          { name: 'process.open_file_descriptors', unit: '{file}', description: 'Open file descriptors of the agent.' },
          [{ attributes: {}, value: fds.length }],
        ),
      );
    } catch (err) {
      this.#miss('/proc/self/fd', err);
    }
    return out;
  }
}
