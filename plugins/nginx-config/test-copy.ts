/**
 * `nginx -t` as a user other than root. nginx opens, while testing, every file the running server
 * opens for writing: the pid file (`/run/nginx.pid`, root's), every error and access log
 * (`/var/log/nginx/*.log`, www-data's, 0640), so the agent's service user gets `Permission denied`
 * on a config that is valid. Group membership cannot fix that without loosening nginx's own files.
 *
 * The test therefore runs on a copy: every file of the config is written under a private directory
 * at its own absolute path (`<dir>/etc/nginx/nginx.conf`), with `include` pointed at the copies and
 * `pid`, `error_log` and `access_log` pointed at files in that directory; every other entry of each
 * copied directory is a symlink to the original, so relative paths (certificates, `mime.types`)
 * resolve as they do for nginx. What nginx says about the copy is mapped back to the original paths
 * (line numbers are kept: a replaced directive keeps its line breaks).
 */
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parseNginxConfig } from '../../core/nginx/config/parse.js';
import type { ConfigDirective } from '../../core/nginx/types.js';

/** Directives nginx opens a file for writing for, or that name other config files. */
const REWRITTEN = new Set(['include', 'pid', 'error_log', 'access_log', 'lock_file']);

/** Destinations that are no files: kept as written. */
const NOT_A_FILE = /^(off|stderr|syslog:|memory:)/;

export interface TestCopy {
  /** The copy of the main config to pass to `nginx -t -c`. */
  confPath: string;
  /** Turns a path or message about the copy back into the original's. */
  mapBack(text: string): string;
}

/** An argument as nginx reads it back: double-quoted, with `"` and `\` escaped. */
function quote(arg: string): string {
  return `"${arg.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

function collect(list: ConfigDirective[] | undefined, out: ConfigDirective[]): ConfigDirective[] {
  for (const d of list ?? []) {
    if (REWRITTEN.has(d.directive)) out.push(d);
    if (d.block) collect(d.block, out);
  }
  return out;
}

/** Offsets of the start of each line (1-based line n starts at starts[n - 1]). */
function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  return starts;
}

/**
 * Replaces each directive (found from its line) up to its `;` with `replacement(d)`, keeping the
 * number of line breaks so nginx's line numbers stay those of the original.
 */
function rewrite(text: string, directives: ConfigDirective[], replacement: (d: ConfigDirective) => string): string {
  const starts = lineStarts(text);
  const edits: { from: number; to: number; text: string }[] = [];
  let searchFrom = 0;
  for (const d of [...directives].sort((a, b) => a.line - b.line)) {
    const lineStart = starts[d.line - 1] ?? 0;
    const re = new RegExp(`(^|[\\s;{}])${d.directive}(?=[\\s"'])`, 'gm');
    re.lastIndex = Math.max(lineStart, searchFrom);
    const m = re.exec(text);
    if (!m) continue;
    const from = m.index + m[1].length;
    const semi = text.indexOf(';', from);
    if (semi < 0) continue;
    const breaks = text.slice(from, semi).split('\n').length - 1;
    edits.push({ from, to: semi + 1, text: `${replacement(d)}${'\n'.repeat(breaks)}` });
    searchFrom = semi + 1;
  }
  let out = text;
  for (const e of edits.reverse()) out = out.slice(0, e.from) + e.text + out.slice(e.to);
  return out;
}

/**
 * Writes the copy of the config at `confPath` (nginx prefix `prefix`) into `dir`, which must be
 * empty and private to the agent. Throws when the main config cannot be read.
 */
export async function writeTestCopy(confPath: string, prefix: string, dir: string): Promise<TestCopy> {
  const payload = await parseNginxConfig(confPath, { prefix });
  const confDir = dirname(payload.config[0]?.file ?? confPath);
  const mirror = (p: string) => join(dir, p);
  const copied = new Set<string>();
  for (const file of payload.config) {
    const text = await readFile(file.file, 'utf8');
    let copy = rewrite(text, collect(file.parsed, []), (d) => {
      const [first, ...rest] = d.args;
      switch (d.directive) {
        case 'include':
          return `include ${quote(mirror(isAbsolute(first) ? first : resolve(confDir, first)))};`;
        case 'pid':
          return `pid ${quote(join(dir, 'nginx.pid'))};`;
        case 'lock_file':
          return `lock_file ${quote(join(dir, 'nginx.lock'))};`;
        default: {
          // error_log / access_log: the file becomes ours; level, format and parameters stay.
          if (first === undefined || NOT_A_FILE.test(first)) return `${d.directive} ${d.args.map(quote).join(' ')};`;
          const name = d.directive === 'error_log' ? 'error.log' : 'access.log';
          return `${d.directive} ${[join(dir, name), ...rest].map(quote).join(' ')};`;
        }
      }
    });
    // Without a `pid` directive nginx uses its compiled-in path (/run/nginx.pid): name ours, on the
    // first line so every line number stays.
    if (file === payload.config[0] && !file.parsed.some((d) => d.directive === 'pid'))
      copy = `pid ${quote(join(dir, 'nginx.pid'))}; ${copy}`;
    await mkdir(dirname(mirror(file.file)), { recursive: true, mode: 0o700 });
    await writeFile(mirror(file.file), copy, { mode: 0o600 });
    copied.add(dirname(file.file));
  }
  // Everything else in the copied directories (certificates, keys, maps read by modules, ...) is a
  // symlink to the original, so a relative path finds the same file.
  for (const original of copied) {
    const present = new Set(await readdir(mirror(original)));
    for (const entry of await readdir(original).catch(() => [] as string[])) {
      if (!present.has(entry)) await symlink(join(original, entry), join(mirror(original), entry)).catch(() => {});
    }
  }
  return {
    confPath: mirror(payload.config[0]?.file ?? confPath),
    mapBack: (text) => text.replaceAll(dir, ''),
  };
}

/**
 * What nginx could not do as this user, from one of its messages (`/run/nginx.pid not writable`,
 * `binding 0.0.0.0:80 needs CAP_NET_BIND_SERVICE`); undefined when the message is no permission problem.
 */
export function permissionProblem(message: string): string | undefined {
  if (!/Permission denied/.test(message)) return undefined;
  // nginx -t binds every listen address (an address in use is fine): ports below 1024 need the capability.
  const bind = /^bind\(\) to (\S+) failed/.exec(message);
  if (bind) return `binding ${bind[1]} needs CAP_NET_BIND_SERVICE`;
  const path = /"([^"]+)"/.exec(message)?.[1];
  if (!path) return undefined;
  // open()/mkdir() of the pid file, logs and temp directories; loading a certificate or key reads it.
  return /^(cannot load|BIO_new_file|SSL_CTX_use|PEM_read)/.test(message)
    ? `${path} not readable`
    : `${path} not writable`;
}
