/**
 * `nginx -t` for one instance: runs the instance's own binary with its prefix, config and `-g`
 * directives (never a reload) and turns nginx's messages into `{ level, text, file, line }`.
 */
import { execFile } from 'node:child_process';
import type { NginxConfigValidated, NginxInstance, NginxTestMessage } from '../../core/nginx/types.js';

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
}

/** Runs `nginx -t` for instances. */
export class NginxTester {
  constructor(private settings: NginxTesterSettings) {}

  update(settings: NginxTesterSettings): void {
    this.settings = settings;
  }

  /** Runs the test; never throws (a binary that cannot run is a failed test with one `emerg` message). */
  test(instance: NginxInstance, version: string): Promise<NginxConfigValidated> {
    const args = testArgs(instance);
    return new Promise((resolve) => {
      execFile(
        instance.binary,
        args,
        { timeout: this.settings.timeoutMs ?? 30_000, maxBuffer: 4 * 1024 * 1024, encoding: 'utf8' },
        (err, stdout, stderr) => {
          const e = err as (NodeJS.ErrnoException & { code?: string | number; killed?: boolean }) | null;
          let exitCode: number | null = 0;
          const messages = parseTestOutput(`${stderr}\n${stdout}`);
          if (e) {
            if (typeof e.code === 'number') exitCode = e.code;
            else {
              exitCode = null;
              const why = e.killed ? `killed after ${this.settings.timeoutMs ?? 30_000} ms` : e.message;
              messages.push({ level: 'emerg', text: `cannot run ${instance.binary} ${args.join(' ')}: ${why}` });
            }
          }
          resolve({
            instanceId: instance.id,
            version,
            ok: testPassed(exitCode, messages, this.settings.warningsAsErrors),
            exitCode,
            messages,
          });
        },
      );
    });
  }
}
