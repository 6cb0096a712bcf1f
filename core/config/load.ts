/**
 * Loads the agent config: defaults < YAML file < NGINX_AGENT_* environment < CLI flags.
 * Every problem is collected and reported at once, each naming where it came from
 * (file:line:column and key, the environment variable, or the flag).
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { LineCounter, parseDocument, type Document } from 'yaml';
import type { BuiltinPlugin } from '../plugin/builtin.js';
import { sectionKey } from '../plugin/builtin.js';
import { coreShape } from './core-schema.js';
import {
  deepFreeze,
  leafPaths,
  object,
  type Infer,
  type Issue,
  type ObjectSchema,
  type Schema,
  type Shape,
} from './schema.js';
import { yamlPosition } from './yaml-position.js';
import { PACKAGE_ROOT } from '../package-root.js';

export const ENV_PREFIX = 'NGINX_AGENT_';
/** NGINX_AGENT_* variables that are not config keys: bin/agent.js and its launcher read them. */
export const PROCESS_VARIABLES: ReadonlySet<string> = new Set([
  'NGINX_AGENT_NODE',
  'NGINX_AGENT_EXTRA_CA_CERTS',
  'NGINX_AGENT_TRACE_STARTUP',
  'NGINX_AGENT_CODE_CACHE_OUT',
]);
export const SYSTEM_CONFIG_PATH = '/etc/nginx-agent/nginx-agent.yaml';
export { PACKAGE_ROOT };
export const CHECKOUT_CONFIG_PATH = resolve(PACKAGE_ROOT, 'config', 'agent.yaml');

export function rootSchema(builtins: readonly BuiltinPlugin[]) {
  const shape: Shape = { ...coreShape };
  for (const b of builtins) shape[sectionKey(b.name)] = b.schema;
  return object(shape as typeof coreShape & Shape);
}

export type CoreConfig = Infer<ObjectSchema<typeof coreShape>>;
/** Validated, frozen config: core sections typed, plugin sections by key. */
export type AgentConfig = CoreConfig & Record<string, unknown>;

export interface LoadOptions {
  builtins: readonly BuiltinPlugin[];
  /** Explicit --config; when absent the default search is used. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Flag values by key path, e.g. { 'api.port': 9000 }, with the flag's name for messages. */
  flags?: { path: string; flag: string; value: unknown }[];
  /** Files tried in order when `file` is absent. */
  searchPaths?: string[];
  /**
   * `ignore`: top-level sections that no schema knows (the plugins' when `builtins` is empty) are left
   * out unchecked, for CLI clients that read only the core sections (api.host, api.port, api.token)
   * and should not load every plugin to do so. Default `error`.
   */
  unknownSections?: 'error' | 'ignore';
}

export interface LoadedConfig {
  config: AgentConfig;
  /** The file read, or null when only defaults/env/flags apply. */
  file: string | null;
  /** Environment variables that were applied. */
  env: string[];
  warnings: string[];
}

export class ConfigError extends Error {
  readonly exitCode = 2;
  constructor(
    readonly problems: string[],
    readonly file: string | null,
  ) {
    super(`invalid configuration${file ? ` in ${file}` : ''}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Origin = { kind: 'env'; name: string } | { kind: 'flag'; name: string };

export function envName(path: readonly (string | number)[]): string {
  return ENV_PREFIX + path.join('_').toUpperCase();
}

export function loadConfig(opts: LoadOptions): LoadedConfig {
  const schema = rootSchema(opts.builtins);
  const env = opts.env ?? process.env;
  const warnings: string[] = [];
  const problems: string[] = [];
  const origins = new Map<string, Origin>();

  // 1. The file.
  let file: string | null = null;
  if (opts.file !== undefined) {
    file = resolve(opts.file);
    if (!existsSync(file)) throw new ConfigError([`config file ${file} does not exist (given with --config)`], file);
  } else {
    file = (opts.searchPaths ?? [SYSTEM_CONFIG_PATH, CHECKOUT_CONFIG_PATH]).find((p) => existsSync(p)) ?? null;
  }
  let raw: Record<string, unknown> = {};
  let doc: Document | undefined;
  const lines = new LineCounter();
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new ConfigError([`cannot read ${file}: ${(e as Error).message}`], file);
    }
    doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
    if (doc.errors.length) {
      throw new ConfigError(
        doc.errors.map(
          (e) =>
            `${file}:${e.linePos?.[0].line ?? '?'}:${e.linePos?.[0].col ?? '?'}: YAML syntax error: ${e.message.split('\n')[0]}`,
        ),
        file,
      );
    }
    const js = doc.toJS() as unknown;
    if (js !== null && js !== undefined) {
      if (typeof js !== 'object' || Array.isArray(js))
        throw new ConfigError([`${file}:1:1: the file must be a mapping of sections (log:, api:, ...)`], file);
      raw = js as Record<string, unknown>;
    }
  }

  // 2. The environment: every leaf key has a variable; unknown NGINX_AGENT_* names are warnings.
  const leaves = new Map(leafPaths(schema).map((l) => [envName(l.path), l]));
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined || PROCESS_VARIABLES.has(name)) continue;
    const leaf = leaves.get(name);
    if (!leaf && opts.unknownSections === 'ignore') continue;
    if (!leaf) {
      warnings.push(`unknown environment variable ${name} is ignored (no config key maps to it)`);
      continue;
    }
    setIn(raw, leaf.path, leaf.schema.fromEnv(value));
    origins.set(leaf.path.join('.'), { kind: 'env', name });
  }

  // 3. Flags.
  for (const f of opts.flags ?? []) {
    if (f.value === undefined) continue;
    const path = f.path.split('.');
    setIn(raw, path, f.value);
    origins.set(f.path, { kind: 'flag', name: f.flag });
  }

  // 4. Validate everything at once.
  if (opts.unknownSections === 'ignore') {
    for (const key of Object.keys(raw)) if (!(key in schema.shape)) delete raw[key];
  }
  const issues: Issue[] = [];
  const config = schema.parse(raw, [], issues) as AgentConfig;
  for (const issue of issues) problems.push(locate(issue, origins, file, doc, lines));
  if (problems.length) throw new ConfigError(problems, file);

  return {
    config: deepFreeze(config),
    file,
    env: [...origins.values()].filter((o) => o.kind === 'env').map((o) => o.name),
    warnings,
  };
}

function setIn(obj: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let cur = obj;
  for (const key of path.slice(0, -1)) {
    const next = cur[key];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[path[path.length - 1]] = value;
}

function locate(
  issue: Issue,
  origins: Map<string, Origin>,
  file: string | null,
  doc: Document | undefined,
  lines: LineCounter,
): string {
  const key = issue.path.join('.');
  for (let i = issue.path.length; i > 0; i--) {
    const o = origins.get(issue.path.slice(0, i).join('.'));
    if (o)
      return o.kind === 'env'
        ? `environment variable ${o.name} (${key}): ${issue.message}`
        : `flag ${o.name} (${key}): ${issue.message}`;
  }
  if (file && doc) {
    const pos = yamlPosition(doc, issue.path, lines);
    if (pos) return `${file}:${pos.line}:${pos.col}: ${key}: ${issue.message}`;
    return `${file}: ${key}: ${issue.message}`;
  }
  return `${key}: ${issue.message}`;
}

/** Top-level sections whose values differ (for SIGHUP reconfiguration). */
export function changedSections(a: AgentConfig, b: AgentConfig): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).sort();
}

/** The effective config as YAML-ready values: durations back to text, secrets masked. */
export function displayConfig(schema: Schema<unknown>, value: unknown): unknown {
  if (schema.kind === 'object') {
    const shape = (schema as ObjectSchema<Shape>).shape;
    return Object.fromEntries(
      Object.entries(shape).map(([k, s]) => {
        const v = (value as Record<string, unknown>)[k];
        if (/token$/.test(k) && typeof v === 'string' && v !== '') return [k, '<redacted>'];
        // Header values carry credentials (Authorization, API keys): show the names only.
        if (k === 'headers' && s.kind.startsWith('mapping') && v && typeof v === 'object') {
          return [k, Object.fromEntries(Object.keys(v).map((h) => [h, '<redacted>']))];
        }
        return [k, displayConfig(s, v)];
      }),
    );
  }
  if (schema.kind === 'duration' && typeof value === 'number') return formatDuration(value);
  return value;
}

export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
