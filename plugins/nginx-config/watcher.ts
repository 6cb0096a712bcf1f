/**
 * Watches one instance's config files and include directories (chokidar, inotify) and calls
 * `onChange` once per burst of changes, after `debounceMs` without a new event (or at the latest
 * after `maxWaitMs` of continuous changes). Editor temp files, log files, paths no include matches
 * and the agent's own writes (see OwnWrites) do not count.
 */
import { readFile } from 'node:fs/promises';
import { watch, type FSWatcher } from 'chokidar';
import { sha256, type OwnWrites } from './own-writes.js';
import { concernsConfig, isTempFile, type WatchPlan } from './watch-targets.js';

export interface ConfigWatcherSettings {
  debounceMs: number;
  /** Upper bound on the wait during an endless burst (default 10 x debounce). */
  maxWaitMs?: number;
  ownWrites: OwnWrites;
  /** Called with the sorted paths that changed in the burst. */
  onChange: (paths: string[]) => void;
  onError?: (err: Error) => void;
}

export interface WatcherStats {
  events: number;
  ignoredOwn: number;
  ignoredOther: number;
  bursts: number;
}

export class ConfigWatcher {
  #fsw: FSWatcher | undefined;
  #plan: WatchPlan | undefined;
  #depth = -1;
  #dirs = new Set<string>();
  #pending = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #burstStart = 0;
  #closed = false;
  readonly stats: WatcherStats = { events: 0, ignoredOwn: 0, ignoredOther: 0, bursts: 0 };

  constructor(private settings: ConfigWatcherSettings) {}

  setDebounce(ms: number): void {
    this.settings = { ...this.settings, debounceMs: ms, maxWaitMs: undefined };
  }

  /** Directories currently watched. */
  get dirs(): string[] {
    return [...this.#dirs].sort();
  }

  /** Starts or re-targets the watch; resolves once chokidar has scanned what it watches. */
  async update(plan: WatchPlan): Promise<void> {
    if (this.#closed) return;
    this.#plan = plan;
    const want = new Set(plan.dirs);
    if (want.size === 0) {
      // Nothing to watch (a config path that does not exist here): chokidar never says `ready` for
      // an empty list, and waiting for it held the instance's lock until close timed out.
      const fsw = this.#fsw;
      this.#fsw = undefined;
      this.#dirs = want;
      await fsw?.close();
      return;
    }
    if (!this.#fsw || plan.depth !== this.#depth) {
      await this.#fsw?.close();
      this.#depth = plan.depth;
      this.#dirs = want;
      const fsw = watch([...want], {
        ignoreInitial: true,
        depth: plan.depth,
        atomic: true,
        persistent: false,
        ignorePermissionErrors: true,
        // Temp files never matter; directories are kept so nested include globs are reached.
        ignored: (p, stats) => !!stats?.isFile() && isTempFile(p),
      });
      this.#fsw = fsw;
      fsw.on('add', (p) => this.#event(p, false));
      fsw.on('change', (p) => this.#event(p, false));
      fsw.on('unlink', (p) => this.#event(p, true));
      fsw.on('error', (e) => this.settings.onError?.(e as Error));
      await new Promise<void>((r) => fsw.once('ready', () => r()));
      return;
    }
    const add = [...want].filter((d) => !this.#dirs.has(d));
    const drop = [...this.#dirs].filter((d) => !want.has(d));
    if (drop.length) this.#fsw.unwatch(drop);
    if (add.length) this.#fsw.add(add);
    this.#dirs = want;
  }

  async #event(path: string, deleted: boolean): Promise<void> {
    if (this.#closed || !this.#plan) return;
    this.stats.events++;
    if (!concernsConfig(this.#plan, path)) {
      this.stats.ignoredOther++;
      return;
    }
    let hash: string | null = null;
    if (!deleted) {
      try {
        hash = sha256(await readFile(path));
      } catch {
        hash = null;
      }
    }
    if (this.settings.ownWrites.isOwn(path, hash)) {
      this.stats.ignoredOwn++;
      return;
    }
    this.#pending.add(path);
    const now = Date.now();
    if (!this.#timer) this.#burstStart = now;
    clearTimeout(this.#timer);
    const maxWait = this.settings.maxWaitMs ?? this.settings.debounceMs * 10;
    const wait = Math.max(0, Math.min(this.settings.debounceMs, this.#burstStart + maxWait - now));
    this.#timer = setTimeout(() => this.#fire(), wait);
  }

  #fire(): void {
    this.#timer = undefined;
    if (this.#closed || this.#pending.size === 0) return;
    const paths = [...this.#pending].sort();
    this.#pending.clear();
    this.stats.bursts++;
    try {
      this.settings.onChange(paths);
    } catch (e) {
      this.settings.onError?.(e as Error);
    }
  }

  /** Stops watching; safe to call twice. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const fsw = this.#fsw;
    this.#fsw = undefined;
    await fsw?.close();
  }
}
