/**
 * Test helpers: compile the WAT fixtures under core/wasm/testdata with the npm `wabt` package and
 * lay out plugin folders (plugin.yaml + .wasm) in a temporary directory.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import initWabt from 'wabt';
import { stringify } from 'yaml';

export const TESTDATA = join(dirname(fileURLToPath(import.meta.url)), 'testdata');
/** The vendored Extism C PDK (extism-pdk.h). */
export const C_PDK = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'wasm-plugins', '_lib', 'c');

/**
 * Compiles a C fixture of testdata/ with clang and the Extism C PDK, as wasm-plugins/README.md says:
 * `wasm32-unknown-unknown` without libc, or with `wasi` linked to wasi-libc (a WASI reactor).
 */
export function compileC(name: string, { wasi = false } = {}): Uint8Array<ArrayBuffer> {
  const out = join(mkdtempSync(join(tmpdir(), 'wasm-c-')), `${name}.wasm`);
  const target = wasi
    ? ['--target=wasm32-wasi', '--sysroot=/usr', '-mexec-model=reactor']
    : ['--target=wasm32-unknown-unknown', '-nostdlib', '-Wl,--no-entry'];
  const r = spawnSync(
    'clang',
    [...target, '-O2', '-mbulk-memory', '-I', C_PDK, '-o', out, join(TESTDATA, `${name}.c`)],
    {
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) throw new Error(`clang failed on testdata/${name}.c: ${r.stderr || r.error?.message}`);
  return new Uint8Array(readFileSync(out));
}

let wabt: Awaited<ReturnType<typeof initWabt>> | undefined;

/** Compiles WebAssembly text to a module binary. */
export async function compileWatText(text: string, name = 'plugin.wat'): Promise<Uint8Array<ArrayBuffer>> {
  wabt ??= await initWabt();
  const mod = wabt.parseWat(name, text);
  try {
    mod.resolveNames();
    mod.validate();
    return new Uint8Array(mod.toBinary({ log: false, write_debug_names: false }).buffer);
  } finally {
    mod.destroy();
  }
}

/** Text of a fixture, e.g. `watText('echo')`. */
export function watText(name: string): string {
  return readFileSync(join(TESTDATA, `${name}.wat`), 'utf8');
}

export async function compileFixture(name: string): Promise<Uint8Array<ArrayBuffer>> {
  return compileWatText(watText(name), `${name}.wat`);
}

/** A fresh temporary directory for plugin folders. */
export function tempPluginsDir(): string {
  return mkdtempSync(join(tmpdir(), 'wasm-plugins-'));
}

/** Writes `<root>/<folder>/plugin.yaml` (from `manifest`, or raw text) and `<folder>/<manifest.wasm>`. */
export function writePlugin(
  root: string,
  folder: string,
  manifest: Record<string, unknown> | string,
  wasm?: Uint8Array,
): string {
  const dir = join(root, folder);
  mkdirSync(dir, { recursive: true });
  const text = typeof manifest === 'string' ? manifest : stringify(manifest);
  if (wasm) {
    const file = typeof manifest === 'string' ? 'plugin.wasm' : String(manifest.wasm ?? 'plugin.wasm');
    writeFileSync(join(dir, file), wasm);
  }
  writeFileSync(join(dir, 'plugin.yaml'), text);
  return dir;
}
