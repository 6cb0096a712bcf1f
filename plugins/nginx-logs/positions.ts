/**
 * The position reached in each log, kept in `<state dir>/nginx-logs/positions.json` so that after a
 * restart of the agent each log is read on from where it was. Written atomically (temp file, fsync,
 * rename); a missing file is a first start, a corrupt or unreadable one is a warning and a fresh start.
 */
import { readFileSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { SavedPosition } from './tailer.js';

/** Entries of logs not followed any more are forgotten after this long. */
const FORGET_AFTER_MS = 7 * 24 * 3600 * 1000;
const VERSION = 1;

interface Entry extends SavedPosition {
  /** Unix ms of the last update. */
  saved: number;
}

export interface PositionStoreOptions {
  /** The state directory; undefined keeps positions in memory only (nothing survives a restart). */
  stateDir?: string;
  warn: (message: string) => void;
  now?: () => number;
}

export class PositionStore {
  readonly file: string | undefined;
  readonly #warn: (message: string) => void;
  readonly #now: () => number;
  #entries = new Map<string, Entry>();
  #dirty = false;
  #lastWriteError: string | undefined;
  #writing: Promise<void> | undefined;

  constructor(options: PositionStoreOptions) {
    this.file = options.stateDir ? join(options.stateDir, 'nginx-logs', 'positions.json') : undefined;
    this.#warn = options.warn;
    this.#now = options.now ?? Date.now;
    this.#load();
  }

  get(path: string): SavedPosition | undefined {
    return this.#entries.get(path);
  }

  set(path: string, position: SavedPosition): void {
    const old = this.#entries.get(path);
    if (
      old &&
      old.offset === position.offset &&
      old.ino === position.ino &&
      old.dev === position.dev &&
      old.head === position.head
    )
      return;
    this.#entries.set(path, { ...position, saved: this.#now() });
    this.#dirty = true;
  }

  /** Writes the file if anything changed; never throws (a failure is warned once until it changes). */
  async save(): Promise<void> {
    if (this.#writing) await this.#writing;
    if (!this.file || !this.#dirty) return;
    this.#writing = this.#write(this.file).finally(() => (this.#writing = undefined));
    return this.#writing;
  }

  async #write(file: string): Promise<void> {
    this.#dirty = false;
    const cutoff = this.#now() - FORGET_AFTER_MS;
    const logs: Record<string, Entry> = {};
    for (const [path, entry] of this.#entries) if (entry.saved >= cutoff) logs[path] = entry;
    const text = `${JSON.stringify({ version: VERSION, logs }, null, 1)}\n`;
    const temp = `${file}.${process.pid}.tmp`;
    try {
      await mkdir(dirname(file), { recursive: true, mode: 0o750 });
      const fh = await open(temp, 'w', 0o640);
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(temp, file);
      if (this.#lastWriteError) this.#warn(`log positions are saved again in ${file}`);
      this.#lastWriteError = undefined;
    } catch (err) {
      this.#dirty = true;
      await rm(temp, { force: true }).catch(() => {});
      const message = `cannot save log positions to ${file}: ${(err as Error).message} (after a restart the agent will start at the end of each log; check agent.state_dir)`;
      if (message !== this.#lastWriteError) this.#warn(message);
      this.#lastWriteError = message;
    }
  }

  #load(): void {
    if (!this.file) return;
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.#warn(`cannot read log positions from ${this.file}: ${(err as Error).message}; starting without them`);
      return;
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      this.#warn(`log positions in ${this.file} are corrupt (${(err as Error).message}); starting without them`);
      return;
    }
    const logs = (doc as { logs?: unknown } | null)?.logs;
    if ((doc as { version?: unknown } | null)?.version !== VERSION || typeof logs !== 'object' || logs === null) {
      this.#warn(`log positions in ${this.file} are not version ${VERSION} {logs: {...}}; starting without them`);
      return;
    }
    let bad = 0;
    for (const [path, value] of Object.entries(logs)) {
      const entry = asEntry(value);
      if (entry) this.#entries.set(path, entry);
      else bad++;
    }
    if (bad) this.#warn(`${bad} log position(s) in ${this.file} are malformed and were ignored`);
  }
}

function asEntry(value: unknown): Entry | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const counts = ['dev', 'ino', 'offset', 'saved'].every((k) => Number.isSafeInteger(v[k]) && (v[k] as number) >= 0);
  const texts = ['head', 'tail'].every(
    (k) => typeof v[k] === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(v[k] as string),
  );
  if (!counts || !texts) return undefined;
  return {
    dev: v.dev as number,
    ino: v.ino as number,
    offset: v.offset as number,
    head: v.head as string,
    tail: v.tail as string,
    saved: v.saved as number,
  };
}
