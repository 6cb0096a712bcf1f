/**
 * Bus messages to events. Every topic that is an event today has a rule here; the open topics
 * (`alert.*`, `lint.*`, `event.*`, where Wasm plugins publish) read the fields documented in
 * wasm-plugins/README.md ("Events: the fields a plugin sets") and fall back to sensible defaults.
 */
import type { NginxHealth } from '../nginx/types.js';
import type { Json, JsonObject, Message } from '../topics.js';
import type { EventInput } from './log.js';
import type { EventState, Severity } from './types.js';
import { isSeverity } from './filter.js';

/** The topics the pipeline turns into events. */
export const EVENT_TOPICS = [
  'alert.*',
  'lint.*',
  'event.*',
  'nginx.log.error',
  'nginx.config.changed',
  'nginx.config.validated',
  'nginx.config.applied',
  'nginx.ssl.certificate.expiring',
  'nginx.instance.*',
  'agent.plugin.state',
  'agent.config.reloaded',
  'fleet.command',
] as const;

export interface ConverterDeps {
  /** Who publishes on an open topic (`wasm:<name>`), when known. */
  sourceOf?: (topic: string) => string | undefined;
  /** Whether a condition with this key fires now (so a recovery becomes `resolved`). */
  isFiring: (key: string) => boolean;
}

const SUMMARY_MAX = 300;
const KEY_MAX = 500;
/** Largest plugin payload (as JSON) kept whole in an event's attributes. */
const ATTRIBUTES_MAX = 16 * 1024;
const LIST_MAX = 20;

/** Severity words a plugin may use besides the four (`warn`, `crit`, ...). */
const SEVERITY_ALIASES: Record<string, Severity> = {
  warn: 'warning',
  err: 'error',
  crit: 'critical',
  fatal: 'critical',
  emerg: 'critical',
  alert: 'critical',
  notice: 'info',
  debug: 'info',
};

export class EventConverter {
  readonly #deps: ConverterDeps;

  constructor(deps: ConverterDeps) {
    this.#deps = deps;
  }

  convert(msg: Message): EventInput[] {
    switch (msg.topic) {
      case 'nginx.log.error': {
        const d = msg.data;
        const severity = nginxLevelSeverity(d.level);
        return [
          {
            time: d.time,
            severity,
            source: 'nginx-logs',
            kind: msg.topic,
            key: `nginx.log.error:${d.instanceId}:${d.file}:${normalise(d.message)}`,
            summary: clip(`nginx ${d.level}: ${d.message}`),
            attributes: { instance_id: d.instanceId, file: d.file, level: d.level, message: clip(d.message, 2000) },
          },
        ];
      }
      case 'nginx.config.changed': {
        const d = msg.data;
        const parseErrors = d.payload.errors;
        const what = d.previousVersion
          ? `changed (${describeDiff(d.added, d.changed, d.removed)})`
          : `read: ${d.files.length} file${d.files.length === 1 ? '' : 's'}`;
        const first = parseErrors[0];
        return [
          {
            time: msg.time,
            severity: parseErrors.length ? 'warning' : 'info',
            source: 'nginx-config',
            kind: msg.topic,
            key: `nginx.config:${d.instanceId}`,
            summary: clip(
              `nginx config ${d.confPath} ${what}${
                first ? `; parse error at ${first.file}:${first.line ?? '?'}: ${first.error}` : ''
              }`,
            ),
            attributes: {
              instance_id: d.instanceId,
              conf_path: d.confPath,
              version: d.version,
              ...(d.previousVersion ? { previous_version: d.previousVersion } : {}),
              added: d.added.slice(0, LIST_MAX),
              changed: d.changed.slice(0, LIST_MAX),
              removed: d.removed.slice(0, LIST_MAX),
              parse_errors: parseErrors.slice(0, LIST_MAX).map((e) => ({ file: e.file, line: e.line, error: e.error })),
            },
          },
        ];
      }
      case 'nginx.config.validated': {
        const d = msg.data;
        const key = `nginx.config.test:${d.instanceId}`;
        const messages = d.messages.slice(0, LIST_MAX).map((m) => ({
          level: m.level,
          text: m.text,
          ...(m.file ? { file: m.file } : {}),
          ...(m.line !== undefined ? { line: m.line } : {}),
        }));
        const attributes = { instance_id: d.instanceId, version: d.version, exit_code: d.exitCode, messages };
        if (d.ok) {
          const resolved = this.#deps.isFiring(key);
          return [
            {
              time: msg.time,
              severity: 'info',
              source: 'nginx-config',
              kind: msg.topic,
              key,
              summary: resolved ? 'nginx -t passes again' : 'nginx -t passed',
              attributes,
              ...(resolved ? { state: 'resolved' as const } : {}),
            },
          ];
        }
        const worst = d.messages.find((m) => m.level === 'emerg') ?? d.messages[0];
        const where = worst?.file ? ` (${worst.file}${worst.line !== undefined ? `:${worst.line}` : ''})` : '';
        return [
          {
            time: msg.time,
            severity: 'warning',
            source: 'nginx-config',
            kind: msg.topic,
            key,
            summary: clip(
              `nginx -t failed (exit ${d.exitCode ?? 'none'}): ${worst ? worst.text : 'no message'}${where}`,
            ),
            attributes,
            state: 'firing',
          },
        ];
      }
      case 'nginx.config.applied': {
        const d = msg.data;
        const failed = d.steps.find((s) => !s.ok);
        return [
          {
            time: msg.time,
            severity: d.ok ? 'info' : 'error',
            source: 'nginx-config',
            kind: msg.topic,
            key: `nginx.config.apply:${d.instanceId}`,
            summary: clip(
              d.ok
                ? `config applied${d.version ? ` (version ${d.version.slice(0, 12)})` : ''}`
                : `config apply failed at ${failed?.step ?? 'an unknown step'}${failed?.detail ? `: ${failed.detail}` : ''}${d.rolledBack ? '; rolled back' : ''}`,
            ),
            attributes: {
              instance_id: d.instanceId,
              ok: d.ok,
              rolled_back: d.rolledBack,
              ...(d.version ? { version: d.version } : {}),
              steps: d.steps.map((s) => ({
                step: s.step,
                ok: s.ok,
                duration_ms: s.durationMs,
                ...(s.detail ? { detail: s.detail } : {}),
              })),
            },
          },
        ];
      }
      case 'nginx.ssl.certificate.expiring': {
        const d = msg.data;
        const days = d.secondsLeft / 86_400;
        const severity: Severity = d.secondsLeft <= 0 ? 'critical' : days < 7 ? 'error' : 'warning';
        return [
          {
            time: msg.time,
            severity,
            source: 'nginx-config',
            kind: msg.topic,
            key: `nginx.ssl.certificate:${d.instanceId}:${d.path}`,
            summary:
              d.secondsLeft <= 0
                ? `certificate ${d.path} expired on ${new Date(d.notAfter).toISOString()}`
                : `certificate ${d.path} expires in ${days.toFixed(1)} days (${new Date(d.notAfter).toISOString()})`,
            attributes: {
              instance_id: d.instanceId,
              path: d.path,
              ...(d.subject ? { subject: d.subject } : {}),
              not_after: new Date(d.notAfter).toISOString(),
              seconds_left: d.secondsLeft,
            },
            state: 'firing',
          },
        ];
      }
      case 'nginx.instance.added':
      case 'nginx.instance.removed':
      case 'nginx.instance.reloaded': {
        const i = msg.data.instance;
        const verb = msg.topic.slice('nginx.instance.'.length);
        return [
          {
            time: msg.time,
            severity: 'info',
            source: 'nginx-discovery',
            kind: msg.topic,
            key: `nginx.instance:${i.id}`,
            summary: `nginx ${i.version} instance ${verb} (pid ${i.pid}, ${i.confPath})`,
            attributes: instanceAttributes(i),
          },
        ];
      }
      case 'nginx.instance.health':
        return this.#health(msg.time, msg.data.instance, msg.data.previousHealth);
      case 'agent.plugin.state':
        return this.#pluginState(msg.time, msg.data.plugin, msg.data.state, msg.data.reason);
      case 'agent.config.reloaded': {
        const d = msg.data;
        return [
          {
            time: msg.time,
            severity: d.ok ? 'info' : 'error',
            source: 'core',
            kind: msg.topic,
            key: 'agent.config',
            summary: clip(
              d.ok
                ? `config reloaded; changed: ${d.changedSections.join(', ') || 'nothing'}`
                : `new config refused, the old one stays in force: ${d.error ?? ''}`,
            ),
            attributes: { ok: d.ok, changed_sections: d.changedSections, ...(d.error ? { error: d.error } : {}) },
          },
        ];
      }
      case 'fleet.command': {
        // A command from the fleet (core/fleet): verb, outcome, status, duration_ms, error.
        const d = msg.data;
        const ok = d.outcome === 'ok';
        return [
          {
            time: msg.time,
            severity: ok ? 'info' : 'warning',
            source: 'core',
            kind: msg.topic,
            key: `fleet.command:${String(d.verb)}`,
            summary: clip(
              `fleet command ${String(d.verb)}: ${ok ? 'ok' : `${String(d.status)} ${String(d.error ?? 'failed')}`}`,
            ),
            attributes: d,
          },
        ];
      }
      default:
        if (msg.topic.startsWith('alert.') || msg.topic.startsWith('lint.') || msg.topic.startsWith('event.'))
          return this.#open(msg.topic, msg.time, msg.data as JsonObject);
        return [];
    }
  }

  #health(time: number, i: import('../nginx/types.js').NginxInstance, previous?: NginxHealth): EventInput[] {
    const key = `nginx.instance.health:${i.id}`;
    const attributes = { ...instanceAttributes(i), ...(previous ? { previous_health: previous } : {}) };
    if (i.health === 'HEALTHY') {
      const resolved = this.#deps.isFiring(key);
      return [
        {
          time,
          severity: 'info',
          source: 'nginx-discovery',
          kind: 'nginx.instance.up',
          key,
          summary: `nginx instance is HEALTHY again (pid ${i.pid}, ${i.confPath})`,
          attributes,
          ...(resolved ? { state: 'resolved' as const } : {}),
        },
      ];
    }
    return [
      {
        time,
        severity: i.health === 'UNHEALTHY' ? 'error' : 'warning',
        source: 'nginx-discovery',
        kind: i.health === 'UNHEALTHY' ? 'nginx.instance.down' : 'nginx.instance.degraded',
        key,
        summary: clip(
          `nginx instance is ${i.health} (pid ${i.pid}, ${i.confPath})${i.healthReason ? `: ${i.healthReason}` : ''}`,
        ),
        attributes,
        state: 'firing',
      },
    ];
  }

  #pluginState(time: number, plugin: string, state: string, reason?: string): EventInput[] {
    const key = `agent.plugin:${plugin}`;
    const attributes: JsonObject = { plugin, plugin_state: state, ...(reason ? { reason } : {}) };
    const base = { time, source: 'core', kind: 'agent.plugin.state', key, attributes };
    if (state === 'degraded' || state === 'quarantined' || state === 'failed') {
      return [
        {
          ...base,
          severity: state === 'degraded' ? 'warning' : 'error',
          summary: clip(`plugin ${plugin} is ${state}${reason ? `: ${reason}` : ''}`),
          state: 'firing',
        },
      ];
    }
    const recovered = this.#deps.isFiring(key);
    return [
      {
        ...base,
        severity: 'info',
        summary: recovered ? `plugin ${plugin} recovered (${state})` : `plugin ${plugin} is ${state}`,
        attributes: recovered ? { ...attributes, recovered: true } : attributes,
        ...(recovered ? { state: 'resolved' as const } : {}),
      },
    ];
  }

  /** `alert.*`, `lint.*`, `event.*`: the fields a plugin sets, with defaults. */
  #open(topic: string, time: number, data: JsonObject): EventInput[] {
    const source = this.#deps.sourceOf?.(topic) ?? 'unknown';
    const findings = data.findings;
    if (Array.isArray(findings)) {
      // A list of findings (config-lint): one event each, keyed by what and where.
      const { findings: _list, counts: _counts, ...common } = data;
      const out: EventInput[] = [];
      for (const f of findings) {
        if (f === null || typeof f !== 'object' || Array.isArray(f)) continue;
        out.push(this.#one(topic, time, source, { ...common, ...f }, 'info'));
      }
      return out;
    }
    return [this.#one(topic, time, source, data, topic.startsWith('alert.') ? 'warning' : 'info')];
  }

  #one(topic: string, time: number, source: string, data: JsonObject, defaultSeverity: Severity): EventInput {
    const severity = severityOf(data.severity) ?? defaultSeverity;
    const state = stateOf(data.state) ?? stateOf(data.status) ?? (topic.startsWith('alert.') ? 'firing' : undefined);
    const key = clip(typeof data.key === 'string' && data.key !== '' ? data.key : defaultKey(topic, data), KEY_MAX);
    // A plugin's payload is kept as the attributes unless it is large: the ring holds 10,000 events.
    const json = JSON.stringify(data);
    const attributes: JsonObject =
      json.length > ATTRIBUTES_MAX ? { truncated: true, bytes: json.length, preview: `${json.slice(0, 1000)}…` } : data;
    let summary = firstString(data.summary, data.message);
    if (summary === undefined) summary = `${topic} from ${source}: ${clip(json, 200)}`;
    else if (typeof data.reason === 'string' && data.summary === undefined && !summary.includes(data.reason))
      summary = `${summary}: ${data.reason}`;
    return {
      // A plugin's own time, when it is a plausible Unix ms (a Date can hold it).
      time: typeof data.time === 'number' && data.time > 0 && data.time < 8.64e15 ? data.time : time,
      severity,
      source,
      kind: topic,
      key,
      summary: clip(summary),
      attributes,
      ...(state ? { state } : {}),
    };
  }
}

/** The fields that name what an open-topic event is about, in key order. */
const KEY_FIELDS = ['instance_id', 'rule', 'log', 'file', 'line', 'path', 'name'] as const;

function defaultKey(topic: string, data: JsonObject): string {
  const parts = [topic];
  for (const f of KEY_FIELDS) {
    const v = data[f];
    if ((typeof v === 'string' && v !== '') || typeof v === 'number') parts.push(String(v));
  }
  return parts.join(':');
}

function severityOf(v: Json | undefined): Severity | undefined {
  if (typeof v !== 'string') return undefined;
  const s = v.toLowerCase();
  if (isSeverity(s)) return s;
  return SEVERITY_ALIASES[s];
}

function stateOf(v: Json | undefined): EventState | undefined {
  return v === 'firing' || v === 'resolved' ? v : undefined;
}

function firstString(...vs: (Json | undefined)[]): string | undefined {
  for (const v of vs) if (typeof v === 'string' && v !== '') return v;
  return undefined;
}

function nginxLevelSeverity(level: string): Severity {
  if (level === 'emerg' || level === 'alert') return 'critical';
  if (level === 'crit' || level === 'error') return 'error';
  if (level === 'warn') return 'warning';
  return 'info';
}

function instanceAttributes(i: import('../nginx/types.js').NginxInstance): JsonObject {
  return {
    instance_id: i.id,
    pid: i.pid,
    binary: i.binary,
    nginx_version: i.version,
    conf_path: i.confPath,
    health: i.health,
    ...(i.healthReason ? { health_reason: i.healthReason } : {}),
  };
}

function describeDiff(added: string[], changed: string[], removed: string[]): string {
  const parts: string[] = [];
  if (changed.length) parts.push(`changed ${listed(changed)}`);
  if (added.length) parts.push(`added ${listed(added)}`);
  if (removed.length) parts.push(`removed ${listed(removed)}`);
  return parts.join('; ') || 'no file changed';
}

function listed(files: string[]): string {
  return files.length > 3 ? `${files.slice(0, 3).join(', ')} and ${files.length - 3} more` : files.join(', ');
}

/** Numbers and hex runs replaced, so repeats of the same error line share a key. */
function normalise(message: string): string {
  return message
    .replace(/\b(client|server|request|upstream|host|referrer): .*$/, '')
    .replace(/\d+/g, '#')
    .slice(0, 200)
    .trim();
}

function clip(text: string, max = SUMMARY_MAX): string {
  const oneLine = text.includes('\n') ? text.replace(/\s*\n\s*/g, ' ') : text;
  return oneLine.length > max ? `${oneLine.slice(0, max - 1)}…` : oneLine;
}
