/**
 * Follows one log file as it grows, in chunks, through rotation.
 *
 * Each `poll()` reads what was appended since the last one (64 KiB reads into one reused buffer),
 * hands complete lines to `onText`, and keeps a partial last line for the next poll. Then it
 * stats the path:
 * - another inode at the path (logrotate `create` then `nginx -s reopen`): the old descriptor is
 *   kept and read on every poll while a process of the nginx instance still holds the file
 *   (`isHeld`, from /proc/PID/fd), or, when that cannot be told, until it has been quiet for
 *   `drainQuietMs`; the new file is read from its start;
 * - the same inode but smaller than our offset, or the bytes just before our offset changed
 *   (copytruncate, even when the file grew back past our offset between two polls): what we had not
 *   read yet is read from the copy (the newest file beside it whose head is the head we saw), then
 *   the file is read from 0;
 * - no file yet: it is picked up, from its start, when it appears.
 * On first sight an existing file is read from a saved position (`resume`, bounded by
 * `catchUpMaxBytes`), else from its end (`startAt: 'end'`) or its start.
 * Only regular files are opened (non-blocking, so a FIFO cannot hang a poll); anything else is
 * refused with an error naming the path, and every descriptor opened is closed.
 */
import { constants, readSync, statSync } from 'node:fs';
import { open, readdir, stat, statfs, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Where a tailer was in its file: enough to find the file again and to recognise its bytes. */
export interface SavedPosition {
  dev: number;
  ino: number;
  /** Offset of the first byte not yet handed over (the start of a partial line). */
  offset: number;
  /** Base64 of the file's first bytes (up to 64). */
  head: string;
  /** Base64 of the bytes just before `offset` (up to 32). */
  tail: string;
}

/** Settings of one tailer; sizes in bytes, times in ms. */
export interface TailerOptions {
  path: string;
  /** Where to start in a file that exists when the tailer first looks (and `resume` is not given). */
  startAt: 'end' | 'beginning';
  /** Called with complete lines (each ending in `\n`). Must not throw. */
  onText: (text: string) => void;
  /** Read size; the buffer grows up to `maxLineBytes` for a longer line. */
  chunkBytes?: number;
  /** A line longer than this is dropped and counted in `stats.oversizedLines`. */
  maxLineBytes?: number;
  /** When `isHeld` cannot tell: how long a rotated-away file must stay unchanged before it is closed. */
  drainQuietMs?: number;
  /** Bytes read per poll at most (the rest waits for the next poll), so one huge file cannot starve others. */
  maxBytesPerPoll?: number;
  /** A position saved by an earlier run: on first sight, read on from there. */
  resume?: SavedPosition;
  /** At most this many bytes are read to catch up from `resume`; older ones are skipped with a warning. */
  catchUpMaxBytes?: number;
  /**
   * Whether a writer (an nginx process) still has the file open; `undefined` when it cannot be told
   * (no process known, /proc not readable). A rotated-away file is closed once no writer holds it.
   */
  isHeld?: (dev: number, ino: number) => Promise<boolean | undefined>;
  /** Things worth a log line (catch-up cut short, copy found). */
  onWarning?: (message: string) => void;
  now?: () => number;
}

/** Bytes kept from just before the offset to recognise a file truncated and regrown between polls. */
const FINGERPRINT = 32;
/** Bytes of the head of a file kept to recognise its copytruncate copy. */
const HEAD = 64;
/** How often at most the holders of a rotated-away file are looked up. */
const HOLDER_CHECK_MS = 200;
/**
 * A log whose last change (mtime, ctime) is this old is polled with one stat until the stat changes.
 * File times have a granularity (a jiffy, up to 2 s on some file systems): a file changed again
 * within it could keep its times, so a file that just changed gets the full poll.
 */
const QUIET_AFTER_MS = 2500;
/**
 * File systems on local storage (statfs `f_type`): ext2/3/4, XFS, Btrfs, tmpfs, ramfs, overlayfs,
 * ZFS, F2FS. A stat there is answered from the inode cache and cannot hang, nor can a read of the few
 * bytes just read or written, so the quiet poll's stat and the fingerprint and head reads are
 * synchronous (a few microseconds against ~0.1 ms of CPU each through the thread pool); on any other
 * (NFS, SMB, FUSE...) they stay asynchronous, so a stuck mount holds up no other log. The log's
 * lines themselves are always read asynchronously (a catch-up may read megabytes from the disk).
 */
const LOCAL_FS_TYPES: ReadonlySet<number> = new Set([
  0xef53, 0x58465342, 0x9123683e, 0x01021994, 0x858458f6, 0x794c7630, 0x2fc12fc1, 0xf2f52010,
]);
/** Rotated copies beside the log that are looked at for a copytruncate, newest first. */
const MAX_COPY_CANDIDATES = 5;
const COMPRESSED = /\.(gz|bz2|xz|zst|lz4|z|zip)$/i;

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
  head: Buffer;
  headLen: number;
  lastGrowth: number;
  lastHolderCheck: number;
  held: boolean | undefined;
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
  /** Bytes skipped because a catch-up after a restart was over `catchUpMaxBytes`. */
  skippedBytes: number;
  lastError?: string;
}

type Settings = Required<Omit<TailerOptions, 'resume' | 'isHeld' | 'onWarning'>> &
  Pick<TailerOptions, 'resume' | 'isHeld' | 'onWarning'>;

/** Follows one path; `poll()` on a timer or a file event, `close()` at the end. */
export class LogTailer {
  readonly #settings: Settings;
  #current: Reader | undefined;
  #rotated: Reader[] = [];
  #firstLook = true;
  #closed = false;
  /** The path's stat when the last poll read the file to its end with nothing rotated away; else undefined. */
  #quiet: { ino: number; dev: number; size: number; mtimeMs: number; ctimeMs: number } | undefined;
  /** Whether the path's file system is local (LOCAL_FS_TYPES), learnt once per file followed (synchronous stats and peeks). */
  #localFs: boolean | undefined;
  /** The last position handed out and what it was taken from: the same again while none of that moves. */
  #lastPosition: { key: string; reader: Reader; position: SavedPosition } | undefined;
  readonly stats: TailerStats;

  constructor(options: TailerOptions) {
    this.#settings = {
      chunkBytes: 64 * 1024,
      maxLineBytes: 1024 * 1024,
      drainQuietMs: 5000,
      maxBytesPerPoll: 64 * 1024 * 1024,
      catchUpMaxBytes: Number.POSITIVE_INFINITY,
      now: Date.now,
      ...options,
    };
    this.stats = {
      path: options.path,
      open: false,
      offset: 0,
      bytesRead: 0,
      rotations: 0,
      truncations: 0,
      oversizedLines: 0,
      draining: 0,
      skippedBytes: 0,
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
    this.stats.open = this.#current !== undefined;
    this.stats.offset = this.#current?.pos ?? 0;
    this.stats.inode = this.#current?.ino;
    this.stats.draining = this.#rotated.length;
  }

  /**
   * Where the current file has been read to (the start of a partial line), to be saved and given
   * back as `resume` after a restart; undefined while no file is open.
   */
  async position(): Promise<SavedPosition | undefined> {
    const reader = this.#current;
    if (!reader || this.#closed) return undefined;
    const offset = reader.pos - reader.carry;
    // Saved every few seconds: while the reader, its offsets, its head and the truncations seen stay
    // the same, so do the bytes before the offset (the fingerprint check of each poll watches them).
    const key = `${offset}:${reader.pos}:${reader.headLen}:${this.stats.truncations}`;
    const last = this.#lastPosition;
    if (last?.reader === reader && last.key === key) return last.position;
    const tail = Buffer.alloc(Math.min(FINGERPRINT, offset));
    let tailLen = 0;
    try {
      if (tail.length) tailLen = await this.#peek(reader.fh, tail, tail.length, offset - tail.length);
    } catch {
      return undefined; // closed meanwhile
    }
    const position = {
      dev: reader.dev,
      ino: reader.ino,
      offset,
      head: reader.head.subarray(0, reader.headLen).toString('base64'),
      tail: tail.subarray(0, tailLen).toString('base64'),
    };
    this.#lastPosition = { key, reader, position };
    return position;
  }

  async #poll(): Promise<void> {
    if (await this.#unchanged()) return;
    this.#quiet = undefined;
    const now = this.#settings.now();
    // Rotated-away files first: their lines are older.
    for (const reader of [...this.#rotated]) {
      const held = await this.#holderState(reader, now);
      const bytes = await this.#drain(reader);
      if (this.#closed) return;
      if (bytes > 0) reader.lastGrowth = now;
      if (bytes >= this.#settings.maxBytesPerPoll) continue; // more to read first
      // `held` was taken before the drain: what a writer wrote before closing it has been read.
      const done = held === undefined ? bytes === 0 && now - reader.lastGrowth >= this.#settings.drainQuietMs : !held;
      if (done) await this.#retire(reader);
    }
    if (this.#closed) return;
    if (!this.#current) {
      const first = this.#firstLook;
      this.#firstLook = false;
      const file = await this.#openRegular(this.#settings.path);
      if (!file) return;
      if (first && this.#settings.resume) this.#current = await this.#resume(file, this.#settings.resume);
      else this.#current = await this.#reader(file, first && this.#settings.startAt === 'end' ? file.st.size : 0);
      if (this.#closed) return;
    }
    const current = this.#current;
    this.#localFs ??= await statfs(this.#settings.path).then(
      (fs) => LOCAL_FS_TYPES.has(fs.type),
      () => false,
    );
    if (await this.#checkTruncated(current)) await this.#drainRotated();
    await this.#drain(current);
    let st: Stats;
    try {
      st = await stat(this.#settings.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // renamed away, not recreated yet: keep reading the old one
      throw err;
    }
    if (st.ino !== current.ino || st.dev !== current.dev) {
      // Rotated: drain what nginx already wrote, keep the old file open while nginx holds it.
      await this.#drain(current);
      current.lastGrowth = now;
      this.#rotated.push(current);
      this.stats.rotations++;
      this.#current = undefined;
      this.#localFs = undefined; // the new file may be elsewhere (a symbolic link)
      const file = await this.#openRegular(this.#settings.path);
      if (!file) return;
      this.#current = await this.#reader(file, 0);
      await this.#drain(this.#current);
    } else if (st.size < current.pos) {
      await this.#truncated(current);
      await this.#drainRotated();
      await this.#drain(current);
    } else if (
      st.size === current.pos &&
      this.#rotated.length === 0 &&
      now - Math.max(st.mtimeMs, st.ctimeMs) >= QUIET_AFTER_MS
    ) {
      // Read to the end of the file at the path, nothing rotated away to drain, and its last change
      // old enough that any later one gets other times: until the path's stat changes, a poll has
      // nothing to do.
      this.#quiet = { ino: st.ino, dev: st.dev, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs };
    }
  }

  /**
   * The quiet poll: one stat of the path, and nothing else when it is the file read to its end at the
   * last poll, with the same size, modification and change times (no write, rotation or truncation
   * since: a copytruncate regrown to the very same size still moves the times, QUIET_AFTER_MS). A
   * quiet log then costs one system call a poll instead of two reads and a stat.
   */
  async #unchanged(): Promise<boolean> {
    const quiet = this.#quiet;
    const current = this.#current;
    if (!quiet || !current || this.#rotated.length) return false;
    let st: Stats | undefined;
    try {
      st = this.#localFs ? statSync(this.#settings.path, { throwIfNoEntry: false }) : await stat(this.#settings.path);
    } catch {
      st = undefined;
    }
    if (!st) return false; // the full poll says what happened
    return (
      st.ino === quiet.ino &&
      st.dev === quiet.dev &&
      st.size === quiet.size &&
      st.mtimeMs === quiet.mtimeMs &&
      st.ctimeMs === quiet.ctimeMs &&
      this.#quiet === quiet &&
      this.#current === current &&
      current.pos === quiet.size
    );
  }

  /** Opens `path` if it is a regular file; undefined when it does not exist; throws for anything else. */
  async #openRegular(path: string): Promise<{ fh: FileHandle; st: Stats } | undefined> {
    let fh: FileHandle;
    try {
      // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, holding a thread.
      fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile())
        throw new Error(`${path} is ${kindOf(st)}, not a regular file: refused (only regular log files are followed)`);
      return { fh, st };
    } catch (err) {
      await fh.close().catch(() => {});
      throw err;
    }
  }

  async #reader(file: { fh: FileHandle; st: Stats }, pos: number): Promise<Reader> {
    const reader: Reader = {
      fh: file.fh,
      ino: file.st.ino,
      dev: file.st.dev,
      pos,
      carry: 0,
      buf: Buffer.allocUnsafe(this.#settings.chunkBytes),
      fingerprint: Buffer.alloc(FINGERPRINT),
      fpLen: 0,
      head: Buffer.alloc(HEAD),
      headLen: 0,
      lastGrowth: this.#settings.now(),
      lastHolderCheck: Number.NEGATIVE_INFINITY,
      held: undefined,
    };
    if (this.#closed) {
      await file.fh.close().catch(() => {});
      return reader;
    }
    await this.#takeHead(reader);
    if (pos > 0) await this.#takeFingerprint(reader);
    return reader;
  }

  /**
   * First sight with a saved position: read on from it in the same file, or, when the file was
   * rotated or truncated while we were away, from the rotated file, then the new one from its start.
   */
  async #resume(file: { fh: FileHandle; st: Stats }, saved: SavedPosition): Promise<Reader> {
    const head = Buffer.from(saved.head, 'base64');
    const tail = Buffer.from(saved.tail, 'base64');
    let budget = this.#settings.catchUpMaxBytes;
    const cut: string[] = [];
    /** Start reading at `from` unless fewer than `size - from` bytes are left in the budget. */
    const startIn = (name: string, from: number, size: number): number => {
      const start = Math.max(from, size - budget);
      if (start > from) {
        cut.push(`${start - from} bytes of ${name}`);
        this.stats.skippedBytes += start - from;
      }
      budget = Math.max(0, budget - (size - start));
      return start;
    };
    const sameFile = file.st.ino === saved.ino && file.st.dev === saved.dev;
    let current: Reader;
    if (sameFile && (await bytesAt(file.fh, saved.offset, tail, file.st.size))) {
      current = await this.#reader(file, 0);
      await this.#seekLine(current, startIn(this.#settings.path, saved.offset, file.st.size));
    } else {
      // Rotated (another inode) or truncated (copytruncate) while we were away.
      const older = sameFile
        ? await this.#findCopy(head, tail, saved.offset, file.st)
        : await this.#findRotated(saved, tail, file.st);
      if (sameFile) this.stats.truncations++;
      else this.stats.rotations++;
      current = await this.#reader(file, 0);
      await this.#seekLine(current, startIn(this.#settings.path, 0, file.st.size));
      if (older) {
        const reader = await this.#reader(older.file, 0);
        await this.#seekLine(reader, startIn(older.name, saved.offset, older.file.st.size));
        this.#rotated.push(reader);
        await this.#drainRotated();
      }
    }
    if (cut.length)
      this.#settings.onWarning?.(
        `${this.#settings.path}: the lines written while the agent was not reading are over nginx_logs.catch_up_max_bytes (${this.#settings.catchUpMaxBytes} bytes); skipped the oldest ${cut.join(' and ')}`,
      );
    return current;
  }

  /** Puts `reader` at the start of the first line that begins at or after `pos`. */
  async #seekLine(reader: Reader, pos: number): Promise<void> {
    if (pos <= 0) {
      reader.pos = 0;
    } else {
      const before = Buffer.alloc(1);
      const { bytesRead } = await reader.fh.read(before, 0, 1, pos - 1);
      reader.pos = pos;
      if (bytesRead === 1 && before[0] !== 10) await this.#skipToNewline(reader);
    }
    await this.#takeFingerprint(reader);
  }

  /** The file a rename rotation left beside the path: same device and inode as the saved one. */
  async #findRotated(
    saved: SavedPosition,
    tail: Buffer,
    exclude: Stats,
  ): Promise<{ file: { fh: FileHandle; st: Stats }; name: string } | undefined> {
    for (const name of await this.#siblings(exclude)) {
      const file = await this.#openRegular(name).catch(() => undefined);
      if (!file) continue;
      if (
        file.st.ino === saved.ino &&
        file.st.dev === saved.dev &&
        (await bytesAt(file.fh, saved.offset, tail, file.st.size))
      )
        return { file, name };
      await file.fh.close().catch(() => {});
    }
    return undefined;
  }

  /**
   * The copy a copytruncate made: the newest file beside the path whose head is `head` and, when it
   * reaches `offset`, whose bytes before `offset` are `tail`.
   */
  async #findCopy(
    head: Buffer,
    tail: Buffer,
    offset: number,
    exclude: Stats,
  ): Promise<{ file: { fh: FileHandle; st: Stats }; name: string } | undefined> {
    if (head.length === 0) return undefined;
    for (const name of await this.#siblings(exclude)) {
      const file = await this.#openRegular(name).catch(() => undefined);
      if (!file) continue;
      const probe = Buffer.alloc(head.length);
      const { bytesRead } = await file.fh.read(probe, 0, head.length, 0);
      if (
        bytesRead === head.length &&
        probe.equals(head) &&
        (file.st.size < offset || (await bytesAt(file.fh, offset, tail, file.st.size)))
      )
        return { file, name };
      await file.fh.close().catch(() => {});
    }
    return undefined;
  }

  /** Regular files beside the path named after it (`access.log.1`, `access.log-20250101`), newest first. */
  async #siblings(exclude: Stats): Promise<string[]> {
    const dir = dirname(this.#settings.path);
    const base = basename(this.#settings.path);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return [];
    }
    const found: { name: string; mtime: number }[] = [];
    for (const name of names) {
      if (name === base || !name.startsWith(base) || COMPRESSED.test(name)) continue;
      if (!/^[.\-_]/.test(name.slice(base.length))) continue;
      const full = join(dir, name);
      const st = await stat(full).catch(() => undefined);
      if (!st?.isFile() || (st.ino === exclude.ino && st.dev === exclude.dev)) continue;
      found.push({ name: full, mtime: st.mtimeMs });
    }
    return found
      .sort((a, b) => b.mtime - a.mtime)
      .slice(0, MAX_COPY_CANDIDATES)
      .map((f) => f.name);
  }

  async #takeFingerprint(reader: Reader): Promise<void> {
    const len = Math.min(FINGERPRINT, reader.pos);
    reader.fpLen = await this.#peek(reader.fh, reader.fingerprint, len, reader.pos - len);
  }

  async #takeHead(reader: Reader): Promise<void> {
    if (reader.headLen >= HEAD) return;
    reader.headLen = await this.#peek(reader.fh, reader.head, HEAD, 0);
  }

  /**
   * A read of at most a few dozen bytes that were just read or written (the fingerprint, the head,
   * the bytes before a saved offset): synchronous on a local file system, where the page cache has
   * them (microseconds, against a thread-pool round trip per read, four a second on a busy log).
   */
  async #peek(fh: FileHandle, buf: Buffer, length: number, position: number): Promise<number> {
    if (this.#localFs) return readSync(fh.fd, buf, 0, length, position);
    return (await fh.read(buf, 0, length, position)).bytesRead;
  }

  /** copytruncate that regrew past our offset: the bytes before the offset are not the ones we read. */
  async #checkTruncated(reader: Reader): Promise<boolean> {
    if (reader.fpLen === 0) return false;
    const probe = Buffer.allocUnsafe(reader.fpLen);
    const bytesRead = await this.#peek(reader.fh, probe, reader.fpLen, reader.pos - reader.fpLen);
    if (bytesRead === reader.fpLen && probe.equals(reader.fingerprint.subarray(0, reader.fpLen))) return false;
    await this.#truncated(reader);
    return true;
  }

  /**
   * The file was truncated under us (copytruncate): what we had not read yet went to its copy, if
   * we can find it; read that first (as a rotated file), then the file from 0.
   */
  async #truncated(reader: Reader): Promise<void> {
    this.stats.truncations++;
    const st = await reader.fh.stat();
    const copy = await this.#findCopy(
      reader.head.subarray(0, reader.headLen),
      reader.fingerprint.subarray(0, reader.fpLen),
      reader.pos,
      st,
    );
    if (copy) {
      const rest = await this.#reader(copy.file, 0);
      rest.pos = reader.pos;
      rest.buf = reader.buf;
      rest.carry = reader.carry;
      this.#rotated.push(rest);
      reader.buf = Buffer.allocUnsafe(this.#settings.chunkBytes);
    }
    reader.pos = 0;
    reader.carry = 0;
    reader.fpLen = 0;
    reader.headLen = 0;
  }

  async #drainRotated(): Promise<void> {
    for (const reader of this.#rotated) await this.#drain(reader);
  }

  /** Who holds a rotated-away file, looked up at most every HOLDER_CHECK_MS. */
  async #holderState(reader: Reader, now: number): Promise<boolean | undefined> {
    if (!this.#settings.isHeld) return undefined;
    if (now - reader.lastHolderCheck >= HOLDER_CHECK_MS || reader.held === false) {
      reader.lastHolderCheck = now;
      reader.held = await this.#settings.isHeld(reader.dev, reader.ino).catch(() => undefined);
    }
    return reader.held;
  }

  /** Reads `reader` to its end (bounded by maxBytesPerPoll); returns bytes read. */
  async #drain(reader: Reader): Promise<number> {
    let total = 0;
    while (total < this.#settings.maxBytesPerPoll && !this.#closed) {
      if (reader.carry === reader.buf.length) {
        if (reader.buf.length >= this.#settings.maxLineBytes) {
          // One line longer than we accept: drop what we have of it and the rest up to its newline.
          this.stats.oversizedLines++;
          reader.carry = 0;
          reader.buf = Buffer.allocUnsafe(this.#settings.chunkBytes);
          await this.#skipToNewline(reader);
          continue;
        }
        const bigger = Buffer.allocUnsafe(Math.min(reader.buf.length * 2, this.#settings.maxLineBytes));
        reader.buf.copy(bigger, 0, 0, reader.carry);
        reader.buf = bigger;
      }
      const wanted = reader.buf.length - reader.carry;
      const { bytesRead } = await reader.fh.read(reader.buf, reader.carry, wanted, reader.pos);
      if (bytesRead === 0 || this.#closed) break;
      // A short read is the end of the file for now: the next poll reads on (no read that returns 0).
      const atEnd = bytesRead < wanted;
      reader.pos += bytesRead;
      total += bytesRead;
      this.stats.bytesRead += bytesRead;
      const filled = reader.carry + bytesRead;
      const lastNl = reader.buf.lastIndexOf(10, filled - 1);
      if (lastNl < 0) {
        reader.carry = filled;
        if (atEnd) break;
        continue;
      }
      const text = reader.buf.toString('utf8', 0, lastNl + 1);
      reader.carry = filled - lastNl - 1;
      if (reader.carry) reader.buf.copy(reader.buf, 0, lastNl + 1, filled);
      this.#settings.onText(text);
      if (atEnd) break;
    }
    if (total > 0 && !this.#closed) {
      await this.#takeFingerprint(reader);
      await this.#takeHead(reader);
    }
    return total;
  }

  async #skipToNewline(reader: Reader): Promise<void> {
    for (;;) {
      const { bytesRead } = await reader.fh.read(reader.buf, 0, reader.buf.length, reader.pos);
      if (bytesRead === 0) return;
      const nl = reader.buf.subarray(0, bytesRead).indexOf(10);
      if (nl >= 0) {
        reader.pos += nl + 1;
        return;
      }
      reader.pos += bytesRead;
    }
  }

  async #retire(reader: Reader): Promise<void> {
    if (reader.carry > 0) this.#settings.onText(`${reader.buf.toString('utf8', 0, reader.carry)}\n`);
    reader.carry = 0;
    this.#rotated = this.#rotated.filter((x) => x !== reader);
    await reader.fh.close().catch(() => {});
  }

  /** Closes every descriptor. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const readers = [...this.#rotated, ...(this.#current ? [this.#current] : [])];
    this.#rotated = [];
    this.#current = undefined;
    this.stats.open = false;
    for (const reader of readers) await reader.fh.close().catch(() => {});
  }
}

/** Whether the `expected.length` bytes before `offset` in the file are `expected`. */
async function bytesAt(fh: FileHandle, offset: number, expected: Buffer, size: number): Promise<boolean> {
  if (offset > size || expected.length > offset) return false;
  if (expected.length === 0) return true;
  const probe = Buffer.alloc(expected.length);
  const { bytesRead } = await fh.read(probe, 0, expected.length, offset - expected.length);
  return bytesRead === expected.length && probe.equals(expected);
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a file';
}
