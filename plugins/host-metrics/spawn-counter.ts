/**
 * Counts child processes started by this Node process, for the no-fork test and the benchmark.
 * Every asynchronous spawn (spawn, exec, execFile, fork) goes through `ChildProcess.prototype.spawn`;
 * every synchronous one (spawnSync, execSync, execFileSync) through the `spawn_sync` binding, so
 * wrapping those two catches a library that kept its own reference to `exec` or `execSync`.
 */
import { createRequire } from 'node:module';

export interface SpawnCounter {
  /** Child processes started since `countSpawns()`, with their file names. */
  readonly files: readonly string[];
  restore(): void;
}

export function countSpawns(): SpawnCounter {
  const require = createRequire(import.meta.url);
  const cp = require('node:child_process') as typeof import('node:child_process');
  const files: string[] = [];
  const proto = cp.ChildProcess.prototype as unknown as { spawn: (opts: { file?: string }) => unknown };
  const asyncSpawn = proto.spawn;
  proto.spawn = function (this: unknown, opts: { file?: string }) {
    files.push(String(opts?.file));
    return asyncSpawn.call(this, opts);
  };
  const binding = (
    process as unknown as { binding(n: string): { spawn: (opts: { file?: string }) => unknown } }
  ).binding('spawn_sync');
  const syncSpawn = binding.spawn;
  binding.spawn = function (this: unknown, opts: { file?: string }) {
    files.push(String(opts?.file));
    return syncSpawn.call(this, opts);
  };
  return {
    files,
    restore() {
      proto.spawn = asyncSpawn;
      binding.spawn = syncSpawn;
    },
  };
}
