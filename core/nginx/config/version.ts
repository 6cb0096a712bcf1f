/** Config version: one sha256 over every config file, in sorted path order. */
import { createHash } from 'node:crypto';
import type { ConfigFileInfo } from '../types.js';

/**
 * Hashes `path NUL content` of each file in sorted path order (stable whatever order the files
 * come in) and returns the hex digest plus each file's own sha256 and size.
 */
export function configVersion(files: { path: string; content: Buffer | string }[]): {
  version: string;
  files: ConfigFileInfo[];
} {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const all = createHash('sha256');
  const infos: ConfigFileInfo[] = [];
  for (const f of sorted) {
    const buf = typeof f.content === 'string' ? Buffer.from(f.content, 'utf8') : f.content;
    all.update(f.path, 'utf8');
    all.update(Buffer.from([0]));
    all.update(buf);
    infos.push({ path: f.path, sha256: createHash('sha256').update(buf).digest('hex'), size: buf.length });
  }
  return { version: all.digest('hex'), files: infos };
}
