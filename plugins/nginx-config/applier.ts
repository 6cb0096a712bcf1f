/**
 * Applies new config files to a running nginx, with rollback:
 * check paths -> back up -> write atomically -> `nginx -t` -> SIGHUP the master -> confirm a new
 * worker generation and no emerg/alert/crit in the error log for `confirmPeriodMs`; on any failure
 * after the first write, the backups are restored (new files deleted) and nginx reloaded again.
 * Every step is timed and reported. One apply at a time per instance is the caller's job.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readFile, rename, rmdir, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { ApplyStep, NginxConfigValidated, NginxInstance } from '../../core/nginx/types.js';
import { logOffsets, severeSince } from './error-log.js';
import type { NginxTester } from './nginx-test.js';
import type { OwnWrites } from './own-writes.js';
import { resolveAllowedDirs, resolveInside, type PathFs, nodePathFs } from './paths.js';
import { newWorkers, processExists, readWorkers } from './proc.js';

export interface ApplyFile {
  path: string;
  content: string;
}

export interface ApplyResult {
  /** HTTP status: 200 applied, 422 refused by -t, 409 rolled back (or master not running), 403 path refused, 500 I/O failure. */
  status: number;
  ok: boolean;
  rolledBack: boolean;
  steps: ApplyStep[];
  /** The `nginx -t` result of the new files, when the test ran. */
  test?: NginxConfigValidated;
  /** Absolute real paths written (what the watcher must not report). */
  written: string[];
}

export interface ConfigApplierSettings {
  allowedDirectories: readonly string[];
  confirmPeriodMs: number;
  procRoot: string;
  ownWrites: OwnWrites;
  tester: NginxTester;
  /** Sends a signal to a pid (default process.kill). */
  kill?: (pid: number, signal: NodeJS.Signals) => void;
  fs?: PathFs;
  /** Poll interval while confirming (default 50 ms). */
  pollMs?: number;
}

/** Upper bound for the old config's workers to start after a rollback. */
const RESTORE_CONFIRM_MS = 15_000;

interface Backup {
  path: string;
  /** null: the file did not exist (delete it on rollback). */
  content: Buffer | null;
  mode: number;
  uid?: number;
  gid?: number;
}

/** Mode for a written file: the existing mode without execute bits, or 0644 for a new file. */
export function writeMode(existing: number | undefined): number {
  return existing === undefined ? 0o644 : existing & 0o777 & ~0o111;
}

/** temp file in the same directory + fsync + rename + fsync of the directory. */
export async function writeAtomic(
  path: string,
  content: string | Buffer,
  mode: number,
  owner?: { uid?: number; gid?: number },
): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.agent-${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    try {
      await fh.writeFile(content);
      await fh.chmod(mode);
      if (owner?.uid !== undefined && owner.gid !== undefined)
        await fh.chown(owner.uid, owner.gid).catch(() => undefined);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await syncDir(dirname(path));
}

async function syncDir(dir: string): Promise<void> {
  try {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    /* some filesystems refuse fsync on a directory; the rename is still atomic */
  }
}

class StepLog {
  readonly steps: ApplyStep[] = [];
  async run<T>(
    step: string,
    fn: () => Promise<{ ok: boolean; detail?: string; value?: T }>,
  ): Promise<{ ok: boolean; value?: T }> {
    const t0 = performance.now();
    let r: { ok: boolean; detail?: string; value?: T };
    try {
      r = await fn();
    } catch (e) {
      r = { ok: false, detail: (e as Error).message };
    }
    this.steps.push({
      step,
      ok: r.ok,
      ...(r.detail ? { detail: r.detail } : {}),
      durationMs: Math.round((performance.now() - t0) * 10) / 10,
    });
    return r;
  }
}

export class ConfigApplier {
  constructor(private settings: ConfigApplierSettings) {}

  update(settings: Partial<ConfigApplierSettings>): void {
    this.settings = { ...this.settings, ...settings };
  }

  /**
   * Applies `files` to `instance`. `errorLogs` are the error logs to watch after the reload.
   * Never throws: every failure is a step with `ok: false` and a status.
   * `dryRun`: write, `nginx -t`, and restore the previous files whatever the result (no reload).
   */
  async apply(
    instance: NginxInstance,
    files: readonly ApplyFile[],
    errorLogs: readonly string[],
    opts: { dryRun?: boolean } = {},
  ): Promise<ApplyResult> {
    const s = this.settings;
    const log = new StepLog();
    const fs = s.fs ?? nodePathFs;
    const kill = s.kill ?? ((pid, sig) => process.kill(pid, sig));
    const confDir = dirname(instance.confPath);
    const result = (
      status: number,
      ok: boolean,
      rolledBack: boolean,
      extra: Partial<ApplyResult> = {},
    ): ApplyResult => ({
      status,
      ok,
      rolledBack,
      steps: log.steps,
      written: [],
      ...extra,
    });

    // 1. Paths.
    const targets: { real: string; content: string }[] = [];
    const paths = await log.run('check-paths', async () => {
      const allowed = await resolveAllowedDirs(s.allowedDirectories, fs);
      const refused: string[] = [];
      const seen = new Set<string>();
      for (const f of files) {
        const r = await resolveInside(f.path, confDir, allowed, fs);
        if (!r.ok) refused.push(r.reason);
        else if (seen.has(r.real))
          refused.push(`${f.path} resolves to ${r.real}, which another entry of the request also writes`);
        else {
          seen.add(r.real);
          targets.push({ real: r.real, content: f.content });
        }
      }
      return refused.length
        ? { ok: false, detail: refused.join('; ') }
        : { ok: true, detail: targets.map((t) => t.real).join(', ') };
    });
    if (!paths.ok) return result(403, false, false);

    const master = opts.dryRun
      ? { ok: true }
      : await log.run('check-master', async () =>
          instance.pid > 0 && (await processExists(s.procRoot, instance.pid))
            ? { ok: true, detail: `master pid ${instance.pid}` }
            : {
                ok: false,
                detail: `the nginx master (pid ${instance.pid || 'unknown'}) is not running: nothing to reload`,
              },
        );
    if (!master.ok) return result(409, false, false);

    // 2. Backups.
    const backups: Backup[] = [];
    const createdDirs: string[] = [];
    const backup = await log.run('backup', async () => {
      for (const t of targets) {
        let st;
        try {
          st = await lstat(t.real);
        } catch {
          st = undefined;
        }
        if (st)
          backups.push({
            path: t.real,
            content: await readFile(t.real),
            mode: st.mode & 0o7777,
            uid: st.uid,
            gid: st.gid,
          });
        else backups.push({ path: t.real, content: null, mode: 0o644 });
      }
      const existing = backups.filter((b) => b.content).length;
      return {
        ok: true,
        detail: `${existing} existing file(s) backed up, ${backups.length - existing} new file(s) to delete on rollback`,
      };
    });
    if (!backup.ok) return result(500, false, false);

    const restore = async (): Promise<boolean> => {
      const r = await log.run('restore', async () => {
        const errors: string[] = [];
        for (const b of backups) {
          try {
            if (b.content) {
              s.ownWrites.record(b.path, b.content);
              await writeAtomic(b.path, b.content, b.mode, { uid: b.uid, gid: b.gid });
            } else {
              s.ownWrites.record(b.path, null);
              await unlink(b.path).catch((e: NodeJS.ErrnoException) => {
                if (e.code !== 'ENOENT') throw e;
              });
            }
          } catch (e) {
            errors.push(`${b.path}: ${(e as Error).message}`);
          }
        }
        for (const d of [...createdDirs].sort((a, b) => b.length - a.length)) await rmdir(d).catch(() => undefined);
        return errors.length
          ? { ok: false, detail: `could not restore ${errors.join('; ')}` }
          : { ok: true, detail: `${backups.length} file(s) restored` };
      });
      return r.ok;
    };

    // 3. Atomic writes.
    const written: string[] = [];
    const write = await log.run('write', async () => {
      for (const [i, t] of targets.entries()) {
        const b = backups[i];
        const dir = dirname(t.real);
        const made = await mkdir(dir, { recursive: true, mode: 0o755 });
        if (made) for (let d = dir; d.length >= made.length; d = dirname(d)) createdDirs.unshift(d);
        s.ownWrites.record(t.real, t.content);
        await writeAtomic(
          t.real,
          t.content,
          writeMode(b.content ? b.mode : undefined),
          b.content ? { uid: b.uid, gid: b.gid } : undefined,
        );
        written.push(t.real);
      }
      return { ok: true, detail: `${written.length} file(s) written` };
    });
    if (!write.ok) {
      await restore();
      return result(500, false, true, { written });
    }

    // 4. nginx -t.
    let test: NginxConfigValidated | undefined;
    const tested = await log.run('test', async () => {
      test = await s.tester.test(instance, '');
      const shown = test.messages
        .filter((m) => m.level !== 'notice')
        .map((m) => `[${m.level}] ${m.text}${m.file ? ` in ${m.file}:${m.line}` : ''}`);
      // A test that could not run here (permissions, no binary) is said as that, not as a broken config.
      if (test.untested) return { ok: false, detail: `${test.untested} (the new config was not judged)` };
      return { ok: test.ok, detail: shown.join('\n') || (test.ok ? 'syntax is ok' : `exit code ${test.exitCode}`) };
    });
    if (!tested.ok) {
      await restore();
      return result(422, false, true, { test, written });
    }
    if (opts.dryRun) {
      const restored = await restore();
      return result(restored ? 200 : 500, restored, true, { test, written });
    }

    // 5. Reload and confirm.
    const confirmed = await this.#reloadAndConfirm(log, 'reload', 'confirm', instance, errorLogs, kill, 'strict');
    if (confirmed) return result(200, true, false, { test, written });

    await restore();
    await this.#reloadAndConfirm(log, 'reload-previous', 'confirm-previous', instance, errorLogs, kill, 'restore');
    return result(409, false, true, { test, written });
  }

  /**
   * SIGHUP, then confirm. `strict` (the apply): a new worker generation and no emerg/alert/crit line
   * for the whole confirm period. `restore` (after a rollback): the master may still be retrying the
   * failed reload (nginx retries a busy bind() 5 times, 500 ms apart), so wait up to
   * RESTORE_CONFIRM_MS for new workers and only report severe lines.
   */
  async #reloadAndConfirm(
    log: StepLog,
    reloadStep: string,
    confirmStep: string,
    instance: NginxInstance,
    errorLogs: readonly string[],
    kill: (pid: number, signal: NodeJS.Signals) => void,
    mode: 'strict' | 'restore',
  ): Promise<boolean> {
    const s = this.settings;
    const before = await readWorkers(s.procRoot, instance.pid);
    const offsets = await logOffsets(errorLogs);
    const sent = await log.run(reloadStep, async () => {
      kill(instance.pid, 'SIGHUP');
      return { ok: true, detail: `SIGHUP sent to master ${instance.pid} (${before.length} worker(s) before)` };
    });
    if (!sent.ok) return false;
    const period = mode === 'strict' ? s.confirmPeriodMs : Math.max(s.confirmPeriodMs, RESTORE_CONFIRM_MS);
    const r = await log.run(confirmStep, async () => {
      const end = Date.now() + period;
      let fresh: number[] = [];
      let severe: { path: string; line: string }[] = [];
      for (;;) {
        severe = await severeSince(offsets);
        if (severe.length && mode === 'strict')
          return { ok: false, detail: `error log: ${severe.map((x) => x.line).join(' | ')}` };
        if (!(await processExists(s.procRoot, instance.pid)))
          return { ok: false, detail: `the master ${instance.pid} exited` };
        fresh = newWorkers(before, await readWorkers(s.procRoot, instance.pid)).map((w) => w.pid);
        if (Date.now() >= end || (mode === 'restore' && fresh.length > 0)) break;
        await new Promise((res) => setTimeout(res, s.pollMs ?? 50));
      }
      const seen = severe.length ? `; error log meanwhile: ${severe.map((x) => x.line).join(' | ')}` : '';
      if (fresh.length === 0) return { ok: false, detail: `no new worker generation within ${period} ms${seen}` };
      if (mode === 'restore')
        return { ok: true, detail: `new workers ${fresh.join(', ')} run the restored config${seen}` };
      const logs = errorLogs.length
        ? `, no emerg/alert/crit in ${errorLogs.join(', ')}`
        : ', no error log known to check';
      return { ok: true, detail: `new workers ${fresh.join(', ')}${logs} for ${period} ms` };
    });
    return r.ok;
  }
}
