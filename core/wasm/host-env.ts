/**
 * What the host offers a plugin module to import, by ABI, in one place: the worker instantiates
 * against it and `agent plugins check` checks a module against it, so a module that passes the check
 * links at load. Pure: no Extism SDK, no worker.
 */

export const EXTISM_ENV = 'extism:host/env';
export const EXTISM_USER = 'extism:host/user';
export const WASI = 'wasi_snapshot_preview1';
export const WAPC = 'wapc';

export type PluginAbi = 'extism' | 'wapc';

/** The kernel functions `@extism/extism` 1.0.3 puts in `extism:host/env` itself (call-context.ts). */
export const SDK_KERNEL = [
  'alloc',
  'free',
  'load_u8',
  'load_u64',
  'store_u8',
  'store_u64',
  'input_offset',
  'input_length',
  'input_load_u8',
  'input_load_u64',
  'output_set',
  'error_set',
  'length',
  'length_unsafe',
] as const;

/**
 * The `extism:host/env` functions this host supplies over the SDK's (which lacks `log_trace`,
 * `get_log_level` and `http_headers`, stubs `http_request`, and keeps vars in blocks the agent resets
 * before every call): worker.ts implements each.
 */
export const HOST_ENV = [
  'log_trace',
  'log_debug',
  'log_info',
  'log_warn',
  'log_error',
  'get_log_level',
  'config_get',
  'var_get',
  'var_set',
  'http_request',
  'http_status_code',
  'http_headers',
] as const;

/** The waPC host functions (module `wapc`). */
export const WAPC_HOST = [
  '__guest_request',
  '__guest_response',
  '__guest_error',
  '__host_call',
  '__host_response',
  '__host_response_len',
  '__host_error',
  '__host_error_len',
  '__console_log',
] as const;

/** Extism's log levels as `get_log_level` returns them (the PDKs skip a line below it). */
export const EXTISM_LOG_LEVEL = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 } as const;
export type PluginLogLevel = keyof typeof EXTISM_LOG_LEVEL;

/** `get_log_level` for the agent's pino level: lines below it are dropped (`silent`: every line). */
export function extismLogLevel(pinoLevel: string): number {
  switch (pinoLevel) {
    case 'trace':
      return 0;
    case 'debug':
      return 1;
    case 'info':
      return 2;
    case 'warn':
      return 3;
    case 'error':
    case 'fatal':
      return 4;
    default:
      return 0x7fffffff;
  }
}

/**
 * Names each import module offers, by ABI. WASI names come from the caller (Node's own WASI import
 * object), since a module may use any of them.
 */
export function offeredImports(abi: PluginAbi, wasiNames: readonly string[]): Map<string, Set<string>> {
  const offered = new Map<string, Set<string>>();
  if (abi === 'wapc') offered.set(WAPC, new Set(WAPC_HOST));
  else {
    offered.set(EXTISM_ENV, new Set([...SDK_KERNEL, ...HOST_ENV]));
    offered.set(EXTISM_USER, new Set(['publish']));
  }
  offered.set(WASI, new Set(wasiNames));
  return offered;
}

/** The imports of `mod` the host does not offer, each as a sentence naming it. */
export function unsatisfiedImports(mod: WebAssembly.Module, abi: PluginAbi, wasiNames: readonly string[]): string[] {
  const offered = offeredImports(abi, wasiNames);
  const problems: string[] = [];
  for (const imp of WebAssembly.Module.imports(mod)) {
    const names = offered.get(imp.module);
    if (imp.kind === 'function' && names?.has(imp.name)) continue;
    const what = `imports ${imp.kind} "${imp.module}"."${imp.name}"`;
    if (imp.kind !== 'function') problems.push(`${what}: the host offers functions only (export your memory instead)`);
    else if (names) problems.push(`${what}: the host has no such function in "${imp.module}"`);
    else
      problems.push(
        `${what}: the host offers no module "${imp.module}" (abi ${abi}: ${[...offered.keys()].map((m) => `"${m}"`).join(', ')})`,
      );
  }
  return problems;
}

/**
 * True when `host` matches one of `patterns`: Extism's `allowed_hosts` globs on the host name,
 * `*` any run of characters (dots included), `?` one character, case-insensitive.
 */
export function hostAllowed(host: string, patterns: readonly string[]): boolean {
  const name = host.toLowerCase().replace(/^\[|\]$/g, '');
  return patterns.some((p) => globToRegExp(p.toLowerCase()).test(name));
}

function globToRegExp(glob: string): RegExp {
  let src = '';
  for (const ch of glob) {
    if (ch === '*') src += '.*';
    else if (ch === '?') src += '.';
    else src += ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  return new RegExp(`^${src}$`);
}
