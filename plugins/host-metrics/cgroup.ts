/**
 * Container limits and usage from the agent's own cgroup (v1 or v2), read from the cgroup files so
 * a sidecar reports its real limits and not the host's. Parsers are pure; `readCgroup` does the I/O
 * through injected roots, synchronously (see read.ts).
 */
import { join } from 'node:path';
import { FileReader } from './read.js';

export interface CgroupStats {
  version: 1 | 2;
  /** CPU time used by the cgroup, seconds. */
  cpuSeconds?: number;
  /** quota / period in CPUs; absent when unlimited. */
  cpuLimit?: number;
  periods?: number;
  throttledPeriods?: number;
  throttledSeconds?: number;
  memoryUsage?: number;
  /** Absent when unlimited. */
  memoryLimit?: number;
  oomKills?: number;
}

/** `key value` lines (cpu.stat, memory.events, memory.oom_control) as a map. */
export function parseFlatKeyed(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && Number.isFinite(Number(v))) out.set(k, Number(v));
  }
  return out;
}

/** cgroup v2 `cpu.max`: `max 100000` (no limit) or `200000 100000` (2 CPUs). */
export function parseCpuMax(text: string): number | undefined {
  const [quota, period] = text.trim().split(/\s+/);
  if (!quota || quota === 'max') return undefined;
  const q = Number(quota);
  const p = Number(period ?? 100000);
  return q > 0 && p > 0 ? q / p : undefined;
}

/** cgroup v2 `memory.max` (`max` = none) and v1 `memory.limit_in_bytes` (a value near 2^63 = none). */
export function parseMemoryLimit(text: string): number | undefined {
  const t = text.trim();
  if (t === 'max' || t === '') return undefined;
  const v = Number(t);
  if (!Number.isFinite(v) || v <= 0 || v >= 2 ** 62) return undefined;
  return v;
}

/** /proc/self/cgroup: `0::/path` (v2) and `4:memory:/path` (v1) lines as controller -> path. */
export function parseProcCgroup(text: string): { v2?: string; v1: Map<string, string> } {
  const v1 = new Map<string, string>();
  let v2: string | undefined;
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    if (m[1] === '0' && m[2] === '') v2 = m[3];
    else for (const c of m[2]!.split(',')) v1.set(c, m[3]!);
  }
  return { v2, v1 };
}

function text(files: FileReader, path: string): string | undefined {
  try {
    return files.read(path);
  } catch {
    return undefined;
  }
}

/**
 * The directory of our cgroup under `base`: `base/<path>` when it exists (host view), else `base`
 * itself (inside a cgroup namespace the container's cgroup is mounted at the root).
 */
function dirFor(files: FileReader, base: string, path: string | undefined, probe: string): string {
  if (path && path !== '/') {
    const d = join(base, path);
    if (text(files, join(d, probe)) !== undefined) return d;
  }
  return base;
}

/**
 * Reads the agent's cgroup. `procSelfCgroup` is the text of /proc/self/cgroup (so tests can pass a
 * fixture). Returns null when no cgroup file is readable (no cgroup fs mounted, or no permission).
 */
export function readCgroup(
  cgroupRoot: string,
  procSelfCgroup: string,
  files: FileReader = new FileReader(),
): CgroupStats | null {
  const { v2, v1 } = parseProcCgroup(procSelfCgroup);
  if (text(files, join(cgroupRoot, 'cgroup.controllers')) !== undefined) {
    const dir = dirFor(files, cgroupRoot, v2, 'cpu.stat');
    const [cpuStat, cpuMax, memCur, memMax, memEvents] = [
      'cpu.stat',
      'cpu.max',
      'memory.current',
      'memory.max',
      'memory.events',
    ].map((f) => text(files, join(dir, f)));
    if (cpuStat === undefined && memCur === undefined) return null;
    const s: CgroupStats = { version: 2 };
    if (cpuStat !== undefined) {
      const m = parseFlatKeyed(cpuStat);
      if (m.has('usage_usec')) s.cpuSeconds = m.get('usage_usec')! / 1e6;
      if (m.has('nr_periods')) s.periods = m.get('nr_periods');
      if (m.has('nr_throttled')) s.throttledPeriods = m.get('nr_throttled');
      if (m.has('throttled_usec')) s.throttledSeconds = m.get('throttled_usec')! / 1e6;
    }
    if (cpuMax !== undefined) s.cpuLimit = parseCpuMax(cpuMax);
    if (memCur !== undefined) s.memoryUsage = Number(memCur.trim());
    if (memMax !== undefined) s.memoryLimit = parseMemoryLimit(memMax);
    if (memEvents !== undefined) s.oomKills = parseFlatKeyed(memEvents).get('oom_kill');
    return s;
  }
  // cgroup v1: one hierarchy per controller (cpu and cpuacct are often the same, `cpu,cpuacct`).
  const cpuDir = dirFor(files, join(cgroupRoot, 'cpu'), v1.get('cpu'), 'cpu.cfs_quota_us');
  const acctDir = dirFor(files, join(cgroupRoot, 'cpuacct'), v1.get('cpuacct'), 'cpuacct.usage');
  const memDir = dirFor(files, join(cgroupRoot, 'memory'), v1.get('memory'), 'memory.usage_in_bytes');
  const [usage, quota, period, cpuStat, memUsage, memLimit, oomControl] = [
    join(acctDir, 'cpuacct.usage'),
    join(cpuDir, 'cpu.cfs_quota_us'),
    join(cpuDir, 'cpu.cfs_period_us'),
    join(cpuDir, 'cpu.stat'),
    join(memDir, 'memory.usage_in_bytes'),
    join(memDir, 'memory.limit_in_bytes'),
    join(memDir, 'memory.oom_control'),
  ].map((p) => text(files, p));
  if (usage === undefined && memUsage === undefined) return null;
  const s: CgroupStats = { version: 1 };
  if (usage !== undefined) s.cpuSeconds = Number(usage.trim()) / 1e9;
  if (quota !== undefined && period !== undefined) {
    const q = Number(quota.trim());
    const p = Number(period.trim());
    if (q > 0 && p > 0) s.cpuLimit = q / p;
  }
  if (cpuStat !== undefined) {
    const m = parseFlatKeyed(cpuStat);
    if (m.has('nr_periods')) s.periods = m.get('nr_periods');
    if (m.has('nr_throttled')) s.throttledPeriods = m.get('nr_throttled');
    if (m.has('throttled_time')) s.throttledSeconds = m.get('throttled_time')! / 1e9;
  }
  if (memUsage !== undefined) s.memoryUsage = Number(memUsage.trim());
  if (memLimit !== undefined) s.memoryLimit = parseMemoryLimit(memLimit);
  if (oomControl !== undefined) s.oomKills = parseFlatKeyed(oomControl).get('oom_kill');
  return s;
}
