/**
 * Reads nginx processes from a /proc tree (the real one or a fixture under testdata/).
 * One pass lists every PID, reads its `stat`, and keeps masters and their children whose name and
 * title say nginx. Unreadable files (a process that exited meanwhile, another user's `exe` or `fd`)
 * are expected and only narrow what is known; they never fail the scan.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseProcessTitle, parseStat, parseStatusRss, type NginxRole, type ProcStat } from './parse.js';

/** Process names (`comm`) of nginx binaries. */
export const NGINX_NAMES: ReadonlySet<string> = new Set(['nginx', 'nginx-debug']);

export interface ProcProcess {
  stat: ProcStat;
  role: NginxRole;
  /** Master only: argv from its title. */
  argv: string[];
}

export interface NginxMasterScan {
  master: ProcProcess;
  /** Readlink of /proc/PID/exe without ` (deleted)`; undefined when not readable (another user's process). */
  exe?: string;
  /** The running executable was replaced or removed on disk (a package upgrade without restart). */
  exeDeleted?: boolean;
  /** Readlink of /proc/PID/cwd; undefined when not readable. */
  cwd?: string;
  children: ProcProcess[];
}

export interface WorkerUsage {
  pid: number;
  rssBytes: number | null;
  /** null when /proc/PID/fd is not readable (another user's process without CAP_SYS_PTRACE). */
  openFds: number | null;
}

export interface ScanResult {
  masters: NginxMasterScan[];
  /** Processes named nginx whose title or executable says they are not nginx. */
  rejected: number;
  /** Processes in the tree (for status: a tiny number hints at hidepid or a separate PID namespace). */
  processes: number;
}

export class ProcReader {
  constructor(readonly procRoot: string) {}

  /*
   * Every read here is synchronous: /proc files and links are made by the kernel in memory and never
   * wait on a disk, and a synchronous read costs a few microseconds against ~100 µs of CPU for a
   * promise readFile (open, fstat, read, close, each a round trip through libuv's thread pool). A scan
   * reads one `stat` per process, and a poll the title, links, status and fds of every nginx process.
   */
  #text(pid: number, file: string): string | null {
    try {
      return readFileSync(join(this.procRoot, String(pid), file), 'utf8');
    } catch {
      return null;
    }
  }

  #rawLink(pid: number, file: string): string | undefined {
    try {
      return readlinkSync(join(this.procRoot, String(pid), file));
    } catch {
      return undefined;
    }
  }

  #link(pid: number, file: string): string | undefined {
    return this.#rawLink(pid, file)?.replace(/ \(deleted\)$/, '');
  }

  /** Path to run a master's executable when its path is not visible here (another mount namespace). */
  exeLink(pid: number): string {
    return join(this.procRoot, String(pid), 'exe');
  }

  async pids(): Promise<number[]> {
    const names = readdirSync(this.procRoot);
    const out: number[] = [];
    for (const n of names) if (/^\d+$/.test(n)) out.push(Number(n));
    return out;
  }

  /** One scan of the tree: nginx masters with their children. */
  async scan(): Promise<ScanResult> {
    const pids = await this.pids();
    const named: ProcStat[] = [];
    for (let i = 0; i < pids.length; i++) {
      // Yield to the event loop every 256 processes so a host with thousands never blocks it long.
      if (i > 0 && i % 256 === 0) await new Promise((r) => setImmediate(r));
      const pid = pids[i];
      const text = this.#text(pid, 'stat');
      const st = text === null ? null : parseStat(text);
      if (st && NGINX_NAMES.has(st.comm)) named.push(st);
    }
    const procs = new Map<number, ProcProcess>();
    let rejected = 0;
    for (const st of named) {
      const cmd = this.#text(st.pid, 'cmdline');
      const title = cmd === null ? null : parseProcessTitle(cmd);
      if (!title) continue; // nginx -t / -V / -s, a process just starting, or a zombie without a command line
      procs.set(st.pid, { stat: st, role: title.role, argv: title.argv });
    }
    const masters: NginxMasterScan[] = [];
    for (const p of procs.values()) {
      if (p.role !== 'master') continue;
      const rawExe = this.#rawLink(p.stat.pid, 'exe');
      const exe = rawExe?.replace(/ \(deleted\)$/, '');
      if (exe !== undefined && !NGINX_NAMES.has(basename(exe))) {
        rejected++; // a process that renamed itself `nginx` and set an nginx-like title
        continue;
      }
      const children = [...procs.values()].filter((c) => c.stat.ppid === p.stat.pid && c.role !== 'master');
      // A worker just forked still wears its master's title for a moment: a "master" under a master
      // without children of its own is that, not a second master (a binary upgrade has workers).
      if (children.length === 0 && procs.get(p.stat.ppid)?.role === 'master') continue;
      masters.push({
        master: p,
        exe,
        ...(rawExe?.endsWith(' (deleted)') ? { exeDeleted: true } : {}),
        cwd: this.#link(p.stat.pid, 'cwd'),
        children,
      });
    }
    masters.sort((a, b) => a.master.stat.pid - b.master.stat.pid);
    return { masters, rejected, processes: pids.length };
  }

  /** Re-reads the stat of one PID (for a known master: zombie, stopped, or gone). */
  async stat(pid: number): Promise<ProcStat | null> {
    const text = this.#text(pid, 'stat');
    return text === null ? null : parseStat(text);
  }

  /** RSS and open file descriptors of one process. */
  async usage(pid: number): Promise<WorkerUsage> {
    const status = this.#text(pid, 'status');
    let openFds: number | null = null;
    try {
      openFds = readdirSync(join(this.procRoot, String(pid), 'fd')).length;
    } catch {
      openFds = null;
    }
    return { pid, rssBytes: status === null ? null : parseStatusRss(status), openFds };
  }
}
