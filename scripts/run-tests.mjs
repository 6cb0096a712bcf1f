#!/usr/bin/env node
// Finds every *.test.ts under the source folders and runs them with Node's test runner through tsx.
// (Node 20's `--test` does not expand globs, and does not look for .ts files by itself.)
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const roots = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const flags = process.argv.slice(2).filter((a) => a.startsWith('-'));
const SKIP = new Set(['node_modules', 'dist', 'testdata', '.git']);
function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    if (SKIP.has(name)) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}
const files = (roots.length ? roots : ['cmd', 'core', 'plugins', 'wasm-plugins', 'scripts'])
  .filter((r) => roots.length || existsSync(r)) // a folder with no files yet is not in a clean clone
  .flatMap((r) => (statSync(r).isDirectory() ? walk(r, []) : [r]))
  .sort();
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...flags, ...files], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
