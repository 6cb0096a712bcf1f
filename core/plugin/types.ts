/**
 * The plugin contract shared by built-in TypeScript plugins and Wasm plugins (behind an adapter).
 *
 * Lifecycle, in this order:
 * 1. `subscriptions()` is read and the plugin's queue is created on the bus, before any plugin's
 *    `init`, so nothing published during start-up is missed.
 * 2. `init(ctx)` returns quickly. Background work (timers, watchers) is started here and must stop
 *    when `ctx.signal` aborts. A throw from `init` leaves this plugin out; the others run.
 * 3. `process(msg)` is called for every message matching the subscriptions, one at a time, in
 *    publish order. A throw is logged with the plugin name and the topic, counted, and the next
 *    message is delivered as usual.
 * 4. `reconfigure(config)` is called after SIGHUP when this plugin's section changed. Without it,
 *    the host closes the plugin and starts a new instance with the new config.
 * 5. `close()` stops everything; it is called once, after `ctx.signal` aborted, and should finish
 *    within the shutdown deadline.
 */
import type { Logger } from 'pino';
import type { ApiRouter } from '../api/types.js';
import type { PluginEvents } from '../events/log.js';
import type { MetricStoreReader } from '../metrics/store.js';
import type { JobScheduler } from '../scheduler.js';
import type { Message, Topic, TopicMap } from '../topics.js';

export interface Publisher {
  publish<K extends Topic>(topic: K, data: TopicMap[K]): void;
}

export interface AgentInfo {
  readonly version: string;
  readonly startedAt: number;
  /** Host name used as a resource attribute. */
  readonly hostname: string;
  /** Stable id of this agent installation (see core/instance-id.ts); absent in plugin tests. */
  readonly instanceId?: string;
  /** `agent.labels` from the config at start: resource attributes on everything exported. */
  readonly labels?: Readonly<Record<string, string>>;
  /** Writable directory for state kept across restarts (`agent.state_dir` resolved); absent when none. */
  readonly stateDir?: string;
}

export interface PluginContext<C> {
  /** This plugin's validated, frozen config section. */
  readonly config: C;
  readonly bus: Publisher;
  /** A pino child logger with `plugin: <name>`. */
  readonly logger: Logger;
  /** Aborted when the agent shuts down or the plugin is closed. */
  readonly signal: AbortSignal;
  /**
   * The agent's one timer for periodic work: `scheduler.every(name, ms, run)` instead of setInterval,
   * so collections share wake-ups. Cancel the job when `signal` aborts.
   */
  readonly scheduler: JobScheduler;
  readonly api: ApiRouter;
  readonly store: MetricStoreReader;
  readonly agent: AgentInfo;
  /**
   * The agent's events (core/events): read recent ones, subscribe to new ones (the listener must not
   * block: keep a bounded queue), and register a sink's report for /health and agent.events.dropped.
   * The host always sets it; it is optional only so hand-made contexts in tests may leave it out.
   */
  readonly events?: PluginEvents;
}

export type PluginState = 'starting' | 'running' | 'degraded' | 'failed' | 'quarantined' | 'stopped';

export interface PluginStatus {
  state: PluginState;
  /** Why the state is not `running`. */
  reason?: string;
  /** Free-form details shown by `/health` and `/v1/status`. */
  details?: Record<string, unknown>;
}

export interface Plugin<C = unknown> {
  readonly name: string;
  /** Topic patterns: exact names, or with `*` matching any run of characters (`nginx.*`, `*`). */
  subscriptions(): readonly string[];
  init(ctx: PluginContext<C>): void | Promise<void>;
  process?(msg: Message): void | Promise<void>;
  reconfigure?(config: C): void | Promise<void>;
  close(): void | Promise<void>;
  /** Current state for `/health`; when absent the host reports what it knows. */
  status?(): PluginStatus;
}
