/**
 * Where the agent's package is on disk: the folder whose package.json names `nginx-agent-ts`,
 * found by walking up from this module. Files shipped beside the code (config/agent.yaml, the
 * dashboard, the Wasm worker, package.json itself) are located from here, never from a module's own
 * path: the same code runs from core/ (tsx), from dist/core/ (tsc) and from dist/agent.cjs (the
 * bundle that bin/agent.js loads), each at a different depth.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_NAME = 'nginx-agent-ts';

export interface PackageInfo {
  /** The package's folder; the folder of this module's file when no package.json names the agent. */
  readonly root: string;
  /** `version` from package.json, `0.0.0-unknown` when it was not found. */
  readonly version: string;
}

export function findPackage(from: string): PackageInfo {
  let dir = from;
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === PACKAGE_NAME) return { root: dir, version: pkg.version ?? '0.0.0-unknown' };
    } catch {
      // no package.json here, or not JSON: keep looking upwards
    }
    const up = dirname(dir);
    if (up === dir) return { root: from, version: '0.0.0-unknown' };
    dir = up;
  }
}

export const PACKAGE = findPackage(dirname(fileURLToPath(import.meta.url)));
export const PACKAGE_ROOT = PACKAGE.root;
