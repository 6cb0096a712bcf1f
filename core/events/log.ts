/**
 * The event log: assigns ids and times, keeps the newest events in a bounded ring, tracks the
 * conditions firing now (by key), and hands every new event to its subscribers synchronously.
 */
import type { Logger } from 'pino';
import type { JsonObject } from '../topics.js';
import { compileFilter } from './filter.js';
import type { AgentEvent, EventFilter, EventLogReader, EventState, Severity } from './types.js';

/** An event before the log numbers it. */
export interface EventInput {
  severity: Severity;
  source: string;
  kind: string;
  key: string;
  summary: string;
  attributes: JsonObject;
  state?: EventState;
  /** Unix ms; now when absent. */
  time?: number;
}

/** How a sink is doing, for `/health` and `agent.events.dropped{sink}`. */
export interface SinkReport {
  state: 'ok' | 'degraded' | 'failing' | 'disabled';
  reason?: string;
  queued: number;
  capacity: number;
  dropped: number;
  /** Sink-specific figures (clients, alerts firing, ...). */
  details?: Record<string, unknown>;
}

/** What a plugin gets as `ctx.events`: the reader, and a way to report the sink it runs. */
export interface PluginEvents extends EventLogReader {
  /** Registers a sink's report under `name`; returns the function that removes it. */
  registerSink(name: string, report: () => SinkReport): () => void;
}

export interface EventLogOptions {
  /** Events kept for `/v1/events` (`events.buffer_size`). */
  capacity: number;
  logger?: Logger;
  now?: () => number;
}

/** Firing conditions kept at most; beyond it the oldest is forgotten (counted). */
const MAX_FIRING = 100_000;

export class EventLog implements PluginEvents {
  readonly capacity: number;
  /** Circular buffer of the newest `capacity` events; `#next` is the slot of the next one. */
  readonly #ring: (AgentEvent | undefined)[];
  #next = 0;
  #lastId = 0;
  readonly #firing = new Map<string, AgentEvent>();
  #listeners: ((event: AgentEvent) => void)[] = [];
  readonly #sinks = new Map<string, () => SinkReport>();
  readonly #log: Logger | undefined;
  readonly #now: () => number;
  #listenerErrors = 0;
  #isoMs = Number.NaN;
  #isoText = '';

  constructor(opts: EventLogOptions) {
    this.capacity = Math.max(1, opts.capacity);
    this.#ring = new Array(this.capacity);
    this.#log = opts.logger;
    this.#now = opts.now ?? Date.now;
  }

  get lastId(): number {
    return this.#lastId;
  }

  /** Id of the oldest event still in the ring, 0 when none. */
  get oldestId(): number {
    const oldest = this.#ring[this.#next] ?? this.#ring[0];
    return oldest?.id ?? 0;
  }

  /** Numbers, stores and announces one event; returns it. */
  record(input: EventInput): AgentEvent {
    const event: AgentEvent = {
      id: ++this.#lastId,
      time: this.#iso(input.time ?? this.#now()),
      severity: input.severity,
      source: input.source,
      kind: input.kind,
      key: input.key,
      summary: input.summary,
      attributes: input.attributes,
      ...(input.state ? { state: input.state } : {}),
    };
    this.#ring[this.#next] = event;
    this.#next = (this.#next + 1) % this.capacity;
    if (event.state === 'firing') {
      this.#firing.delete(event.key);
      this.#firing.set(event.key, event);
      if (this.#firing.size > MAX_FIRING) this.#firing.delete(this.#firing.keys().next().value as string);
    } else if (event.state === 'resolved') this.#firing.delete(event.key);
    const listeners = this.#listeners;
    for (let i = 0; i < listeners.length; i++) {
      try {
        listeners[i](event);
      } catch (err) {
        this.#listenerErrors++;
        if (this.#listenerErrors <= 10 || this.#listenerErrors % 1000 === 0)
          this.#log?.error({ err, errors: this.#listenerErrors }, 'an event listener threw; it keeps receiving');
      }
    }
    return event;
  }

  /** RFC 3339 of a Unix ms time; the last one is reused (a burst shares its millisecond). */
  #iso(ms: number): string {
    if (ms !== this.#isoMs) {
      this.#isoMs = ms;
      this.#isoText = new Date(ms).toISOString();
    }
    return this.#isoText;
  }

  /** Whether a condition with this key is firing now. */
  isFiring(key: string): boolean {
    return this.#firing.has(key);
  }

  recent(filter: EventFilter = {}): AgentEvent[] {
    const match = compileFilter(filter);
    const limit = filter.limit ?? this.capacity;
    const out: AgentEvent[] = [];
    if (limit <= 0) return out;
    // Newest first, stop at the limit or at `since`, then reverse to oldest first.
    const since = filter.since ?? 0;
    for (let n = 1; n <= this.capacity; n++) {
      const e = this.#ring[(this.#next - n + this.capacity) % this.capacity];
      if (e === undefined || e.id <= since) break;
      if (match(e)) {
        out.push(e);
        if (out.length >= limit) break;
      }
    }
    return out.reverse();
  }

  firing(): AgentEvent[] {
    return [...this.#firing.values()].sort((a, b) => a.id - b.id);
  }

  subscribe(listener: (event: AgentEvent) => void): () => void {
    this.#listeners = [...this.#listeners, listener];
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  registerSink(name: string, report: () => SinkReport): () => void {
    this.#sinks.set(name, report);
    return () => {
      if (this.#sinks.get(name) === report) this.#sinks.delete(name);
    };
  }

  /** Every registered sink's report, by name. */
  sinks(): Record<string, SinkReport> {
    const out: Record<string, SinkReport> = {};
    for (const [name, report] of this.#sinks) {
      try {
        out[name] = report();
      } catch (err) {
        out[name] = { state: 'failing', reason: (err as Error).message, queued: 0, capacity: 0, dropped: 0 };
      }
    }
    return out;
  }
}
