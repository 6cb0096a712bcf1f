/**
 * The bus's topic map: every topic name and the type of its payload, in one place.
 * `publish` and `subscribe` are checked against it at compile time, so no handler casts.
 *
 * Topics under the open namespaces (`alert.*`, `lint.*`, `event.*`) carry JSON objects: they are
 * where Wasm plugins publish, and where new event kinds can appear without a core change.
 */
import type { MetricBatch } from './metrics/model.js';
import type {
  AccessTop,
  CertificateExpiring,
  NginxConfigApplied,
  NginxConfigChanged,
  NginxConfigValidated,
  NginxErrorLogEvent,
  NginxInstanceEvent,
} from './nginx/types.js';

export type Json = string | number | boolean | null | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

export interface PluginStateEvent {
  plugin: string;
  state: string;
  reason?: string;
}

export interface AgentConfigReloaded {
  ok: boolean;
  changedSections: string[];
  error?: string;
}

export interface TopicMap {
  /** Metric batches from every collector; the metric store and exporters read them. */
  metrics: MetricBatch;
  'nginx.instance.added': NginxInstanceEvent;
  'nginx.instance.removed': NginxInstanceEvent;
  'nginx.instance.reloaded': NginxInstanceEvent;
  'nginx.instance.health': NginxInstanceEvent;
  /** First parse of an instance's config and every change after it. */
  'nginx.config.changed': NginxConfigChanged;
  'nginx.config.validated': NginxConfigValidated;
  'nginx.config.applied': NginxConfigApplied;
  'nginx.ssl.certificate.expiring': CertificateExpiring;
  /** emerg, alert and crit lines of an error_log. */
  'nginx.log.error': NginxErrorLogEvent;
  /** The most requested URIs of one access log lately (nginx-logs; read by the views' summary). */
  'nginx.access.top': AccessTop;
  'agent.config.reloaded': AgentConfigReloaded;
  'agent.plugin.state': PluginStateEvent;
  /** A fleet command answered (core/fleet): verb, outcome, status, duration_ms, error. */
  'fleet.command': JsonObject;
  [topic: `alert.${string}`]: JsonObject;
  [topic: `lint.${string}`]: JsonObject;
  [topic: `event.${string}`]: JsonObject;
}

export type Topic = keyof TopicMap & string;

export interface Envelope<K extends Topic = Topic> {
  readonly topic: K;
  /** Unix ms at publish. */
  readonly time: number;
  readonly data: TopicMap[K];
}

/** A message as a subscriber sees it: a union discriminated by `topic`. */
export type Message = { [K in Topic]: Envelope<K> }[Topic];

/** Topics a Wasm plugin may publish into, subject to its manifest's `publishes`. */
export const OPEN_TOPIC_PREFIXES = ['alert.', 'lint.', 'event.'] as const;
