/**
 * Pure parsers for what nginx discovery reads: `/proc/PID/stat`, `/proc/PID/status`,
 * `/proc/PID/cmdline` (nginx's process title), and the output of `nginx -V`.
 * No I/O here: every function takes the text and returns a value, so tests run on strings.
 */
import { createHash } from 'node:crypto';
import { isAbsolute, resolve } from 'node:path';

/** The fields of `/proc/PID/stat` discovery uses. */
export interface ProcStat {
  pid: number;
  /** Process name (the executable's base name, 15 characters at most). */
  comm: string;
  /** One letter: R running, S sleeping, D disk wait, Z zombie, T stopped, t traced, X dead, I idle. */
  state: string;
  ppid: number;
  /** CPU time in user and kernel mode, clock ticks. */
  utimeTicks: number;
  stimeTicks: number;
  /** Start time in clock ticks since boot. */
  startTicks: number;
}

/**
 * Parses `/proc/PID/stat`. The name is in parentheses and may itself hold spaces and `)`,
 * so the fields are counted from the last `)`. Returns null for text that is not a stat line.
 */
export function parseStat(text: string): ProcStat | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 1 || close < open) return null;
  const pid = Number(text.slice(0, open).trim());
  const f = text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  // f[0] is field 3 (state): field N is f[N - 3].
  if (!Number.isInteger(pid) || f.length < 20) return null;
  const num = (i: number) => Number(f[i]);
  const st: ProcStat = {
    pid,
    comm: text.slice(open + 1, close),
    state: f[0],
    ppid: num(1),
    utimeTicks: num(11),
    stimeTicks: num(12),
    startTicks: num(19),
  };
  return [st.ppid, st.utimeTicks, st.stimeTicks, st.startTicks].every(Number.isFinite) ? st : null;
}

/** Resident set size in bytes from `/proc/PID/status` (`VmRSS: 3672 kB`); null when absent (zombies, kernel threads). */
export function parseStatusRss(text: string): number | null {
  const m = /^VmRSS:\s+(\d+)\s*kB/m.exec(text);
  return m ? Number(m[1]) * 1024 : null;
}

/** What a process of nginx is, from its title. */
export type NginxRole = 'master' | 'worker' | 'worker-shutting-down' | 'cache-manager' | 'cache-loader' | 'other';

export interface ProcessTitle {
  role: NginxRole;
  /** For a master: its command line as nginx recorded it (binary and options), split on spaces. */
  argv: string[];
}

/**
 * Reads `/proc/PID/cmdline` of an nginx process. nginx overwrites its argv with a title padded by NULs
 * (`nginx: master process /usr/sbin/nginx -p /srv/ -c conf/nginx.conf\0\0...`), so the original
 * arguments survive only as one space-joined string: quotes of `-g '...'` are gone.
 * Returns null when the text is not an nginx title (a process that has not set one yet, `nginx -t`,
 * `nginx -V`, or a zombie whose command line is empty).
 */
export function parseProcessTitle(cmdline: string): ProcessTitle | null {
  const text = cmdline.replace(/\0+$/, '');
  if (!text.startsWith('nginx: ') || text.includes('\0')) return null;
  const title = text.slice('nginx: '.length).trim();
  if (title.startsWith('master process')) {
    return { role: 'master', argv: title.slice('master process'.length).trim().split(/\s+/).filter(Boolean) };
  }
  if (title === 'worker process') return { role: 'worker', argv: [] };
  if (title === 'worker process is shutting down') return { role: 'worker-shutting-down', argv: [] };
  if (title.startsWith('cache manager process')) return { role: 'cache-manager', argv: [] };
  if (title.startsWith('cache loader process')) return { role: 'cache-loader', argv: [] };
  return { role: 'other', argv: [] };
}

/** The options of a master's command line that decide which nginx it is. */
export interface MasterArgs {
  /** argv[0] as started (may be relative, e.g. `nginx`). */
  binary: string;
  /** `-p` as given, or undefined. */
  prefix?: string;
  /** `-c` as given, or undefined. */
  conf?: string;
  /** `-g` directives, or undefined. */
  globals?: string;
  /** `-e` error log, or undefined. */
  errorLog?: string;
}

const VALUE_FLAGS = new Set(['p', 'c', 'g', 'e', 's']);
const ALL_FLAGS = /^-[?hvVtTqpcgse]/;

/**
 * Parses the master's argv (from `parseProcessTitle`): `-p PREFIX`, `-c FILE`, `-g DIRECTIVES`,
 * `-e FILE`, joined (`-cconf/x.conf`) or separate. Since the title joined the arguments with
 * spaces, a `-g` value runs until the next token that is an nginx option.
 */
export function parseMasterArgs(argv: readonly string[]): MasterArgs {
  const out: MasterArgs = { binary: argv[0] ?? '' };
  for (let i = 1; i < argv.length; i++) {
    const tok = argv[i];
    if (!tok.startsWith('-') || tok.length < 2) continue;
    const flag = tok[1];
    if (!VALUE_FLAGS.has(flag)) continue;
    let value: string;
    if (tok.length > 2) value = tok.slice(2);
    else if (flag === 'g') {
      const parts: string[] = [];
      while (
        i + 1 < argv.length &&
        !(ALL_FLAGS.test(argv[i + 1]) && parts.length > 0 && parts[parts.length - 1].endsWith(';'))
      )
        parts.push(argv[++i]);
      value = parts.join(' ');
    } else value = argv[++i] ?? '';
    if (flag === 'p') out.prefix = value;
    else if (flag === 'c') out.conf = value;
    else if (flag === 'g') out.globals = out.globals ? `${out.globals} ${value}` : value;
    else if (flag === 'e') out.errorLog = value;
  }
  return out;
}

/** What `nginx -V` tells about a binary. */
export interface BinaryInfo {
  /** `1.22.1`; '' when -V could not be read. */
  version: string;
  plus: boolean;
  /** `nginx-plus-r31-p1` for NGINX Plus. */
  plusRelease?: string;
  /** Every configure argument, quotes removed (`--with-cc-opt=-g -O2`). */
  configureArgs: string[];
  /** `--prefix`, `--conf-path`, `--modules-path` when given. */
  prefix?: string;
  confPath?: string;
  modulesPath?: string;
  /** Modules built in (`--with-*_module`, `--add-module`), e.g. `http_ssl_module`. */
  staticModules: string[];
  /** Modules built as loadable objects (`--with-*_module=dynamic`, `--add-dynamic-module`). */
  dynamicModules: string[];
}

/** Splits a configure arguments line like a shell would: spaces separate, quotes group and are removed. */
export function splitShellWords(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote) {
      if (ch === quote) quote = null;
      else if (ch === '\\' && quote === '"' && i + 1 < text.length) cur += text[++i];
      else cur += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (ch === '\\' && i + 1 < text.length) {
      cur += text[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

function moduleName(pathOrName: string): string {
  const base = pathOrName.replace(/\/+$/, '').split('/').pop() ?? pathOrName;
  return base.replace(/\.so$/, '').replace(/^ngx_/, '');
}

/**
 * Parses the output of `nginx -V` (nginx writes it to stderr). Throws when the text has no
 * `nginx version:` line, naming what it got instead.
 */
export function parseNginxV(text: string): BinaryInfo {
  const vm = /^nginx version: nginx\/(\S+)(?:\s+\((nginx-plus[^)]*)\))?/m.exec(text);
  if (!vm) {
    const first = text.trim().split('\n')[0] ?? '';
    throw new Error(
      `not the output of nginx -V: expected a line "nginx version: nginx/X.Y.Z", got ${JSON.stringify(first.slice(0, 120))}`,
    );
  }
  const am = /^configure arguments:(.*)$/m.exec(text);
  const configureArgs = am ? splitShellWords(am[1]) : [];
  const info: BinaryInfo = {
    version: vm[1],
    plus: Boolean(vm[2]) || /--build=nginx-plus/.test(am?.[1] ?? ''),
    ...(vm[2] ? { plusRelease: vm[2] } : {}),
    configureArgs,
    staticModules: [],
    dynamicModules: [],
  };
  const stat = new Set<string>();
  const dyn = new Set<string>();
  for (const a of configureArgs) {
    const eq = a.indexOf('=');
    const key = eq < 0 ? a : a.slice(0, eq);
    const val = eq < 0 ? '' : a.slice(eq + 1);
    if (key === '--prefix') info.prefix = val;
    else if (key === '--conf-path') info.confPath = val;
    else if (key === '--modules-path') info.modulesPath = val;
    else if (key === '--add-module') stat.add(moduleName(val));
    else if (key === '--add-dynamic-module') dyn.add(moduleName(val));
    else {
      const m = /^--with-(\w+_module)$/.exec(key);
      if (m) (val === 'dynamic' ? dyn : stat).add(m[1]);
    }
  }
  info.staticModules = [...stat].sort();
  info.dynamicModules = [...dyn].sort();
  return info;
}

/** Module names from the file names in the modules directory (`ngx_http_geoip_module.so` -> `http_geoip_module`). */
export function modulesFromDir(names: readonly string[]): string[] {
  return names
    .filter((n) => n.endsWith('.so'))
    .map(moduleName)
    .sort();
}

/** nginx's compiled-in defaults when `-V` does not name them. */
export const NGINX_DEFAULT_PREFIX = '/usr/local/nginx';
export const NGINX_DEFAULT_CONF = 'conf/nginx.conf';

export interface InstancePaths {
  prefix: string;
  confPath: string;
}

/**
 * Resolves the prefix and main config file of a master as nginx itself does: `-p` or the binary's
 * `--prefix` (relative to the master's working directory), then `-c` or `--conf-path` relative to
 * the prefix. Paths come back absolute and without a trailing slash.
 */
export function resolveInstancePaths(
  args: MasterArgs,
  bin: Pick<BinaryInfo, 'prefix' | 'confPath'>,
  cwd = '/',
): InstancePaths {
  const prefix = resolve(cwd, args.prefix || bin.prefix || NGINX_DEFAULT_PREFIX);
  const conf = args.conf || bin.confPath || NGINX_DEFAULT_CONF;
  return { prefix, confPath: isAbsolute(conf) ? resolve(conf) : resolve(prefix, conf) };
}

/** Stable instance id: sha256 over binary path, config path and prefix (NUL-separated), hex, first 16 characters. */
export function nginxInstanceId(binary: string, confPath: string, prefix: string): string {
  return createHash('sha256').update(`${binary}\0${confPath}\0${prefix}`).digest('hex').slice(0, 16);
}

/**
 * The number in `worker_processes N`; undefined when absent or `auto`: `auto` means the CPUs nginx
 * sees, which the agent (in another container, another cpuset) may not see alike, so it is not checked.
 */
export function parseWorkerProcesses(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim().replace(/;$/, '').trim();
  const n = Number(v);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/** The value of `worker_processes` in `-g` directives (`-g 'worker_processes 4; daemon off;'`). */
export function workerProcessesFromGlobals(globals: string | undefined): string | undefined {
  if (!globals) return undefined;
  const m = /(?:^|;)\s*worker_processes\s+([^;\s]+)\s*;/.exec(globals);
  return m?.[1];
}
