/** The agent's version, from package.json (read once at start). */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

function find(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    try {
      const pkg = JSON.parse(readFileSync(resolve(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.version && pkg.name === 'nginx-agent-ts') return pkg.version;
    } catch {
      /* keep looking upwards */
    }
    dir = resolve(dir, '..');
  }
  return '0.0.0-unknown';
}

export const VERSION = find();
