#!/usr/bin/env node
// Builds bus-meter.wasm (wasm32-unknown-unknown, no libc) and bus-meter-wasi.wasm (wasm32-wasi, linked
// with wasi-libc) from bus-meter.c with Debian's clang and lld (run by scripts/build-wasm.mjs). Where
// clang, wasm-ld or wasi-libc is missing it says so and skips only what it cannot build.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = dirname(fileURLToPath(import.meta.url));
const include = join(dir, '..', '_lib', 'c');
const has = (bin) => spawnSync(bin, ['--version'], { stdio: 'ignore' }).status === 0;
const INSTALL = 'apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32 (or scripts/install-test-deps.sh)';

if (!has('clang') || !has('wasm-ld')) {
  console.error(`wasm-plugins/bus-meter: clang or wasm-ld not found, bus-meter (C) not built: ${INSTALL}`);
  process.exit(0);
}
/** The exact commands wasm-plugins/README.md shows ("Writing a plugin in C"). */
const builds = [
  {
    out: 'bus-meter.wasm',
    args: ['--target=wasm32-unknown-unknown', '-nostdlib', '-Wl,--no-entry', '-O2', '-mbulk-memory'],
  },
  {
    out: 'bus-meter-wasi.wasm',
    args: [
      '--target=wasm32-wasi',
      '--sysroot=/usr',
      '-mexec-model=reactor',
      '-O2',
      '-mbulk-memory',
      '-DEXTISM_USE_LIBC',
    ],
    needs: '/usr/lib/wasm32-wasi/libc.a',
  },
];
let failed = 0;
for (const b of builds) {
  if (b.needs && !existsSync(b.needs)) {
    console.error(`wasm-plugins/bus-meter: ${b.needs} not found, ${b.out} (wasi-libc) not built: ${INSTALL}`);
    continue;
  }
  const r = spawnSync('clang', [...b.args, '-I', include, '-o', b.out, 'bus-meter.c'], { cwd: dir, stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
