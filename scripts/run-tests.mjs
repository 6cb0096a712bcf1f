#!/usr/bin/env node
// Finds every *.test.ts under the source folders and runs them with Node's test runner through tsx.
// (Node 20's `--test` does not expand globs, and does not look for .ts files by itself.)
// Ends with the number of skipped tests and the outside tools that were missing (core/testing/tools.ts).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
const work = mkdtempSync(join(tmpdir(), 'agent-tests-'));
const skipLog = join(work, 'missing-tools');
const tap = join(work, 'results.tap');
// Agents started by the tests keep their state (log positions) under the run's own directory, not in
// the machine's /var/lib/nginx-agent, so one run neither reads nor overwrites another's.
const stateDir = join(work, 'state');
// The usual report on stdout, and a TAP copy to count the skips in.
const reporters = flags.some((f) => f.startsWith('--test-reporter'))
  ? []
  : [
      '--test-reporter=spec',
      '--test-reporter-destination=stdout',
      '--test-reporter=tap',
      `--test-reporter-destination=${tap}`,
    ];
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', ...reporters, ...flags, ...files],
  {
    stdio: 'inherit',
    env: { NGINX_AGENT_AGENT_STATE_DIR: stateDir, ...process.env, NGINX_AGENT_TEST_SKIP_LOG: skipLog },
  },
);
const read = (f) => (existsSync(f) ? readFileSync(f, 'utf8') : '');
// Skipped tests and skipped suites (a suite skipped as a whole is one line; Node counts only tests).
const skipped = read(tap).match(/^\s*ok \d+ - .* # SKIP\b/gm)?.length ?? 0;
const missing = [...new Set(read(skipLog).split('\n').filter(Boolean))].sort();
rmSync(work, { recursive: true, force: true });
if (reporters.length) {
  console.log(`\n${skipped} test(s) or suite(s) skipped${missing.length ? `; outside tools missing here:` : ''}`);
  for (const m of missing) console.log(`  - ${m}`);
}
process.exit(r.status ?? 1);
