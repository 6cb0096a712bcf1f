#!/usr/bin/env node
// Builds error-budget.wasm from assembly/index.ts with AssemblyScript (run by scripts/build-wasm.mjs).
// The abort handler reports through Extism and traps, so a runtime error is a counted failure.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = dirname(fileURLToPath(import.meta.url));
const asc = join(dir, '..', '..', 'node_modules', '.bin', 'asc');
const r = spawnSync(
  asc,
  [
    'assembly/index.ts',
    '--outFile',
    'error-budget.wasm',
    '--use',
    'abort=assembly/index/abortHandler',
    '-O3',
    '--runtime',
    'incremental',
  ],
  { cwd: dir, stdio: 'inherit' },
);
process.exit(r.status ?? 1);
