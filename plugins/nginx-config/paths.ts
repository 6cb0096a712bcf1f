/**
 * Where an apply may write: a requested path is resolved the way the kernel will resolve it
 * (relative to the config directory, `..` folded, every existing symlink followed through the
 * realpath of its deepest existing ancestor) and must land inside one of `allowed_directories`
 * (themselves realpath'd). Pure apart from the injected `realpath`/`lstat`.
 */
import { lstat as fsLstat, realpath as fsRealpath } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

export interface PathFs {
  realpath(p: string): Promise<string>;
  /** Resolves to null when the path does not exist. */
  lstat(p: string): Promise<{ isDirectory(): boolean; isFile(): boolean; isSymbolicLink(): boolean } | null>;
}

export const nodePathFs: PathFs = {
  realpath: (p) => fsRealpath(p),
  lstat: async (p) => {
    try {
      return await fsLstat(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR')
        return null;
      throw e;
    }
  },
};

export type Resolved =
  | { ok: true; requested: string; real: string; exists: boolean }
  | { ok: false; requested: string; reason: string };

/** True when `p` is `dir` or inside it (both absolute, normalised). */
export function isInside(p: string, dir: string): boolean {
  const rel = relative(dir, p);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/** realpath of the deepest existing ancestor of `abs`, with the missing tail appended. */
export async function realpathDeep(abs: string, fs: PathFs = nodePathFs): Promise<{ real: string; exists: boolean }> {
  const tail: string[] = [];
  let cur = abs;
  for (let i = 0; i < 4096; i++) {
    const st = await fs.lstat(cur);
    if (st) {
      // A dangling symlink exists for lstat but not for realpath: treat it as a refusal-worthy target
      // by resolving what it points at (realpath throws ENOENT), via its parent instead.
      let real: string;
      try {
        real = await fs.realpath(cur);
      } catch {
        if (st.isSymbolicLink()) throw new Error(`${cur} is a symbolic link to a missing target`);
        throw new Error(`cannot resolve ${cur}`);
      }
      return { real: tail.length ? join(real, ...tail.reverse()) : real, exists: tail.length === 0 };
    }
    const parent = dirname(cur);
    if (parent === cur) break;
    tail.push(cur.slice(parent.length).replace(/^\/+/, ''));
    cur = parent;
  }
  return { real: abs, exists: false };
}

/** The realpaths of the allowed directories that exist (a missing one allows nothing). */
export async function resolveAllowedDirs(dirs: readonly string[], fs: PathFs = nodePathFs): Promise<string[]> {
  const out: string[] = [];
  for (const d of dirs) {
    if (!isAbsolute(d)) continue;
    try {
      out.push(await fs.realpath(resolve(d)));
    } catch {
      /* a directory that does not exist allows nothing */
    }
  }
  return out;
}

/**
 * Resolves `requested` (absolute, or relative to `baseDir`) and checks it against `allowedReal`
 * (from {@link resolveAllowedDirs}). The returned `real` is the path to write: it never differs
 * from what the kernel would open, so a symlink or `..` cannot lead outside.
 */
export async function resolveInside(
  requested: string,
  baseDir: string,
  allowedReal: readonly string[],
  fs: PathFs = nodePathFs,
): Promise<Resolved> {
  if (typeof requested !== 'string' || requested === '' || requested.includes('\0'))
    return { ok: false, requested: String(requested), reason: 'path must be a non-empty string without NUL bytes' };
  const abs = resolve(baseDir, requested);
  let real: string;
  let exists: boolean;
  try {
    ({ real, exists } = await realpathDeep(abs, fs));
  } catch (e) {
    return { ok: false, requested, reason: (e as Error).message };
  }
  const inside = allowedReal.find((d) => isInside(real, d));
  if (!inside)
    return {
      ok: false,
      requested,
      reason: `${requested} resolves to ${real}, outside allowed_directories (${allowedReal.join(', ') || 'none exist'}); add its directory to nginx_config.allowed_directories to allow it`,
    };
  if (real === inside)
    return { ok: false, requested, reason: `${requested} is an allowed directory itself, not a file` };
  if (exists) {
    const st = await fs.lstat(real);
    if (st && !st.isFile())
      return { ok: false, requested, reason: `${requested} (${real}) exists and is not a regular file` };
  }
  return { ok: true, requested, real, exists };
}
