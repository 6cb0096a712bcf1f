#!/usr/bin/env node
// Builds nginx-down-alert.wasm from plugin.wat with the npm `wabt` package (run by scripts/build-wasm.mjs).
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import initWabt from 'wabt';

const dir = dirname(fileURLToPath(import.meta.url));
const wabt = await initWabt();
const src = join(dir, 'plugin.wat');
const mod = wabt.parseWat(src, readFileSync(src, 'utf8'));
try {
  mod.resolveNames();
  mod.validate();
  writeFileSync(join(dir, 'nginx-down-alert.wasm'), mod.toBinary({ log: false, write_debug_names: false }).buffer);
} finally {
  mod.destroy();
}
