/**
 * Follows one log file as it grows, in chunks, through rotation.
 *
 * Each `poll()` reads what was appended since the last one (64 KiB reads into one reused buffer),
 * hands complete lines to `onText`, and keeps a partial last line for the next poll. Then it
 * stats the path:
 * - another inode at the path (logrotate `create` then `nginx -s reopen`): the old descriptor is
 *   kept and drained on every poll until it has been quiet for `drainQuietMs` (nginx writes to it
 *   until it reopens), and the new file is read from its start;
 * - the same inode but smaller than our offset, or the bytes just before our offset changed
 *   (copytruncate, even when the file grew back past our offset between two polls): read from 0;
 * - no file yet: it is picked up, from its start, when it appears.
 * On first sight an existing file is read from its end (`startAt: 'end'`) or its start.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';

/** Settings of one tailer; sizes in bytes, times in ms. */
export interface TailerOptions {
  path: string;
  /** Where to start in a file that exists when the tailer first looks. */
  startAt: 'end' | 'beginning';
  /** Called with complete lines (each ending in `\n`). Must not throw. */
  onText: (text: string) => void;
  /** Read size; the buffer grows up to `maxLineBytes` for a longer line. */
  chunkBytes?: number;
  /** A line longer than this is dropped and counted in `stats.oversizedLines`. */
  maxLineBytes?: number;
  /** How long a rotated-away file must stay unchanged before it is closed. */
  drainQuietMs?: number;
  /** Bytes read per poll at most (the rest waits for the next poll), so one huge file cannot starve others. */
  maxBytesPerPoll?: number;
  now?: () => number;
}

/** Bytes kept from just before the offset to recognise a file truncated and regrown between polls. */
const FINGERPRINT = 32;

interface Reader {
  fh: FileHandle;
  ino: number;
  dev: number;
  pos: number;
  /** Bytes of an incomplete line at the start of the buffer. */
  carry: number;
  buf: Buffer;
  fingerprint: Buffer;
  fpLen: number;
  lastGrowth: number;
}

/** What the tailer has done so far, for the plugin status. */
export interface TailerStats {
  path: string;
  /** True while a file is open at the path. */
  open: boolean;
  offset: number;
  inode?: number;
  bytesRead: number;
  rotations: number;
  truncations: number;
  oversizedLines: number;
  /** Rotated-away files still being drained. */
  draining: number;
  lastError?: string;
}

/** Follows one path; `poll()` on a timer, `close()` at the end. */
export class LogTailer {
  readonly #o: Required<TailerOptions>;
  #cur: Reader | undefined;
  #old: Reader[] = [];
  #firstLook = true;
  #closed = false;
  readonly stats: TailerStats;

  constructor(opts: TailerOptions) {
    this.#o = {
      chunkBytes: 64 * 1024,
      maxLineBytes: 1024 * 1024,
      drainQuietMs: 5000,
      maxBytesPerPoll: 64 * 1024 * 1024,
      now: Date.now,
      ...opts,
    };
    this.stats = {
      path: opts.path,
      open: false,
      offset: 0,
      bytesRead: 0,
      rotations: 0,
      truncations: 0,
      oversizedLines: 0,
      draining: 0,
    };
  }

  /** Reads what is new; never throws (errors are kept in `stats.lastError`). */
  async poll(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#poll();
      this.stats.lastError = undefined;
    } catch (err) {
      this.stats.lastError = (err as Error).message;
    }
    this.stats.open = this.#cur !== undefined;
    this.stats.offset = this.#cur?.pos ?? 0;
    this.stats.inode = this.#cur?.ino;
    this.stats.draining = this.#old.length;
  }

  async #poll(): Promise<void> {
    const now = this.#o.now();
    // Rotated-away files first: their lines are older.
    for (const r of [...this.#old]) {
      const n = await this.#drain(r);
      if (n > 0) r.lastGrowth = now;
      else if (now - r.lastGrowth >= this.#o.drainQuietMs) await this.#retire(r);
    }
    if (this.#closed) return;
    if (!this.#cur) {
      const first = this.#firstLook;
      this.#firstLook = false;
      this.#cur = await this.#open(first && this.#o.startAt === 'end');
      if (!this.#cur) return;
    }
    const cur = this.#cur;
    await this.#checkTruncated(cur);
    await this.#drain(cur);
    let st;
    try {
      st = await stat(this.#o.path, { bigint: false });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // renamed away, not recreated yet: keep reading the old one
      throw err;
    }
    if (st.ino !== cur.ino || st.dev !== cur.dev) {
      // Rotated: drain what nginx already wrote, keep the old file open until nginx has reopened.
      await this.#drain(cur);
      cur.lastGrowth = now;
      this.#old.push(cur);
      this.stats.rotations++;
      this.#cur = await this.#open(false);
      if (this.#cur) await this.#drain(this.#cur);
    } else if (st.size < cur.pos) {
      this.#truncated(cur);
      await this.#drain(cur);
    }
  }

  async #open(atEnd: boolean): Promise<Reader | undefined> {
    let fh: FileHandle;
    try {
      fh = await open(this.#o.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const st = await fh.stat();
    const r: Reader = {
      fh,
      ino: st.ino,
      dev: st.dev,
      pos: atEnd ? st.size : 0,
      carry: 0,
      buf: Buffer.allocUnsafe(this.#o.chunkBytes),
      fingerprint: Buffer.alloc(FINGERPRINT),
      fpLen: 0,
      lastGrowth: this.#o.now(),
    };
    if (atEnd && st.size > 0) await this.#takeFingerprint(r);
    return r;
  }

  async #takeFingerprint(r: Reader): Promise<void> {
    const len = Math.min(FINGERPRINT, r.pos);
    const { bytesRead } = await r.fh.read(r.fingerprint, 0, len, r.pos - len);
    r.fpLen = bytesRead;
  }

  /** copytruncate that regrew past our offset: the bytes before the offset are not the ones we read. */
  async #checkTruncated(r: Reader): Promise<void> {
    if (r.fpLen === 0) return;
    const probe = Buffer.allocUnsafe(r.fpLen);
    const { bytesRead } = await r.fh.read(probe, 0, r.fpLen, r.pos - r.fpLen);
    if (bytesRead !== r.fpLen || !probe.equals(r.fingerprint.subarray(0, r.fpLen))) this.#truncated(r);
  }

  #truncated(r: Reader): void {
    r.pos = 0;
    r.carry = 0;
    r.fpLen = 0;
    this.stats.truncations++;
  }

  /** Reads `r` to its end (bounded by maxBytesPerPoll); returns bytes read. */
  async #drain(r: Reader): Promise<number> {
    let total = 0;
    while (total < this.#o.maxBytesPerPoll && !this.#closed) {
      if (r.carry === r.buf.length) {
        if (r.buf.length >= this.#o.maxLineBytes) {
          // One line longer than we accept: drop what we have of it and the rest up to its newline.
          this.stats.oversizedLines++;
          r.carry = 0;
          r.buf = Buffer.allocUnsafe(this.#o.chunkBytes);
          await this.#skipToNewline(r);
          continue;
        }
        const bigger = Buffer.allocUnsafe(Math.min(r.buf.length * 2, this.#o.maxLineBytes));
        r.buf.copy(bigger, 0, 0, r.carry);
        r.buf = bigger;
      }
      const { bytesRead } = await r.fh.read(r.buf, r.carry, r.buf.length - r.carry, r.pos);
      if (bytesRead === 0) break;
      r.pos += bytesRead;
      total += bytesRead;
      this.stats.bytesRead += bytesRead;
      const filled = r.carry + bytesRead;
      const lastNl = r.buf.lastIndexOf(10, filled - 1);
      if (lastNl < 0) {
        r.carry = filled;
        continue;
      }
      const text = r.buf.toString('utf8', 0, lastNl + 1);
      r.carry = filled - lastNl - 1;
      if (r.carry) r.buf.copy(r.buf, 0, lastNl + 1, filled);
      this.#o.onText(text);
    }
    if (total > 0) await this.#takeFingerprint(r);
    return total;
  }

  async #skipToNewline(r: Reader): Promise<void> {
    for (;;) {
      const { bytesRead } = await r.fh.read(r.buf, 0, r.buf.length, r.pos);
      if (bytesRead === 0) return;
      const nl = r.buf.subarray(0, bytesRead).indexOf(10);
      if (nl >= 0) {
        r.pos += nl + 1;
        return;
      }
      r.pos += bytesRead;
    }
  }

  async #retire(r: Reader): Promise<void> {
    if (r.carry > 0) this.#o.onText(`${r.buf.toString('utf8', 0, r.carry)}\n`);
    r.carry = 0;
    this.#old = this.#old.filter((x) => x !== r);
    await r.fh.close().catch(() => {});
  }

  /** Closes every descriptor; a partial last line of a drained file is handed over first. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const r of this.#old) await r.fh.close().catch(() => {});
    this.#old = [];
    if (this.#cur) await this.#cur.fh.close().catch(() => {});
    this.#cur = undefined;
    this.stats.open = false;
  }
}
