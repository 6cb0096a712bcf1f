#!/usr/bin/env node
// Builds every Wasm plugin under wasm-plugins/: each folder that has a `build.mjs` runs it
// (AssemblyScript through asc, WebAssembly text through wabt). The .wasm outputs stay out of git.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = 'wasm-plugins';
let failed = 0;
for (const name of existsSync(root) ? readdirSync(root).sort() : []) {
  const dir = join(root, name);
  if (!statSync(dir).isDirectory()) continue;
  const build = join(dir, 'build.mjs');
  if (!existsSync(build)) continue;
  const r = spawnSync(process.execPath, [build], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`wasm build failed: ${dir}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
