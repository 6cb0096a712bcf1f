/**
 * Reads a /proc, /sys or cgroup file synchronously with as few read(2) calls as possible.
 *
 * Why synchronous: these files are generated in memory by the kernel and never wait on a disk, and
 * an async `readFile` costs ~0.2 ms of CPU a file here (open, fstat, read, close each through the
 * thread pool) against ~0.01 ms for this.
 * Why stop at the first short read: /proc/net/tcp and tcp6 walk the kernel's whole socket hash
 * table on every read(2) (its size follows RAM, not the socket count: 1.8 ms per read here with two
 * sockets), so the usual extra read that returns 0 would double the cost. A seq_file read fills the
 * buffer unless the file has ended, so a short read is the end of the file.
 */
import { closeSync, openSync, readSync } from 'node:fs';

const CHUNK = 256 * 1024;

/** A reusable buffer so a cycle allocates no large buffer per file. */
export class FileReader {
  #buf = Buffer.allocUnsafe(CHUNK);

  /** The file's text; throws what `open(2)` throws (ENOENT, EACCES) so callers can leave it out. */
  read(path: string): string {
    const fd = openSync(path, 'r');
    try {
      let len = 0;
      for (;;) {
        if (len === this.#buf.length) {
          const bigger = Buffer.allocUnsafe(this.#buf.length * 2);
          this.#buf.copy(bigger, 0, 0, len);
          this.#buf = bigger;
        }
        const want = this.#buf.length - len;
        const n = readSync(fd, this.#buf, len, want, null);
        len += n;
        if (n < want) break;
      }
      return this.#buf.toString('utf8', 0, len);
    } finally {
      closeSync(fd);
    }
  }
}
