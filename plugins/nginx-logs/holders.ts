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
  const pids = [masterPid, ...(await children(masterPid, procRoot))];
  let readable = false;
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = await readdir(`${procRoot}/${pid}/fd`);
    } catch (err) {
      // A process that is gone holds nothing; one we may not look into tells us nothing.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') readable = true;
      continue;
    }
    readable = true;
    for (const fd of fds) {
      const st = await stat(`${procRoot}/${pid}/fd/${fd}`).catch(() => undefined);
      if (st && st.ino === ino && st.dev === dev) return true;
    }
  }
  return readable ? false : undefined;
}

async function children(pid: number, procRoot: string): Promise<number[]> {
  try {
    const text = await readFile(`${procRoot}/${pid}/task/${pid}/children`, 'utf8');
    return text.split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
