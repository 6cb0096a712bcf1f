/**
 * Pure parsers for the /proc files host-metrics reads. Each takes the file's text and returns plain
 * numbers; nothing here touches the file system, so every parser is tested on strings.
 *
 * Why /proc and not systeminformation: measured here, systeminformation's currentLoad, disksIO,
 * networkStats and fsSize start a child process (sh, lsblk, ip, df) on every call. The agent runs
 * forever, so every tick reads the kernel's files directly instead.
 */

/** CPU time per state in jiffies (USER_HZ), as the first `cpu` line of /proc/stat gives it. */
export interface CpuTimes {
  user: number;
  nice: number;
  system: number;
  idle: number;
  iowait: number;
  interrupt: number;
  softirq: number;
  steal: number;
}

export const CPU_STATES = ['user', 'nice', 'system', 'idle', 'iowait', 'interrupt', 'softirq', 'steal'] as const;

export interface ProcStat {
  /** Sum over all CPUs. guest/guest_nice are already inside user/nice, so they are not added. */
  total: CpuTimes;
  /** Number of `cpuN` lines: the online logical CPUs. */
  logicalCount: number;
}

/** Parses /proc/stat. Returns null when the aggregate `cpu` line is missing. */
export function parseProcStat(text: string): ProcStat | null {
  let total: CpuTimes | null = null;
  let logicalCount = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('cpu')) continue;
    if (line.startsWith('cpu ')) {
      const f = line.trim().split(/\s+/).slice(1).map(Number);
      total = {
        user: f[0] ?? 0,
        nice: f[1] ?? 0,
        system: f[2] ?? 0,
        idle: f[3] ?? 0,
        iowait: f[4] ?? 0,
        interrupt: f[5] ?? 0,
        softirq: f[6] ?? 0,
        steal: f[7] ?? 0,
      };
    } else if (/^cpu\d+\s/.test(line)) logicalCount++;
  }
  return total ? { total, logicalCount } : null;
}

/**
 * Share of each state between two samples (0..1, summing to 1). Null when no time passed or the
 * counters went backwards (a wrong rate is worse than none).
 */
export function cpuUtilization(prev: CpuTimes, cur: CpuTimes): Record<keyof CpuTimes, number> | null {
  let total = 0;
  for (const s of CPU_STATES) {
    const d = cur[s] - prev[s];
    if (d < 0) return null;
    total += d;
  }
  if (total <= 0) return null;
  const out = {} as Record<keyof CpuTimes, number>;
  for (const s of CPU_STATES) out[s] = (cur[s] - prev[s]) / total;
  return out;
}

/** /proc/meminfo as a map from key to bytes (`kB` values are multiplied by 1024). */
export function parseMeminfo(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([\w()]+):\s+(\d+)(?:\s+kB)?/.exec(line);
    if (!m) continue;
    const v = Number(m[2]);
    out.set(m[1]!, line.includes(' kB') ? v * 1024 : v);
  }
  return out;
}

export interface MemoryState {
  total: number;
  used: number;
  free: number;
  buffered: number;
  cached: number;
  available: number;
  swapTotal: number;
  swapFree: number;
}

/**
 * Memory states as OTel hostmetrics computes them: used = total - free - buffers - cached, where
 * cached includes reclaimable slab (SReclaimable), like `free(1)`. Null without MemTotal/MemFree.
 */
export function memoryState(info: Map<string, number>): MemoryState | null {
  const total = info.get('MemTotal');
  const free = info.get('MemFree');
  if (total === undefined || free === undefined) return null;
  const buffered = info.get('Buffers') ?? 0;
  const cached = (info.get('Cached') ?? 0) + (info.get('SReclaimable') ?? 0);
  const used = Math.max(0, total - free - buffered - cached);
  return {
    total,
    used,
    free,
    buffered,
    cached,
    available: info.get('MemAvailable') ?? free + buffered + cached,
    swapTotal: info.get('SwapTotal') ?? 0,
    swapFree: info.get('SwapFree') ?? 0,
  };
}

/** /proc/loadavg: `0.21 0.37 0.39 1/719 19737`. */
export function parseLoadavg(text: string): { m1: number; m5: number; m15: number } | null {
  const f = text.trim().split(/\s+/);
  const [m1, m5, m15] = f.slice(0, 3).map(Number);
  if (f.length < 3 || [m1, m5, m15].some((v) => v === undefined || !Number.isFinite(v))) return null;
  return { m1: m1!, m5: m5!, m15: m15! };
}

export interface Mount {
  device: string;
  mountpoint: string;
  type: string;
  options: string;
}

/** Undoes the kernel's octal escapes in /proc/mounts (`\040` is a space). */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** /proc/mounts (or /proc/self/mounts): one mount a line, escaped fields. */
export function parseMounts(text: string): Mount[] {
  const out: Mount[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 4) continue;
    out.push({ device: unescapeMount(f[0]!), mountpoint: unescapeMount(f[1]!), type: f[2]!, options: f[3]! });
  }
  return out;
}

export interface DiskStat {
  device: string;
  readOps: number;
  writeOps: number;
  readBytes: number;
  writeBytes: number;
  /** Seconds spent reading / writing (summed over requests, so it can exceed wall time). */
  readTime: number;
  writeTime: number;
}

/** /proc/diskstats. Sectors are always 512 bytes in this file, whatever the device's sector size. */
export function parseDiskstats(text: string): DiskStat[] {
  const out: DiskStat[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 14) continue;
    out.push({
      device: f[2]!,
      readOps: Number(f[3]),
      readBytes: Number(f[5]) * 512,
      readTime: Number(f[6]) / 1000,
      writeOps: Number(f[7]),
      writeBytes: Number(f[9]) * 512,
      writeTime: Number(f[10]) / 1000,
    });
  }
  return out;
}

export interface NetDev {
  device: string;
  rxBytes: number;
  rxPackets: number;
  rxErrors: number;
  rxDropped: number;
  txBytes: number;
  txPackets: number;
  txErrors: number;
  txDropped: number;
}

/** /proc/net/dev: two header lines, then `  eth0: rx(8 fields) tx(8 fields)`. */
export function parseNetDev(text: string): NetDev[] {
  const out: NetDev[] = [];
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const f = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    if (f.length < 16 || f.some((v) => !Number.isFinite(v))) continue;
    out.push({
      device: line.slice(0, colon).trim(),
      rxBytes: f[0]!,
      rxPackets: f[1]!,
      rxErrors: f[2]!,
      rxDropped: f[3]!,
      txBytes: f[8]!,
      txPackets: f[9]!,
      txErrors: f[10]!,
      txDropped: f[11]!,
    });
  }
  return out;
}

/** Kernel TCP states (include/net/tcp_states.h), named as OTel hostmetrics names them. */
export const TCP_STATES: Readonly<Record<number, string>> = {
  1: 'ESTABLISHED',
  2: 'SYN_SENT',
  3: 'SYN_RECV',
  4: 'FIN_WAIT_1',
  5: 'FIN_WAIT_2',
  6: 'TIME_WAIT',
  7: 'CLOSE',
  8: 'CLOSE_WAIT',
  9: 'LAST_ACK',
  10: 'LISTEN',
  11: 'CLOSING',
  12: 'NEW_SYN_RECV',
};

/**
 * Counts sockets per state in /proc/net/{tcp,tcp6,udp,udp6} text, adding into `into`. The state is
 * the 4th field (`st`, hex). For UDP the kernel uses 07 (CLOSE) for an unconnected socket and 01
 * (ESTABLISHED) for a connected one.
 */
export function parseNetTcp(text: string, into: Map<string, number> = new Map()): Map<string, number> {
  let start = text.indexOf('\n') + 1; // skip the header
  while (start > 0 && start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const f = text.slice(start, end).trim().split(/\s+/);
    if (f.length > 3) {
      const code = parseInt(f[3]!, 16);
      const state = TCP_STATES[code] ?? `UNKNOWN_${code}`;
      into.set(state, (into.get(state) ?? 0) + 1);
    }
    start = end + 1;
  }
  return into;
}

/** /proc/net/sockstat{,6}: `TCP: inuse 2 orphan 0 tw 3 alloc 4 mem 1` lines as `TCP.inuse` -> 2. */
export function parseSockstat(text: string, into: Map<string, number> = new Map()): Map<string, number> {
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const f = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/);
    for (let i = 0; i + 1 < f.length; i += 2) into.set(`${line.slice(0, colon)}.${f[i]}`, Number(f[i + 1]));
  }
  return into;
}
