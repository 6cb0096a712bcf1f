/**
 * Every shipped plugin against the ABI v1 contract, from its folder alone: the agent's own check
 * (core/wasm: manifest, hash, exports, imports, as `agent plugins check` runs it), plus what that
 * check leaves out: the exact signatures of process/init/describe and of the publish import, and
 * the shipped plugins' own policy (no sha256 since the .wasm is built here, no network, no files).
 */
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { pluginFolders } from '../core/wasm/manager.js';
import { checkPluginDir } from '../core/wasm/module.js';
import { pluginsCheck } from '../cmd/run/plugins-check.js';
import { needTool } from '../core/testing/tools.js';

const noClang = needTool('clang', 'clang lld wasi-libc libclang-rt-14-dev-wasm32');

const root = dirname(fileURLToPath(import.meta.url));
/** Plugin folders as the agent finds them (`_lib` holds shared code and is skipped). */
const plugins = pluginFolders(root).map((d) => d.slice(root.length + 1));

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
  const VT: Record<number, string> = { 127: 'i32', 126: 'i64', 125: 'f32', 124: 'f64' };
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
        if (kind !== 0)
          throw new Error(
            `${key} imports a ${['function', 'table', 'memory', 'global'][kind] ?? kind}; only functions are provided`,
          );
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
  it('finds the five shipped plugins, and `agent plugins check` passes them all', { skip: noClang }, () => {
    assert.deepEqual(plugins, ['bus-meter', 'config-lint', 'error-budget', 'nginx-down-alert', 'plugin-state-alert']);
    let out = '';
    let err = '';
    const code = pluginsCheck(root, { stdout: (t) => void (out += t), stderr: (t) => void (err += t) });
    assert.equal(code, 0, err);
    assert.match(out, /5 of 5 plugins OK/);
  });

  for (const name of plugins) {
    // bus-meter is C: built only where clang is (scripts/build-wasm.mjs says so and skips it elsewhere).
    describe(name, { skip: name === 'bus-meter' && noClang }, () => {
      const dir = join(root, name);
      it("passes the agent's check, is named as its folder, and asks for no hash, network or files", () => {
        const c = checkPluginDir(dir);
        assert.equal(c.manifest.name, name);
        assert.equal(c.manifest.sha256, undefined, 'no sha256: the .wasm is built, not committed');
        assert.ok(c.manifest.timeout_ms && c.manifest.memory_mb, 'limits sized for this plugin, not the host defaults');
        assert.deepEqual(c.manifest.allowed_hosts, []);
        assert.deepEqual(c.manifest.allowed_paths, {});
        assert.equal(c.wasi, false);
        for (const [k, v] of Object.entries(c.manifest.config))
          assert.notEqual(v, '', `config.${k}: the Extism JS SDK traps config_get on ""`);
      });

      it('exports process, optional init/describe as () -> i32, and imports only Extism functions', () => {
        const c = checkPluginDir(dir);
        const bytes = c.bytes;
        assert.ok(WebAssembly.validate(bytes));
        const { imports, exports } = signatures(bytes);
        if (c.manifest.abi === 'wapc') {
          assert.equal(exports.get('__guest_call'), '(i32, i32) -> i32');
          for (const k of imports.keys()) assert.ok(k.startsWith('wapc.'), `unexpected import ${k}`);
          assert.equal(imports.get('wapc.__host_call'), '(i32, i32, i32, i32, i32, i32, i32, i32) -> i32');
          return;
        }
        assert.equal(exports.get('process'), '() -> i32');
        for (const opt of ['init', 'describe']) if (exports.has(opt)) assert.equal(exports.get(opt), '() -> i32', opt);
        for (const [k, sig] of imports) {
          assert.ok(k.startsWith('extism:host/env.') || k === 'extism:host/user.publish', `unexpected import ${k}`);
          if (k === 'extism:host/user.publish') assert.equal(sig, '(i64) -> i64');
        }
        // The module's own view agrees on the names.
        const mod = new WebAssembly.Module(bytes);
        assert.deepEqual(
          new Set(WebAssembly.Module.imports(mod).map((i) => `${i.module}.${i.name}`)),
          new Set(imports.keys()),
        );
      });
    });
  }
});
