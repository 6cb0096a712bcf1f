/**
 * A small typed schema for the agent's configuration.
 *
 * Why hand-written rather than zod/ajv: the agent needs, from one declaration, (1) the TypeScript
 * type of the validated config, (2) defaults, (3) the list of leaf keys so `NGINX_AGENT_<SECTION>_<KEY>`
 * variables can be mapped and coerced from strings, and (4) errors that name the YAML file, line
 * and key. Each of those is a few lines here and awkward to bolt onto a general validator.
 */
import { accessSync, constants, statSync } from 'node:fs';

export interface Issue {
  /** Key path, e.g. ['api', 'port']. */
  path: (string | number)[];
  message: string;
}

interface Base<T> {
  readonly kind: string;
  readonly description: string;
  readonly default: T | undefined;
  /** Validates `value` (undefined when absent) and returns the typed value, pushing issues. */
  parse(value: unknown, path: (string | number)[], issues: Issue[]): T;
  /** Coerces an environment variable's string into the JS value `parse` expects. */
  fromEnv(text: string): unknown;
}

export type Schema<T> = Base<T>;
export type Infer<S> = S extends Schema<infer T> ? T : never;

interface Opts<T> {
  default?: T;
  description?: string;
}

/** How a YAML value reads in an error: `the string "x"`, `number 3`, `a list`, `a mapping`, `null`. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  return `${typeof v} ${String(v)}`;
}

function leaf<T>(
  kind: string,
  opts: Opts<T>,
  check: (v: unknown) => { ok: true; value: T } | { ok: false; message: string },
  fromEnv: (t: string) => unknown = (t) => t,
): Schema<T> {
  return {
    kind,
    description: opts.description ?? '',
    default: opts.default,
    fromEnv,
    parse(value, path, issues) {
      if (value === undefined || value === null) {
        if (opts.default !== undefined) return opts.default;
        issues.push({ path, message: `is required (${kind})` });
        return undefined as T;
      }
      const r = check(value);
      if (r.ok) return r.value;
      issues.push({ path, message: r.message });
      return (opts.default ?? undefined) as T;
    },
  };
}

export function string(
  opts: Opts<string> & {
    pattern?: RegExp;
    patternHelp?: string;
    /** `readable`: a non-empty value names a file the agent reads at start; it must exist and be readable. */
    file?: 'readable';
  } = {},
): Schema<string> {
  return leaf('string', opts, (v) => {
    if (typeof v !== 'string') return { ok: false, message: `must be a string, got ${describeValue(v)}` };
    if (opts.pattern && v !== '' && !opts.pattern.test(v))
      return {
        ok: false,
        message: `${JSON.stringify(v)} is not valid: ${opts.patternHelp ?? `must match ${opts.pattern}`}`,
      };
    if (opts.file === 'readable' && v !== '') {
      const problem = unreadableFile(v);
      if (problem) return { ok: false, message: problem };
    }
    return { ok: true, value: v };
  });
}

/** Why `path` cannot be read as a file, or undefined when it can. */
export function unreadableFile(path: string): string | undefined {
  try {
    if (!statSync(path).isFile()) return `${path} is not a regular file`;
    accessSync(path, constants.R_OK);
    return undefined;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why =
      err.code === 'ENOENT'
        ? 'no such file'
        : err.code === 'EACCES'
          ? 'permission denied for the agent user'
          : err.message;
    return `cannot read ${path}: ${why}`;
  }
}

export function oneOf<const V extends string>(values: readonly V[], opts: Opts<V> = {}): Schema<V> {
  return leaf(`one of ${values.join(', ')}`, opts, (v) =>
    typeof v === 'string' && (values as readonly string[]).includes(v)
      ? { ok: true, value: v as V }
      : { ok: false, message: `must be one of ${values.join(', ')}, got ${describeValue(v)}` },
  );
}

export function int(opts: Opts<number> & { min?: number; max?: number } = {}): Schema<number> {
  return leaf(
    'integer',
    opts,
    (v) => {
      if (typeof v !== 'number' || !Number.isInteger(v))
        return { ok: false, message: `must be an integer, got ${describeValue(v)}` };
      if (opts.min !== undefined && v < opts.min)
        return { ok: false, message: `must be at least ${opts.min}, got ${v}` };
      if (opts.max !== undefined && v > opts.max)
        return { ok: false, message: `must be at most ${opts.max}, got ${v}` };
      return { ok: true, value: v };
    },
    (t) => (/^-?\d+$/.test(t.trim()) ? Number(t) : t),
  );
}

export function number(opts: Opts<number> & { min?: number; max?: number } = {}): Schema<number> {
  return leaf(
    'number',
    opts,
    (v) => {
      if (typeof v !== 'number' || !Number.isFinite(v))
        return { ok: false, message: `must be a number, got ${describeValue(v)}` };
      if (opts.min !== undefined && v < opts.min)
        return { ok: false, message: `must be at least ${opts.min}, got ${v}` };
      if (opts.max !== undefined && v > opts.max)
        return { ok: false, message: `must be at most ${opts.max}, got ${v}` };
      return { ok: true, value: v };
    },
    (t) => (t.trim() !== '' && Number.isFinite(Number(t)) ? Number(t) : t),
  );
}

export function bool(opts: Opts<boolean> = {}): Schema<boolean> {
  return leaf(
    'boolean',
    opts,
    (v) =>
      typeof v === 'boolean'
        ? { ok: true, value: v }
        : { ok: false, message: `must be true or false, got ${describeValue(v)}` },
    (t) => (/^(true|1|yes|on)$/i.test(t) ? true : /^(false|0|no|off)$/i.test(t) ? false : t),
  );
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `500ms`, `15s`, `1m30s`, `2h`, `7d` into milliseconds; null when malformed. */
export function parseDuration(text: string): number | null {
  const t = text.trim();
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(t)) return null;
  let total = 0;
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) total += Number(m[1]) * UNITS[m[2]];
  return Math.round(total);
}

/** A duration written with a unit (`15s`); the typed value is milliseconds. */
export function duration(
  opts: { default?: string; description?: string; min?: string; max?: string } = {},
): Schema<number> {
  const def = opts.default === undefined ? undefined : parseDuration(opts.default)!;
  const min = opts.min === undefined ? undefined : parseDuration(opts.min)!;
  const max = opts.max === undefined ? undefined : parseDuration(opts.max)!;
  return leaf('duration', { default: def, description: opts.description }, (v) => {
    const ms = typeof v === 'string' ? parseDuration(v) : null;
    if (ms === null)
      return {
        ok: false,
        message: `must be a duration with a unit like 500ms, 15s, 1m or 2h, got ${describeValue(v)}`,
      };
    if (min !== undefined && ms < min) return { ok: false, message: `must be at least ${opts.min}, got ${v}` };
    if (max !== undefined && ms > max) return { ok: false, message: `must be at most ${opts.max}, got ${v}` };
    return { ok: true, value: ms };
  });
}

export function list<T>(item: Schema<T>, opts: Opts<T[]> = {}): Schema<T[]> {
  return {
    kind: `list of ${item.kind}`,
    description: opts.description ?? '',
    default: opts.default,
    fromEnv: (t) => (t.trim() === '' ? [] : t.split(',').map((p) => item.fromEnv(p.trim()))),
    parse(value, path, issues) {
      if (value === undefined || value === null) return [...(opts.default ?? [])];
      if (!Array.isArray(value)) {
        issues.push({ path, message: `must be a list, got ${describeValue(value)}` });
        return [...(opts.default ?? [])];
      }
      return value.map((v, i) => item.parse(v, [...path, i], issues));
    },
  };
}

/** A mapping from free-form keys to values of one schema (labels, headers, plugin config). */
export function record<T>(
  item: Schema<T>,
  opts: Opts<Record<string, T>> & { keyPattern?: RegExp; keyHelp?: string } = {},
): Schema<Record<string, T>> {
  return {
    kind: `mapping of ${item.kind}`,
    description: opts.description ?? '',
    default: opts.default,
    fromEnv: (t) => {
      const out: Record<string, unknown> = {};
      for (const pair of t.split(',')) {
        if (!pair.trim()) continue;
        const eq = pair.indexOf('=');
        if (eq < 0) return t;
        out[pair.slice(0, eq).trim()] = item.fromEnv(pair.slice(eq + 1).trim());
      }
      return out;
    },
    parse(value, path, issues) {
      if (value === undefined || value === null) return { ...(opts.default ?? {}) };
      if (typeof value !== 'object' || Array.isArray(value)) {
        issues.push({ path, message: `must be a mapping, got ${describeValue(value)}` });
        return { ...(opts.default ?? {}) };
      }
      const out: Record<string, T> = {};
      for (const [k, v] of Object.entries(value)) {
        if (opts.keyPattern && !opts.keyPattern.test(k)) {
          issues.push({
            path: [...path, k],
            message: `key ${JSON.stringify(k)} is not valid: ${opts.keyHelp ?? `must match ${opts.keyPattern}`}`,
          });
          continue;
        }
        out[k] = item.parse(v, [...path, k], issues);
      }
      return out;
    },
  };
}

export type Shape = Record<string, Schema<unknown>>;
export type InferShape<S extends Shape> = { [K in keyof S]: Infer<S[K]> };

export interface ObjectSchema<S extends Shape> extends Schema<InferShape<S>> {
  readonly kind: 'object';
  readonly shape: S;
}

/** A mapping with known keys; unknown keys are errors. */
export function object<S extends Shape>(shape: S, opts: { description?: string } = {}): ObjectSchema<S> {
  return {
    kind: 'object',
    shape,
    description: opts.description ?? '',
    default: undefined,
    fromEnv: (t) => t,
    parse(value, path, issues) {
      const src = value ?? {};
      if (typeof src !== 'object' || Array.isArray(src)) {
        issues.push({ path, message: `must be a mapping, got ${describeValue(value)}` });
        return object(shape).parse({}, path, []);
      }
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(src)) {
        if (!(key in shape)) {
          const known = Object.keys(shape).join(', ');
          issues.push({
            path: [...path, key],
            message: `unknown key ${JSON.stringify(key)} (known keys here: ${known})`,
          });
        }
      }
      for (const [key, s] of Object.entries(shape))
        out[key] = s.parse((src as Record<string, unknown>)[key], [...path, key], issues);
      return out as InferShape<S>;
    },
  };
}

/** Every leaf key path of a schema (objects are walked, everything else is a leaf). */
export function leafPaths(
  schema: Schema<unknown>,
  prefix: string[] = [],
): { path: string[]; schema: Schema<unknown> }[] {
  if (schema.kind === 'object') {
    const shape = (schema as ObjectSchema<Shape>).shape;
    return Object.entries(shape).flatMap(([k, s]) => leafPaths(s, [...prefix, k]));
  }
  return [{ path: prefix, schema }];
}

/** Deep-freezes a validated config so no plugin can change what another one reads. */
export function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v as object)) deepFreeze(x);
  }
  return v;
}
