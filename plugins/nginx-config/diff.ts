/** Files added, removed and changed between two config versions. */
import type { ConfigFileInfo } from '../../core/nginx/types.js';

export interface FileDiff {
  added: string[];
  removed: string[];
  changed: string[];
}

/** Compares by path and sha256; every list is sorted. `before` undefined means a first parse: all added. */
export function diffFiles(before: readonly ConfigFileInfo[] | undefined, after: readonly ConfigFileInfo[]): FileDiff {
  const prev = new Map((before ?? []).map((f) => [f.path, f.sha256]));
  const next = new Map(after.map((f) => [f.path, f.sha256]));
  const added: string[] = [];
  const changed: string[] = [];
  const removed: string[] = [];
  for (const [p, h] of next) {
    const old = prev.get(p);
    if (old === undefined) added.push(p);
    else if (old !== h) changed.push(p);
  }
  for (const p of prev.keys()) if (!next.has(p)) removed.push(p);
  return { added: added.sort(), removed: removed.sort(), changed: changed.sort() };
}
