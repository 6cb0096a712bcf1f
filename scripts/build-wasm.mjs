#!/usr/bin/env node
// Builds every Wasm plugin under wasm-plugins/: each folder that has a `build.mjs` runs it
// (AssemblyScript through asc, WebAssembly text through wabt, C through clang, ...). The .wasm outputs
// stay out of git.
// A folder whose .wasm files are all newer than every other file in it (and than package-lock.json,
// which pins the compilers) is up to date and skipped, so a build after `npm ci` costs a few stats.
// `--force` rebuilds every folder.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = 'wasm-plugins';
const force = process.argv.includes('--force');
/** Not inputs of the .wasm: tests, docs and fixtures. */
const NOT_SOURCES = /(^testdata$|^node_modules$|\.test\.ts$|\.md$)/;

/** Newest mtime of the sources under `dir`, and the mtimes of the .wasm files directly in it. */
function scan(dir, top = true, acc = { newestSource: 0, wasm: [] }) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (NOT_SOURCES.test(entry.name)) continue;
    const p = join(dir, entry.name);
    if (entry.isDirectory()) scan(p, false, acc);
    else if (top && entry.name.endsWith('.wasm')) acc.wasm.push(statSync(p).mtimeMs);
    else acc.newestSource = Math.max(acc.newestSource, statSync(p).mtimeMs);
  }
  return acc;
}

function upToDate(dir) {
  const { newestSource, wasm } = scan(dir);
  const lock = existsSync('package-lock.json') ? statSync('package-lock.json').mtimeMs : 0;
  return wasm.length > 0 && Math.min(...wasm) > Math.max(newestSource, lock);
}

let failed = 0;
let skipped = 0;
for (const name of existsSync(root) ? readdirSync(root).sort() : []) {
  const dir = join(root, name);
  if (!statSync(dir).isDirectory()) continue;
  const build = join(dir, 'build.mjs');
  if (!existsSync(build)) continue;
  if (!force && upToDate(dir)) {
    skipped++;
    continue;
  }
  const r = spawnSync(process.execPath, [build], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`wasm build failed: ${dir}`);
    failed++;
  }
}
if (skipped) console.log(`wasm: ${skipped} plugin(s) up to date (--force rebuilds them)`);
process.exit(failed ? 1 : 0);
