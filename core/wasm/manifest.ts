/**
 * `plugin.yaml`: the manifest of a Wasm plugin folder. Parsing is a pure function of the text;
 * every problem is reported at once, each as `file:line:col: key: what is wrong`.
 */
import { LineCounter, parseDocument } from 'yaml';
import { compilePattern } from '../bus/pattern.js';
import { OPEN_TOPIC_PREFIXES } from '../topics.js';
import { describeValue } from '../config/schema.js';
import { yamlPosition } from '../config/yaml-position.js';
import type { PluginAbi } from './host-env.js';
import { isOpenPattern } from './open-topics.js';

export { isOpenPattern, isOpenTopic } from './open-topics.js';

/** A validated manifest. Limits left out are filled from the `wasm` config section by the caller. */
export interface Manifest {
  name: string;
  /** Module path relative to the plugin folder. */
  wasm: string;
  /** Lower-case hex SHA-256 the module must match. */
  sha256?: string;
  subscriptions: string[];
  /**
   * For a plugin subscribed to `metrics`: the metric names it reads. Each batch reaches it with only
   * those metrics (its source, time, resource, interval and final unchanged); [] = every metric.
   */
  metric_names: string[];
  publishes: string[];
  config: Record<string, string>;
  timeout_ms?: number;
  memory_mb?: number;
  allowed_hosts: string[];
  allowed_paths: Record<string, string>;
  /** `extism` (default) or `wapc`. */
  abi: PluginAbi;
  vars_max_bytes?: number;
  http_timeout_ms?: number;
  http_max_response_bytes?: number;
}

export const MANIFEST_FILE = 'plugin.yaml';
export const MANIFEST_KEYS = [
  'name',
  'wasm',
  'sha256',
  'subscriptions',
  'metric_names',
  'publishes',
  'config',
  'timeout_ms',
  'memory_mb',
  'allowed_hosts',
  'allowed_paths',
  'abi',
  'vars_max_bytes',
  'http_timeout_ms',
  'http_max_response_bytes',
] as const;
export const ABIS: readonly PluginAbi[] = ['extism', 'wapc'];
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export class ManifestError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`invalid plugin manifest ${file}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ManifestError';
  }
}

/** Parses and validates `text` (the content of `file`); throws ManifestError listing every problem. */
export function parseManifest(text: string, file: string): Manifest {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  if (doc.errors.length) {
    throw new ManifestError(
      file,
      doc.errors.map(
        (e) =>
          `${file}:${e.linePos?.[0].line ?? '?'}:${e.linePos?.[0].col ?? '?'}: YAML syntax error: ${e.message.split('\n')[0]}`,
      ),
    );
  }
  const raw = doc.toJS() as unknown;
  const problems: string[] = [];
  const at = (path: (string | number)[], message: string) => {
    const pos = yamlPosition(doc, path, lines);
    problems.push(
      `${file}:${pos ? `${pos.line}:${pos.col}` : '1:1'}: ${path.length ? `${path.join('.')}: ` : ''}${message}`,
    );
  };
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ManifestError(file, [
      `${file}:1:1: must be a mapping with at least name, wasm, subscriptions and publishes`,
    ]);
  }
  const r = raw as Record<string, unknown>;
  for (const k of Object.keys(r)) {
    if (!(MANIFEST_KEYS as readonly string[]).includes(k))
      at([k], `unknown key ${JSON.stringify(k)} (known keys: ${MANIFEST_KEYS.join(', ')})`);
  }
  const str = (key: string, required: boolean): string | undefined => {
    const v = r[key];
    if (v === undefined || v === null) {
      if (required) at([], `missing required key ${JSON.stringify(key)}`);
      return undefined;
    }
    if (typeof v !== 'string' || v === '') {
      at([key], `must be a non-empty string, got ${describeValue(v)}`);
      return undefined;
    }
    return v;
  };
  const strList = (
    key: string,
    required: boolean,
    check?: (s: string, path: (string | number)[]) => void,
  ): string[] => {
    const v = r[key];
    if (v === undefined || v === null) {
      if (required) at([], `missing required key ${JSON.stringify(key)} (a list; [] for none)`);
      return [];
    }
    if (!Array.isArray(v)) {
      at([key], `must be a list of strings, got ${describeValue(v)}`);
      return [];
    }
    const out: string[] = [];
    v.forEach((item, i) => {
      if (typeof item !== 'string' || item === '')
        at([key, i], `must be a non-empty string, got ${describeValue(item)}`);
      else {
        check?.(item, [key, i]);
        out.push(item);
      }
    });
    return out;
  };
  const strMap = (key: string, checkKey?: (k: string, path: (string | number)[]) => void): Record<string, string> => {
    const v = r[key];
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v)) {
      at([key], `must be a mapping of strings, got ${describeValue(v)}`);
      return {};
    }
    const out: Record<string, string> = {};
    for (const [k, item] of Object.entries(v)) {
      if (typeof item !== 'string')
        at([key, k], `must be a string (quote numbers and booleans: "300"), got ${describeValue(item)}`);
      else {
        checkKey?.(k, [key, k]);
        out[k] = item;
      }
    }
    return out;
  };
  const posInt = (key: string, max: number): number | undefined => {
    const v = r[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) {
      at([key], `must be an integer from 1 to ${max}, got ${describeValue(v)}`);
      return undefined;
    }
    return v;
  };
  const pattern = (s: string, path: (string | number)[]) => {
    try {
      compilePattern(s);
    } catch (e) {
      at(path, (e as Error).message);
    }
  };

  const name = str('name', true);
  if (name !== undefined && !NAME.test(name))
    at(
      ['name'],
      `${JSON.stringify(name)} is not a valid plugin name: letters, digits, ".", "_" and "-", starting with a letter or digit, at most 63 characters`,
    );
  const wasm = str('wasm', true);
  if (wasm !== undefined && (wasm.startsWith('/') || wasm.split(/[\\/]/).includes('..'))) {
    at(['wasm'], `must be a path inside the plugin folder (relative, no ".."), got ${JSON.stringify(wasm)}`);
  }
  let sha256 = str('sha256', false);
  if (sha256 !== undefined) {
    if (!/^[0-9a-fA-F]{64}$/.test(sha256))
      at(['sha256'], `must be 64 hex digits (the output of sha256sum), got ${JSON.stringify(sha256)}`);
    else sha256 = sha256.toLowerCase();
  }
  const subscriptions = strList('subscriptions', true, pattern);
  const metric_names = strList('metric_names', false);
  const publishes = strList('publishes', true, (s, path) => {
    pattern(s, path);
    if (!isOpenPattern(s) && s !== 'metrics') {
      at(
        path,
        `${JSON.stringify(s)} is not an open topic: a Wasm plugin may publish only under ${OPEN_TOPIC_PREFIXES.map((p) => `${p}*`).join(', ')} (for example "alert.my_plugin"), and MetricBatches on "metrics"`,
      );
    }
  });
  const config = strMap('config');
  for (const [k, item] of Object.entries(config)) {
    // The Extism JS SDK traps config_get on an empty value, which would fail the plugin at its first read.
    if (item === '')
      at(
        ['config', k],
        'must not be empty (Extism cannot hand an empty value to the plugin): leave the key out instead',
      );
  }
  const timeout_ms = posInt('timeout_ms', 600_000);
  const memory_mb = posInt('memory_mb', 4096);
  const allowed_hosts = strList('allowed_hosts', false);
  const allowed_paths = strMap('allowed_paths', (k, path) => {
    if (k === '') at(path, 'a host path must not be empty');
  });
  const abi = str('abi', false) ?? 'extism';
  if (!(ABIS as readonly string[]).includes(abi))
    at(['abi'], `must be ${ABIS.map((a) => JSON.stringify(a)).join(' or ')}, got ${JSON.stringify(abi)}`);
  const vars_max_bytes = posInt('vars_max_bytes', 256 * 1_048_576);
  const http_timeout_ms = posInt('http_timeout_ms', 600_000);
  const http_max_response_bytes = posInt('http_max_response_bytes', 1024 * 1_048_576);
  if (problems.length) throw new ManifestError(file, problems);
  return {
    name: name!,
    wasm: wasm!,
    ...(sha256 ? { sha256 } : {}),
    subscriptions,
    metric_names,
    publishes,
    config,
    ...(timeout_ms !== undefined ? { timeout_ms } : {}),
    ...(memory_mb !== undefined ? { memory_mb } : {}),
    allowed_hosts,
    allowed_paths,
    abi: abi as PluginAbi,
    ...(vars_max_bytes !== undefined ? { vars_max_bytes } : {}),
    ...(http_timeout_ms !== undefined ? { http_timeout_ms } : {}),
    ...(http_max_response_bytes !== undefined ? { http_max_response_bytes } : {}),
  };
}
