/**
 * Tools a test needs from outside the project (nginx, promtool, nats-server, clang, chromium, ...).
 *
 * `needTool(bin, pkg)` answers at once, without starting anything: `false` when the tool is there
 * (run the test), or the skip reason naming the tool and how to install it. With `CI` set (as
 * `.ci/run` runs), a missing tool is not a skip but an error thrown at load: nothing may be skipped
 * there. Use it as `test('...', { skip: needTool('nats-server', 'nats-server') }, ...)`.
 */
import { accessSync, appendFileSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

/** The absolute path of `bin` (a name looked up on PATH, or a path), or undefined. */
export function findTool(bin: string): string | undefined {
  const candidates = isAbsolute(bin)
    ? [bin]
    : [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin'].filter(Boolean).map((d) => join(d, bin));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not here
    }
  }
  return undefined;
}

const reported = new Set<string>();

/**
 * `false` when `bin` is installed; otherwise a one-line reason to skip with (and printed once), or,
 * under CI, an Error thrown so the run fails instead of skipping.
 */
export function needTool(bin: string, debianPackage: string): false | string {
  if (findTool(bin)) return false;
  const reason = `${bin} not found: install it with "apt-get install ${debianPackage}" (or run scripts/install-test-deps.sh)`;
  if (process.env.CI) throw new Error(`CI: ${reason}`);
  if (!reported.has(bin)) {
    reported.add(bin);
    process.stderr.write(`skip: ${reason}\n`);
    // scripts/run-tests.mjs names every missing tool again at the end of the run.
    if (process.env.NGINX_AGENT_TEST_SKIP_LOG) appendFileSync(process.env.NGINX_AGENT_TEST_SKIP_LOG, `${reason}\n`);
  }
  return reason;
}
