/**
 * npm does not forward SIGTERM to the script it runs: `npx agent start` or `npm start` killed with
 * SIGTERM exits at once and leaves the agent running, re-parented. `watchNpmParent` finds the npm
 * process that started the agent (the nearest ancestor whose command line runs npm or npx) and
 * calls `onGone` once when that process is no longer there, so the agent stops as on SIGTERM.
 * Without an npm ancestor (systemd, a container, a shell) it does nothing: a service whose parent
 * exits on purpose (`nohup agent start &`) keeps running.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface NpmParentOptions {
  /** Called once, when the npm ancestor has exited. */
  onGone: () => void;
  /** How often to look; default 1 s. */
  intervalMs?: number;
  /** The /proc to read (tests); default /proc. */
  procRoot?: string;
  /** The process to start from; default this one. */
  pid?: number;
}

interface ProcessIdentity {
  pid: number;
  /** Start time in clock ticks since boot: a reused pid is a different process. */
  startTicks: string;
}

/** State, parent pid and start time from /proc/PID/stat (fields after the last ')'), or undefined. */
function readStat(procRoot: string, pid: number): { state: string; ppid: number; startTicks: string } | undefined {
  try {
    const text = readFileSync(join(procRoot, String(pid), 'stat'), 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // fields[0] is the state (field 3), so field N is fields[N - 3].
    return { state: fields[0], ppid: Number(fields[1]), startTicks: fields[19] };
  } catch {
    return undefined;
  }
}

function runsNpm(procRoot: string, pid: number): boolean {
  try {
    const argv = readFileSync(join(procRoot, String(pid), 'cmdline'), 'utf8').split('\0');
    // `node /usr/bin/npm start`, `node .../npm-cli.js`, or the title npm sets itself (`npm exec agent start`).
    return argv.slice(0, 2).some((a) => /(^|\/)(npm|npx)(-cli\.js)?( |$)/.test(a));
  } catch {
    return false;
  }
}

/** The nearest ancestor running npm or npx, within a few generations (npm runs scripts through sh). */
export function findNpmAncestor(procRoot = '/proc', pid = process.pid): ProcessIdentity | undefined {
  let current = readStat(procRoot, pid)?.ppid;
  for (let depth = 0; depth < 4 && current && current > 1; depth++) {
    const stat = readStat(procRoot, current);
    if (!stat) return undefined;
    if (runsNpm(procRoot, current)) return { pid: current, startTicks: stat.startTicks };
    current = stat.ppid;
  }
  return undefined;
}

/** Starts watching; returns a function that stops watching, or undefined when no npm started us. */
export function watchNpmParent(opts: NpmParentOptions): (() => void) | undefined {
  const procRoot = opts.procRoot ?? '/proc';
  const npm = findNpmAncestor(procRoot, opts.pid ?? process.pid);
  if (!npm) return undefined;
  const timer = setInterval(() => {
    // Gone: no such process, another process with its pid, or a zombie nobody reaped (an exited npm
    // re-parented to an init that does not reap stays one).
    const now = readStat(procRoot, npm.pid);
    if (now && now.startTicks === npm.startTicks && now.state !== 'Z' && now.state !== 'X') return;
    clearInterval(timer);
    opts.onGone();
  }, opts.intervalMs ?? 1000);
  timer.unref();
  return () => clearInterval(timer);
}
