/**
 * What to watch for one config: the directory of every file it is made of, and the static base of
 * every `include` pattern (so a new file matching a glob is seen), plus the filter that decides
 * whether a file event concerns the config. Pure functions over the parsed payload.
 */
import { basename, dirname, isAbsolute, resolve, sep } from 'node:path';
import type { ConfigDirective, ConfigPayload } from '../../core/nginx/types.js';

/** Editor and tool temp files: vim swap and its `4913` probe, backups `~`, emacs `.#` and `#...#` locks, `*.tmp`. */
const TEMP_NAME = /(^\..*\.sw[a-p]$)|(\.sw[a-p]$)|(~$)|(^\.#)|(^#.*#$)|(^4913$)|(\.tmp$)|(\.swx$)|(^\.~lock\.)/;

/** True for editor/tool temp file names, which are never config. */
export function isTempFile(path: string): boolean {
  return TEMP_NAME.test(basename(path));
}

export function hasGlob(s: string): boolean {
  return /[*?[]/.test(s);
}

/** Absolute `include` patterns of every file of the payload, as nginx resolves them (relative to the config directory). */
export function includePatterns(payload: ConfigPayload, confDir: string): string[] {
  const out = new Set<string>();
  const walk = (list: ConfigDirective[] | undefined) => {
    for (const d of list ?? []) {
      if (d.directive === 'include' && d.args.length === 1 && !d.args[0].includes('$'))
        out.add(isAbsolute(d.args[0]) ? d.args[0] : resolve(confDir, d.args[0]));
      if (d.block) walk(d.block);
    }
  };
  for (const f of payload.config) walk(f.parsed);
  return [...out].sort();
}

/** glob(3) pattern to a RegExp over whole paths: `*`, `?`, `[...]`/`[!...]` within one segment; a leading `.` must be matched explicitly. */
export function globToRegExp(pattern: string): RegExp {
  const segs = pattern.split('/');
  const parts = segs.map((seg) => {
    let re = '';
    if (seg.length > 0 && seg[0] !== '.' && hasGlob(seg[0])) re += '(?!\\.)';
    for (let i = 0; i < seg.length; i++) {
      const c = seg[i];
      if (c === '*') re += '[^/]*';
      else if (c === '?') re += '[^/]';
      else if (c === '[') {
        const end = seg.indexOf(']', i + 2);
        if (end < 0) {
          re += '\\[';
          continue;
        }
        let body = seg.slice(i + 1, end);
        const neg = body[0] === '!' || body[0] === '^';
        if (neg) body = body.slice(1);
        re += `[${neg ? '^/' : ''}${body.replace(/[\\\]]/g, (x) => `\\${x}`)}]`;
        i = end;
      } else if (c === '\\' && i + 1 < seg.length) {
        re += escapeRe(seg[++i]);
      } else re += escapeRe(c);
    }
    return re;
  });
  return new RegExp(`^${parts.join('/')}$`);
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

export interface WatchPlan {
  /** Directories to watch. */
  dirs: string[];
  /** chokidar depth: levels below a watched directory that matter (0 = its direct entries). */
  depth: number;
  /** Files of the current config. */
  files: Set<string>;
  /** Include patterns as RegExps (literal includes match exactly). */
  patterns: RegExp[];
  /** Files never treated as config even when a pattern matches (access and error logs). */
  exclude: Set<string>;
}

/**
 * Builds the watch plan. `exists` tells whether a directory exists: a glob whose base is missing is
 * watched from its nearest existing ancestor, so creating the directory later is seen.
 */
export async function planWatch(opts: {
  files: readonly string[];
  patterns: readonly string[];
  exclude?: readonly string[];
  exists: (dir: string) => Promise<boolean>;
}): Promise<WatchPlan> {
  const dirs = new Map<string, number>();
  const want = (dir: string, depth: number) => dirs.set(dir, Math.max(dirs.get(dir) ?? 0, depth));
  for (const f of opts.files) want(dirname(f), 0);
  for (const p of opts.patterns) {
    const segs = p.split('/');
    const firstGlob = segs.findIndex((s) => hasGlob(s));
    // Base: everything before the first segment with a glob (for a literal path, its directory).
    let baseSegs = firstGlob < 0 ? segs.slice(0, -1) : segs.slice(0, firstGlob);
    let depth = firstGlob < 0 ? 0 : segs.length - firstGlob - 1;
    let base = baseSegs.join('/') || '/';
    for (let i = 0; i < 64 && base !== '/' && !(await opts.exists(base)); i++) {
      baseSegs = baseSegs.slice(0, -1);
      base = baseSegs.join('/') || '/';
      depth++;
    }
    want(base, depth);
  }
  // A directory inside another watched one needs no watcher of its own when the outer depth covers it.
  const list = [...dirs.entries()].sort((a, b) => a[0].length - b[0].length);
  const kept: [string, number][] = [];
  for (const [d, depth] of list) {
    const cover = kept.find(
      ([k, kd]) =>
        d.startsWith(k === '/' ? '/' : k + sep) && d.slice(k.length).split('/').filter(Boolean).length + depth <= kd,
    );
    if (!cover) kept.push([d, depth]);
  }
  return {
    dirs: kept.map(([d]) => d).sort(),
    depth: Math.max(0, ...kept.map(([_d, depth]) => depth)),
    files: new Set(opts.files),
    patterns: opts.patterns.map((p) => (hasGlob(p) ? globToRegExp(p) : new RegExp(`^${escapeAll(p)}$`))),
    exclude: new Set(opts.exclude ?? []),
  };
}

function escapeAll(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** Whether an event on `path` concerns the config described by `plan`. */
export function concernsConfig(plan: WatchPlan, path: string): boolean {
  if (isTempFile(path) || plan.exclude.has(path)) return false;
  if (plan.files.has(path)) return true;
  return plan.patterns.some((re) => re.test(path));
}
