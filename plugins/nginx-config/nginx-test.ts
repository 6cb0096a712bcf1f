/**
 * `nginx -t` for one instance: runs the instance's own binary with its prefix, config and `-g`
 * directives (never a reload) and turns nginx's messages into `{ level, text, file, line }`.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { NginxConfigValidated, NginxInstance, NginxTestMessage } from '../../core/nginx/types.js';
import { permissionProblem, writeTestCopy, type TestCopy } from './test-copy.js';

/** `2026/11/24 07:43:14 [warn] 21488#21488: text` (when the config names an error_log) */
const LOG_LINE = /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[(\w+)\] \d+#\d+: (?:\*\d+ )?(.*)$/;
/** `nginx: [emerg] text` (before the config's error_log is open) */
const STDERR_LEVEL = /^nginx: \[(\w+)\] (.*)$/;
/** `nginx: the configuration file ... syntax is ok` and other plain lines */
const STDERR_PLAIN = /^nginx: (.*)$/;
/** ` in /path/file.conf:12` at the end of a message */
const WHERE = / in (\S.*):(\d+)$/;

/**
 * Parses the output of `nginx -t` (stderr and stdout together) into messages, in order.
 * Lines without a level (`syntax is ok`, `test failed`) get level `notice`; unknown shapes are
 * kept whole with level `info` so nothing nginx said is lost.
 */
export function parseTestOutput(text: string): NginxTestMessage[] {
  const out: NginxTestMessage[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (!line) continue;
    let level: string;
    let msg: string;
    let m = LOG_LINE.exec(line) ?? STDERR_LEVEL.exec(line);
    if (m) {
      level = m[1];
      msg = m[2];
    } else if ((m = STDERR_PLAIN.exec(line))) {
      level = 'notice';
      msg = m[1];
    } else {
      level = 'info';
      msg = line;
    }
    const where = WHERE.exec(msg);
    out.push(
      where ? { level, text: msg.slice(0, where.index), file: where[1], line: Number(where[2]) } : { level, text: msg },
    );
  }
  return out;
}

const ERROR_LEVELS = new Set(['emerg', 'alert', 'crit', 'error']);

/** Whether a test passed: exit code 0, no error-level message, and no `[warn]` when warnings count as errors. */
export function testPassed(exitCode: number | null, messages: NginxTestMessage[], warningsAsErrors: boolean): boolean {
  if (exitCode !== 0) return false;
  return !messages.some((m) => ERROR_LEVELS.has(m.level) || (warningsAsErrors && m.level === 'warn'));
}

/** The argument list of `nginx -t` for an instance. */
export function testArgs(instance: Pick<NginxInstance, 'prefix' | 'confPath' | 'globalDirectives'>): string[] {
  const args = [
    '-t',
    '-p',
    instance.prefix.endsWith('/') ? instance.prefix : `${instance.prefix}/`,
    '-c',
    instance.confPath,
  ];
  if (instance.globalDirectives) args.push('-g', instance.globalDirectives);
  return args;
}

export interface NginxTesterSettings {
  warningsAsErrors: boolean;
  /** Kills a hung `nginx -t` after this long. */
  timeoutMs?: number;
  /**
   * Test a private copy of the config (see test-copy.ts) instead of the files themselves: needed when
   * the agent is not root. Default: when the effective uid is not 0.
   */
  useCopy?: boolean;
  /** Where copies are made; default $RUNTIME_DIRECTORY (systemd's RuntimeDirectory=), else the temp dir. */
  workDir?: string;
}

/** nginx's warning for `user` when not run as root: says nothing about the config, root would not see it. */
const USER_DIRECTIVE_WARNING =
  /^the "user" directive makes sense only if the master process runs with super-user privileges/;

/** nginx -e FILE exists since 1.19.5; an unknown version is not given it. */
export function supportsErrorLogFlag(version: string): boolean {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (!m) return false;
  const [major, minor, patch] = m.slice(1).map(Number);
  return major > 1 || (major === 1 && (minor > 19 || (minor === 19 && patch >= 5)));
}

function runtimeDir(): string {
  return process.env.RUNTIME_DIRECTORY?.split(':')[0] || tmpdir();
}

function userName(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.geteuid?.() ?? '?');
  }
}

/** Runs `nginx -t` for instances. */
export class NginxTester {
  constructor(private settings: NginxTesterSettings) {}

  update(settings: NginxTesterSettings): void {
    this.settings = settings;
  }

  /**
   * Runs the test; never throws (a binary that cannot run is a failed test with one `emerg` message
   * and `untested` saying why). As a non-root user, on a copy of the config (test-copy.ts), so the
   * verdict on a valid config is root's; a file that stays inaccessible is reported as that.
   */
  async test(instance: NginxInstance, version: string): Promise<NginxConfigValidated> {
    const asRoot = process.geteuid?.() === 0;
    const useCopy = this.settings.useCopy ?? !asRoot;
    let dir: string | undefined;
    let copy: TestCopy | undefined;
    if (useCopy) {
      try {
        dir = await mkdtemp(join(this.settings.workDir ?? runtimeDir(), 'nginx-test-'));
        copy = await writeTestCopy(instance.confPath, instance.prefix, dir);
      } catch {
        copy = undefined; // an unreadable config: nginx -t on the original says what is wrong with it
      }
    }
    try {
      const args = testArgs(copy ? { ...instance, confPath: copy.confPath } : instance);
      // The error log nginx opens before reading the config (its compiled-in path, often root's):
      // `-e` (nginx 1.19.5+) names ours.
      if (copy && dir && supportsErrorLogFlag(instance.version)) args.push('-e', join(dir, 'startup-error.log'));
      const result = await this.#run(instance, args, version);
      result.messages = result.messages
        .filter((m) => asRoot || !(m.level === 'warn' && USER_DIRECTIVE_WARNING.test(m.text)))
        .map((m) => {
          if (!copy) return m;
          const text = copy.mapBack(m.text);
          return m.file ? { ...m, text, file: copy.mapBack(m.file) } : { ...m, text };
        });
      result.ok = testPassed(result.exitCode, result.messages, this.settings.warningsAsErrors);
      if (!result.ok && !result.untested) {
        const denied = result.messages
          .filter((m) => ERROR_LEVELS.has(m.level))
          .map((m) => permissionProblem(m.text))
          .find((p) => p !== undefined);
        if (denied) result.untested = `cannot test as user ${userName()}: ${denied}`;
      }
      return result;
    } finally {
      if (dir) await rm(dir, { recursive: true, force: true }).catch(() => {});
    }
  }

  #run(instance: NginxInstance, args: string[], version: string): Promise<NginxConfigValidated> {
    return new Promise((resolve) => {
      execFile(
        instance.binary,
        args,
        { timeout: this.settings.timeoutMs ?? 30_000, maxBuffer: 4 * 1024 * 1024, encoding: 'utf8' },
        (err, stdout, stderr) => {
          const e = err as (NodeJS.ErrnoException & { code?: string | number; killed?: boolean }) | null;
          let exitCode: number | null = 0;
          let untested: string | undefined;
          const messages = parseTestOutput(`${stderr}\n${stdout}`);
          if (e) {
            if (typeof e.code === 'number') exitCode = e.code;
            else {
              exitCode = null;
              const why = e.killed ? `killed after ${this.settings.timeoutMs ?? 30_000} ms` : e.message;
              messages.push({ level: 'emerg', text: `cannot run ${instance.binary} ${args.join(' ')}: ${why}` });
              if (!e.killed) untested = `cannot run ${instance.binary} here: ${e.code ?? e.message}`;
            }
          }
          resolve({
            instanceId: instance.id,
            version,
            ok: testPassed(exitCode, messages, this.settings.warningsAsErrors),
            exitCode,
            messages,
            ...(untested ? { untested } : {}),
          });
        },
      );
    });
  }
}
