#!/usr/bin/env node
// Builds plugin-state-alert.wasm, a waPC guest, from assembly/index.ts with AssemblyScript and
// @wapc/as-guest (run by scripts/build-wasm.mjs).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = dirname(fileURLToPath(import.meta.url));
const asc = join(dir, '..', '..', 'node_modules', '.bin', 'asc');
const r = spawnSync(
  asc,
  ['assembly/index.ts', '--outFile', 'plugin-state-alert.wasm', '--use', 'abort=assembly/index/abortHandler', '-O3'],
  { cwd: dir, stdio: 'inherit' },
);
process.exit(r.status ?? 1);
