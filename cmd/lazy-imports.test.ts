/**
 * The CLI loads only what the command it runs uses: the modules reachable from cmd/agent.ts through
 * static imports (what every command pays, `agent version` and `--help` included) are the command
 * definitions, commander and the version; everything else comes through `await import()` in an action.
 * This walks the static import graph of the sources (no process, no timing).
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** `import x from '...'`, `import { a } from '...'`, `export { a } from '...'`, `import '...'`; not `import type`. */
const STATIC_IMPORT = /^\s*(?:import|export)\s+(?!type\s)(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/gm;

/** Every module reachable by static imports from `entry` (repository paths) and the packages they name. */
function staticGraph(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const todo = [resolve(ROOT, entry)];
  while (todo.length) {
    const file = todo.pop()!;
    const rel = relative(ROOT, file);
    if (files.has(rel)) continue;
    files.add(rel);
    for (const match of readFileSync(file, 'utf8').matchAll(STATIC_IMPORT)) {
      const spec = match[1];
      if (spec.startsWith('.')) todo.push(join(dirname(file), spec).replace(/\.js$/, '.ts'));
      else packages.add(spec);
    }
  }
  return { files, packages };
}

describe('CLI start-up cost', () => {
  const { files, packages } = staticGraph('cmd/agent.ts');

  test('the modules every command loads are the command definitions and the version, nothing of the daemon', () => {
    const heavy = [...files].filter(
      (f) =>
        !f.startsWith('cmd/commands/') &&
        f !== 'cmd/agent.ts' &&
        f !== 'core/version.ts' &&
        f !== 'core/extra-ca-certs.ts' &&
        f !== 'core/package-root.ts',
    );
    assert.deepEqual(
      heavy,
      [],
      'a command module imports these at the top; import them inside the action with await import() instead',
    );
  });

  test('the packages every command loads are commander and Node built-ins', () => {
    const extra = [...packages].filter((p) => p !== 'commander' && !p.startsWith('node:'));
    assert.deepEqual(extra, [], 'import these inside the action that uses them (await import())');
  });
});
