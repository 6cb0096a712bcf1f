/**
 * Every shipped plugin against the ABI v1 contract, from its manifest and its built module alone:
 * manifest keys and types, the wasm file present, `process` exported, optional `init`/`describe`
 * with the right signatures, imports only from Extism's namespaces, `publish` as (i64) -> i64,
 * and publishes limited to the open topics.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { readManifest, wasmOf } from './_lib/testing.js';

const root = dirname(fileURLToPath(import.meta.url));
/** Plugin folders: every folder with a plugin.yaml (`_lib` holds shared code, not a plugin). */
const plugins = readdirSync(root).filter((n) => statSync(join(root, n)).isDirectory() && existsSync(join(root, n, 'plugin.yaml')));
const KEYS = new Set(['name', 'wasm', 'sha256', 'subscriptions', 'publishes', 'config', 'timeout_ms', 'memory_mb', 'allowed_hosts', 'allowed_paths']);
const OPEN = ['alert.', 'lint.', 'event.'];

/** Signature of an exported or imported function, from the binary's type and function sections. */
function signatures(bytes: Uint8Array): { imports: Map<string, string>; exports: Map<string, string> } {
  let p = 8;
  const u32 = () => {
    let r = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[p++];
      r |= (b & 0x7f) << shift;
      if (!(b & 0x80)) return r >>> 0;
      shift += 7;
    }
  };
  const name = () => {
    const n = u32();
    const s = Buffer.from(bytes.subarray(p, p + n)).toString('utf8');
    p += n;
    return s;
  };
  const VT: Record<number, string> = { 0x7f: 'i32', 0x7e: 'i64', 0x7d: 'f32', 0x7c: 'f64' };
  const types: string[] = [];
  const funcTypes: number[] = [];
  const imports = new Map<string, string>();
  const exports = new Map<string, string>();
  while (p < bytes.length) {
    const id = bytes[p++];
    const size = u32();
    const end = p + size;
    if (id === 1) {
      for (let n = u32(); n > 0; n--) {
        p++; // 0x60
        const params = Array.from({ length: u32() }, () => VT[bytes[p++]]);
        const results = Array.from({ length: u32() }, () => VT[bytes[p++]]);
        types.push(`(${params.join(', ')}) -> ${results.join(', ') || 'void'}`);
      }
    } else if (id === 2) {
      for (let n = u32(); n > 0; n--) {
        const key = `${name()}.${name()}`;
        const kind = bytes[p++];
        // A plugin imports functions only: its memory, tables and globals are its own.
        if (kind !== 0) throw new Error(`${key} imports a ${['function', 'table', 'memory', 'global'][kind] ?? kind}; only functions are provided`);
        const t = u32();
        imports.set(key, types[t]);
        funcTypes.push(t);
      }
    } else if (id === 3) {
      for (let n = u32(); n > 0; n--) funcTypes.push(u32());
    } else if (id === 7) {
      for (let n = u32(); n > 0; n--) {
        const key = name();
        const kind = bytes[p++];
        const idx = u32();
        exports.set(key, kind === 0 ? types[funcTypes[idx]] : `kind ${kind}`);
      }
    }
    p = end;
  }
  return { imports, exports };
}

describe('ABI v1 of the shipped plugins', () => {
  it('finds the three shipped plugins', () => {
    assert.deepEqual(plugins.sort(), ['config-lint', 'error-budget', 'nginx-down-alert']);
  });

  for (const name of plugins) {
    describe(name, () => {
      const dir = join(root, name);
      it('plugin.yaml has the ABI v1 keys with the right types, its folder name, and open topics only', () => {
        const m = readManifest(dir) as unknown as Record<string, unknown>;
        for (const k of Object.keys(m)) assert.ok(KEYS.has(k), `unknown key ${k} in ${name}/plugin.yaml`);
        assert.equal(m.name, name);
        assert.equal(typeof m.wasm, 'string');
        assert.equal(m.sha256, undefined, 'no sha256: the .wasm is built, not committed');
        for (const k of ['subscriptions', 'publishes']) {
          assert.ok(Array.isArray(m[k]) && (m[k] as unknown[]).length > 0 && (m[k] as unknown[]).every((t) => typeof t === 'string'), `${k} is a list of topics`);
        }
        for (const t of m.publishes as string[]) assert.ok(OPEN.some((o) => t.startsWith(o)), `${t} is not under ${OPEN.join(', ')}`);
        for (const [k, v] of Object.entries((m.config ?? {}) as Record<string, unknown>)) assert.ok(typeof v === 'string' && v !== '', `config.${k} is a non-empty string`);
        assert.ok(Number.isInteger(m.timeout_ms) && (m.timeout_ms as number) > 0);
        assert.ok(Number.isInteger(m.memory_mb) && (m.memory_mb as number) > 0);
        assert.equal(m.allowed_hosts, undefined, 'no network');
        assert.equal(m.allowed_paths, undefined, 'no files');
      });

      it('exports process, optional init/describe as () -> i32, and imports only Extism functions', () => {
        const bytes = wasmOf(dir);
        assert.ok(WebAssembly.validate(bytes));
        const { imports, exports } = signatures(bytes);
        assert.equal(exports.get('process'), '() -> i32');
        for (const opt of ['init', 'describe']) if (exports.has(opt)) assert.equal(exports.get(opt), '() -> i32', opt);
        for (const [k, sig] of imports) {
          assert.ok(k.startsWith('extism:host/env.') || k === 'extism:host/user.publish', `unexpected import ${k}`);
          if (k === 'extism:host/user.publish') assert.equal(sig, '(i64) -> i64');
        }
        // The module's own view agrees on the names.
        const mod = new WebAssembly.Module(bytes);
        assert.deepEqual(new Set(WebAssembly.Module.imports(mod).map((i) => `${i.module}.${i.name}`)), new Set(imports.keys()));
      });
    });
  }
});
