/**
 * The event model (issue 11): one typed record for everything that should reach a person.
 * Producers publish on the bus as today; the events pipeline (core/events/) turns every message
 * on an event topic into an `AgentEvent`, keeps the newest in a bounded ring, and feeds the sinks
 * (log, API and SSE stream, Alertmanager, OTLP logs, the fleet).
 *
 * This file is the contract other parts code against (fleet, `agent status`, the dashboard):
 * change it only with them.
 */
import type { JsonObject } from '../topics.js';

export const SEVERITIES = ['info', 'warning', 'error', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** A condition is `firing` until an event with the same `key` says `resolved`. */
export type EventState = 'firing' | 'resolved';

export interface AgentEvent {
  /** Monotonic per agent process, from 1. */
  readonly id: number;
  /** RFC 3339 time at which the event was recorded. */
  readonly time: string;
  readonly severity: Severity;
  /** Plugin name, `wasm:<name>`, or `core`. */
  readonly source: string;
  /** The bus topic it came from: `lint.nginx.config`, `nginx.instance.down`, ... */
  readonly kind: string;
  /** What it is about, for deduplication and resolution (e.g. instance id + file + line). */
  readonly key: string;
  /** One human line. */
  readonly summary: string;
  readonly attributes: JsonObject;
  /** Present for conditions only. */
  readonly state?: EventState;
}

export interface EventFilter {
  /** Topic patterns with `*` (`alert.*`); any of them matches. Empty or absent: all kinds. */
  kinds?: readonly string[];
  /** Minimum severity. */
  severity?: Severity;
  /** Only events with `id` greater than this. */
  since?: number;
  /** At most this many, the newest ones, returned oldest first. */
  limit?: number;
}

/** What the rest of the agent reads from the events pipeline. */
export interface EventLogReader {
  /** Events kept in the ring that match, oldest first. */
  recent(filter?: EventFilter): AgentEvent[];
  /** Conditions firing now: the latest `firing` event of each key not yet resolved. */
  firing(): AgentEvent[];
  /**
   * Called synchronously for every new event, in id order. The listener must not block: a sink
   * keeps its own bounded queue. Returns the function that unsubscribes.
   */
  subscribe(listener: (event: AgentEvent) => void): () => void;
  /** Id of the newest event, 0 when none. */
  readonly lastId: number;
}

export function severityAtLeast(severity: Severity, minimum: Severity): boolean {
  return SEVERITIES.indexOf(severity) >= SEVERITIES.indexOf(minimum);
}
