/**
 * Whether an nginx instance still writes to a file: one of its processes (the master and its
 * children, the workers) has the file open, as /proc/PID/fd tells.
 */
import { readdir, readFile, stat } from 'node:fs/promises';

/**
 * True when a process of the instance whose master is `masterPid` holds (`dev`, `ino`) open; false
 * when none does; undefined when that cannot be told (no process readable, e.g. nginx runs as
 * another user and the agent is not root).
 */
export async function nginxHolds(
  masterPid: number,
  dev: number,
  ino: number,
  procRoot = '/proc',
): Promise<boolean | undefined> {
  // The master first: it holds every log until a reopen and has a handful of descriptors, where a
  // busy worker has one per connection. The workers are looked at only once the master let go.
  const master = await holds(masterPid, dev, ino, procRoot);
  if (master === true) return true;
  let readable = master === false;
  for (const pid of await children(masterPid, procRoot)) {
    const worker = await holds(pid, dev, ino, procRoot);
    if (worker === true) return true;
    if (worker === false) readable = true;
  }
  return readable ? false : undefined;
}

/** Whether process `pid` holds the file; a process that is gone holds nothing; undefined when not readable. */
async function holds(pid: number, dev: number, ino: number, procRoot: string): Promise<boolean | undefined> {
  let fds: string[];
  try {
    fds = await readdir(`${procRoot}/${pid}/fd`);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? false : undefined;
  }
  for (const fd of fds) {
    const st = await stat(`${procRoot}/${pid}/fd/${fd}`).catch(() => undefined);
    if (st && st.ino === ino && st.dev === dev) return true;
  }
  return false;
}

async function children(pid: number, procRoot: string): Promise<number[]> {
  try {
    const text = await readFile(`${procRoot}/${pid}/task/${pid}/children`, 'utf8');
    return text.split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
