/**
 * Error-log check after a reload: remembers the size of each error log before the reload and
 * finds emerg/alert/crit lines appended after it.
 */
import { open, stat } from 'node:fs/promises';

const SEVERE = /\[(emerg|alert|crit)\]/;

/** emerg, alert and crit lines of an error-log excerpt, trimmed. */
export function severeLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => SEVERE.test(l));
}

/** Sizes of the given files now (missing files count as 0). */
export async function logOffsets(paths: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const p of paths) {
    try {
      out.set(p, (await stat(p)).size);
    } catch {
      out.set(p, 0);
    }
  }
  return out;
}

/** Severe lines appended to each file since `offsets` (a truncated/rotated file is read from 0), at most 64 KiB a file. */
export async function severeSince(offsets: ReadonlyMap<string, number>): Promise<{ path: string; line: string }[]> {
  const out: { path: string; line: string }[] = [];
  for (const [p, from] of offsets) {
    let fh;
    try {
      fh = await open(p, 'r');
      const size = (await fh.stat()).size;
      const start = size < from ? 0 : from;
      const len = Math.min(size - start, 64 * 1024);
      if (len <= 0) continue;
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, start);
      for (const line of severeLines(buf.toString('utf8'))) out.push({ path: p, line });
    } catch {
      /* unreadable or missing: nothing to report */
    } finally {
      await fh?.close();
    }
  }
  return out;
}
