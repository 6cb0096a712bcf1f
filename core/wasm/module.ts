/**
 * Checks a plugin folder without running it: manifest, module hash, exports and imports (ABI v1),
 * and caps the module's linear memory at `memory_mb` by rewriting its memory section's maximum,
 * so `memory.grow` past the cap fails inside the plugin instead of growing the agent.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { offeredImports, type PluginAbi, unsatisfiedImports, WASI } from './host-env.js';
import { MANIFEST_FILE, parseManifest, type Manifest } from './manifest.js';

export { EXTISM_ENV, EXTISM_USER, WASI } from './host-env.js';
const PAGE = 65_536;

/** The functions of `wasi_snapshot_preview1` (Node's WASI offers them all). */
export const WASI_FUNCTIONS = [
  'args_get',
  'args_sizes_get',
  'environ_get',
  'environ_sizes_get',
  'clock_res_get',
  'clock_time_get',
  'fd_advise',
  'fd_allocate',
  'fd_close',
  'fd_datasync',
  'fd_fdstat_get',
  'fd_fdstat_set_flags',
  'fd_fdstat_set_rights',
  'fd_filestat_get',
  'fd_filestat_set_size',
  'fd_filestat_set_times',
  'fd_pread',
  'fd_prestat_get',
  'fd_prestat_dir_name',
  'fd_pwrite',
  'fd_read',
  'fd_readdir',
  'fd_renumber',
  'fd_seek',
  'fd_sync',
  'fd_tell',
  'fd_write',
  'path_create_directory',
  'path_filestat_get',
  'path_filestat_set_times',
  'path_link',
  'path_open',
  'path_readlink',
  'path_remove_directory',
  'path_rename',
  'path_symlink',
  'path_unlink_file',
  'poll_oneoff',
  'proc_exit',
  'proc_raise',
  'sched_yield',
  'random_get',
  'sock_accept',
  'sock_recv',
  'sock_send',
  'sock_shutdown',
] as const;

export interface CheckedPlugin {
  dir: string;
  manifestFile: string;
  wasmFile: string;
  manifest: Manifest;
  /** The module as on disk. */
  bytes: Uint8Array<ArrayBuffer>;
  sha256: string;
  exports: { init: boolean; describe: boolean };
  /** The module imports WASI: it gets WASI, with only the `allowed_paths` directories. */
  wasi: boolean;
  /** `allowed_paths` with each host directory made absolute (relative ones are from the plugin folder). */
  allowedPaths: Record<string, string>;
}

/** Reads and checks the manifest of the plugin in `dir` (not its module); throws like checkPluginDir. */
export function readManifest(dir: string): Manifest {
  const manifestFile = join(dir, MANIFEST_FILE);
  if (!existsSync(manifestFile))
    throw new Error(`${manifestFile}: missing; a plugin folder holds plugin.yaml and its .wasm`);
  return parseManifest(readFileSync(manifestFile, 'utf8'), manifestFile);
}

/**
 * Reads and checks the plugin in `dir` (its manifest, or `manifest` when already read by
 * readManifest); throws an Error naming the file and what to fix.
 */
export function checkPluginDir(dir: string, manifest: Manifest = readManifest(dir)): CheckedPlugin {
  const manifestFile = join(dir, MANIFEST_FILE);
  const wasmFile = join(dir, manifest.wasm);
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = new Uint8Array(readFileSync(wasmFile));
  } catch (e) {
    throw new Error(
      `${wasmFile}: cannot read the module named by ${manifestFile} (wasm: ${manifest.wasm}): ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  const allowedPaths: Record<string, string> = {};
  for (const [host, guest] of Object.entries(manifest.allowed_paths)) {
    const abs = isAbsolute(host) ? host : resolve(dir, host);
    let isDir = false;
    try {
      isDir = statSync(abs).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir)
      throw new Error(
        `${manifestFile}: allowed_paths: host directory ${JSON.stringify(host)}${abs !== host ? ` (${abs})` : ''} does not exist or is not a directory (keys are host directories, values the path the plugin sees)`,
      );
    allowedPaths[abs] = guest;
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (manifest.sha256 && manifest.sha256 !== sha256) {
    throw new Error(
      `${wasmFile}: SHA-256 is ${sha256} but ${manifestFile} pins sha256 ${manifest.sha256}; the plugin is refused (update sha256 after reviewing the new module)`,
    );
  }
  let mod: WebAssembly.Module;
  try {
    mod = new WebAssembly.Module(bytes);
  } catch (e) {
    throw new Error(`${wasmFile}: not a valid WebAssembly module: ${(e as Error).message}`);
  }
  const abi = checkAbi(mod, manifest.abi);
  if (abi.length)
    throw new Error(
      `${wasmFile}: does not meet the plugin ABI v1 (abi: ${manifest.abi}):\n${abi.map((p) => `  - ${p}`).join('\n')}`,
    );
  const names = new Set(WebAssembly.Module.exports(mod).map((e) => e.name));
  const wasi = WebAssembly.Module.imports(mod).some((i) => i.module === WASI);
  return {
    dir,
    manifestFile,
    wasmFile,
    manifest,
    bytes,
    sha256,
    exports: { init: names.has('init') || names.has('wapc_init'), describe: names.has('describe') },
    wasi,
    allowedPaths,
  };
}

/**
 * Instantiates the module against exactly the imports the host offers for its ABI (inert stand-ins,
 * its start function removed, nothing run), so a module that would not link at load fails here,
 * naming the import. Throws an Error naming the file.
 */
export function linkCheck(checked: CheckedPlugin): void {
  const imports: WebAssembly.Imports = {};
  for (const [module, names] of offeredImports(checked.manifest.abi, WASI_FUNCTIONS)) {
    imports[module] = Object.fromEntries([...names].map((n) => [n, () => 0]));
  }
  try {
    new WebAssembly.Instance(new WebAssembly.Module(withoutStart(checked.bytes)), imports);
  } catch (e) {
    throw new Error(`${checked.wasmFile}: does not link against the host's imports: ${(e as Error).message}`);
  }
}

/** A copy of the module without its start section (section 8), so instantiating it runs nothing. */
export function withoutStart(bytes: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  let pos = 8;
  while (pos < bytes.length) {
    const id = bytes[pos];
    const [size, sizeLen] = readLeb(bytes, pos + 1);
    const end = pos + 1 + sizeLen + size;
    if (id === 8) {
      const out = new Uint8Array(bytes.length - (end - pos));
      out.set(bytes.subarray(0, pos), 0);
      out.set(bytes.subarray(end), pos);
      return out;
    }
    pos = end;
  }
  return bytes;
}

/**
 * ABI v1 problems of a compiled module: the entry export of its ABI (`process` for Extism,
 * `__guest_call` for waPC) and only imports the host offers (host-env.ts), each named.
 */
export function checkAbi(mod: WebAssembly.Module, abi: PluginAbi = 'extism'): string[] {
  const problems: string[] = [];
  const exports = WebAssembly.Module.exports(mod);
  const fn = (n: string) => exports.find((e) => e.name === n);
  if (abi === 'wapc') {
    if (fn('__guest_call')?.kind !== 'function')
      problems.push('no exported function "__guest_call" (every waPC guest exports it; see wasm-plugins/README.md)');
    if (fn('memory')?.kind !== 'memory') problems.push('no exported memory "memory" (waPC passes data through it)');
  } else if (fn('process')?.kind !== 'function')
    problems.push('no exported function "process" (every plugin exports process; see wasm-plugins/README.md)');
  for (const opt of ['init', 'describe']) {
    const e = fn(opt);
    if (e && e.kind !== 'function') problems.push(`export "${opt}" must be a function, it is a ${e.kind}`);
  }
  problems.push(...unsatisfiedImports(mod, abi, WASI_FUNCTIONS));
  return problems;
}

/**
 * Returns a copy of `bytes` whose defined memories have a maximum of at most `maxBytes`.
 * Throws when a memory's initial size is already above it. Modules without a memory are returned as is.
 */
export function capMemory(bytes: Uint8Array<ArrayBuffer>, maxBytes: number): Uint8Array<ArrayBuffer> {
  const maxPages = Math.max(1, Math.floor(maxBytes / PAGE));
  if (bytes.length < 8) return bytes;
  let pos = 8;
  while (pos < bytes.length) {
    const id = bytes[pos];
    const [size, sizeLen] = readLeb(bytes, pos + 1);
    const start = pos + 1 + sizeLen;
    const end = start + size;
    if (id === 5) {
      const payload: number[] = [];
      let p = start;
      const [count, cl] = readLeb(bytes, p);
      p += cl;
      writeLeb(payload, count);
      for (let i = 0; i < count; i++) {
        const flags = bytes[p++];
        const [min, ml] = readLeb(bytes, p);
        p += ml;
        let max = maxPages;
        if (flags & 1) {
          const [m, l] = readLeb(bytes, p);
          p += l;
          max = Math.min(m, maxPages);
        }
        if (min > maxPages)
          throw new Error(
            `the module's memory starts at ${(min * PAGE) / 1048576} MiB, above memory_mb ${maxBytes / 1048576}`,
          );
        payload.push(flags | 1);
        writeLeb(payload, min);
        writeLeb(payload, max);
      }
      const header: number[] = [5];
      writeLeb(header, payload.length);
      const out = new Uint8Array(start - sizeLen - 1 + header.length + payload.length + (bytes.length - end));
      out.set(bytes.subarray(0, pos), 0);
      out.set(header, pos);
      out.set(payload, pos + header.length);
      out.set(bytes.subarray(end), pos + header.length + payload.length);
      return out;
    }
    pos = end;
  }
  return bytes;
}

function readLeb(b: Uint8Array, pos: number): [number, number] {
  let result = 0;
  let shift = 0;
  let len = 0;
  for (;;) {
    const byte = b[pos + len++];
    if (byte === undefined) throw new Error('truncated module');
    result += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if ((byte & 0x80) === 0) return [result, len];
  }
}

function writeLeb(out: number[], v: number): void {
  do {
    let byte = v % 128;
    v = Math.floor(v / 128);
    if (v > 0) byte |= 0x80;
    out.push(byte);
  } while (v > 0);
}
