/**
 * The worker generation of an nginx master, read from /proc (root injected for tests):
 * children of the master with their start times, so a reload is confirmed by new workers.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NginxWorker } from '../../core/nginx/types.js';

/** Field 22 (starttime, clock ticks since boot) of /proc/PID/stat; the comm field may contain spaces and parens. */
export function parseStartTicks(stat: string): number | null {
  const close = stat.lastIndexOf(')');
  if (close < 0) return null;
  const fields = stat.slice(close + 2).split(' ');
  // After "pid (comm) ", fields[0] is field 3 (state); starttime is field 22.
  const v = Number(fields[22 - 3]);
  return Number.isFinite(v) ? v : null;
}

/** Children of `pid` (workers, cache manager/loader) with their start ticks; empty when the master is gone. */
export async function readWorkers(procRoot: string, pid: number): Promise<NginxWorker[]> {
  let text: string;
  try {
    text = await readFile(join(procRoot, String(pid), 'task', String(pid), 'children'), 'utf8');
  } catch {
    return [];
  }
  const out: NginxWorker[] = [];
  for (const p of text.split(/\s+/).filter(Boolean).map(Number)) {
    try {
      const t = parseStartTicks(await readFile(join(procRoot, String(p), 'stat'), 'utf8'));
      if (t !== null) out.push({ pid: p, startTicks: t });
    } catch {
      /* exited between the two reads */
    }
  }
  return out;
}

/** Workers present in `now` that were not in `before` (same pid with another start time counts as new). */
export function newWorkers(before: readonly NginxWorker[], now: readonly NginxWorker[]): NginxWorker[] {
  const old = new Set(before.map((w) => `${w.pid}:${w.startTicks}`));
  return now.filter((w) => !old.has(`${w.pid}:${w.startTicks}`));
}

/** True while a process with this pid exists under procRoot. */
export async function processExists(procRoot: string, pid: number): Promise<boolean> {
  try {
    await readFile(join(procRoot, String(pid), 'stat'), 'utf8');
    return true;
  } catch {
    return false;
  }
}
