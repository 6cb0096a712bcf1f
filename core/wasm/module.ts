/**
 * Checks a plugin folder without running it: manifest, module hash, exports and imports (ABI v1),
 * and caps the module's linear memory at `memory_mb` by rewriting its memory section's maximum,
 * so `memory.grow` past the cap fails inside the plugin instead of growing the agent.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MANIFEST_FILE, parseManifest, type Manifest } from './manifest.js';

export const EXTISM_ENV = 'extism:host/env';
export const EXTISM_USER = 'extism:host/user';
export const WASI = 'wasi_snapshot_preview1';
const PAGE = 65_536;

export interface CheckedPlugin {
  dir: string;
  manifestFile: string;
  wasmFile: string;
  manifest: Manifest;
  /** The module as on disk. */
  bytes: Uint8Array<ArrayBuffer>;
  sha256: string;
  exports: { init: boolean; describe: boolean };
  /** The module imports WASI (allowed only with `allowed_paths`). */
  wasi: boolean;
}

/** Reads and checks the plugin in `dir`; throws an Error naming the file and what to fix. */
export function checkPluginDir(dir: string): CheckedPlugin {
  const manifestFile = join(dir, MANIFEST_FILE);
  if (!existsSync(manifestFile))
    throw new Error(`${manifestFile}: missing; a plugin folder holds plugin.yaml and its .wasm`);
  const manifest = parseManifest(readFileSync(manifestFile, 'utf8'), manifestFile);
  const wasmFile = join(dir, manifest.wasm);
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = new Uint8Array(readFileSync(wasmFile));
  } catch (e) {
    throw new Error(
      `${wasmFile}: cannot read the module named by ${manifestFile} (wasm: ${manifest.wasm}): ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
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
  const abi = checkAbi(mod, Object.keys(manifest.allowed_paths).length > 0);
  if (abi.length)
    throw new Error(`${wasmFile}: does not meet the plugin ABI v1:\n${abi.map((p) => `  - ${p}`).join('\n')}`);
  const names = new Set(WebAssembly.Module.exports(mod).map((e) => e.name));
  const wasi = WebAssembly.Module.imports(mod).some((i) => i.module === WASI);
  return {
    dir,
    manifestFile,
    wasmFile,
    manifest,
    bytes,
    sha256,
    exports: { init: names.has('init'), describe: names.has('describe') },
    wasi,
  };
}

/**
 * ABI v1 problems of a compiled module: `process` exported; imports only from Extism's kernel and
 * `publish`, plus WASI when the manifest grants `allowed_paths` (files need WASI).
 */
export function checkAbi(mod: WebAssembly.Module, allowWasi = false): string[] {
  const problems: string[] = [];
  const exports = WebAssembly.Module.exports(mod);
  const fn = (n: string) => exports.find((e) => e.name === n);
  if (fn('process')?.kind !== 'function')
    problems.push('no exported function "process" (every plugin exports process; see wasm-plugins/README.md)');
  for (const opt of ['init', 'describe']) {
    const e = fn(opt);
    if (e && e.kind !== 'function') problems.push(`export "${opt}" must be a function, it is a ${e.kind}`);
  }
  for (const imp of WebAssembly.Module.imports(mod)) {
    const ok =
      (imp.module === EXTISM_ENV && imp.kind === 'function') ||
      (imp.module === EXTISM_USER && imp.name === 'publish' && imp.kind === 'function') ||
      (allowWasi && imp.module === WASI && imp.kind === 'function');
    if (!ok) {
      problems.push(
        `imports ${imp.kind} "${imp.module}"."${imp.name}": only Extism's kernel functions ("${EXTISM_ENV}") and "${EXTISM_USER}"."publish" are offered (other host functions are not; WASI only with allowed_paths in plugin.yaml)`,
      );
    }
  }
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
