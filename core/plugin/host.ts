/**
 * Runs plugins: subscribes them to the bus, initialises them with their config section,
 * reconfigures them on SIGHUP, closes them on shutdown. One plugin's failure never stops another.
 */
import type { Logger } from 'pino';
import type { ApiRouter } from '../api/types.js';
import type { Bus, Subscription } from '../bus/bus.js';
import type { AgentConfig } from '../config/load.js';
import type { Metric, MetricBatch } from '../metrics/model.js';
import { gauge } from '../metrics/model.js';
import type { MetricStoreReader } from '../metrics/store.js';
import { Scheduler, type JobScheduler, type ScheduledJob } from '../scheduler.js';
import { sectionKey, type BuiltinPlugin } from './builtin.js';
import { EventLog, type PluginEvents } from '../events/log.js';
import type { AgentInfo, Plugin, PluginState, PluginStatus, Publisher } from './types.js';

export interface PluginHostSettings {
  bus: Bus;
  logger: Logger;
  api: ApiRouter;
  store: MetricStoreReader;
  agent: AgentInfo;
  /** What plugins get as `ctx.events`; a private empty log when absent (tests). */
  events?: PluginEvents;
  /** Upper bound for a plugin's init (it should return quickly; this catches a hang). */
  initTimeoutMs?: number;
  /** How often a running plugin's own `status()` is read to log when it becomes degraded and recovers. */
  statusCheckMs?: number;
  /** The agent's scheduler, handed to every plugin; default a scheduler of this host's own. */
  scheduler?: JobScheduler;
}

interface Entry {
  plugin: Plugin;
  config: unknown;
  kind: 'builtin' | 'external';
  state: PluginState;
  reason?: string;
  sub?: Subscription;
  abort: AbortController;
  logger: Logger;
  /** What the plugin sees as `ctx.bus`: notes the metric sources it publishes, refuses all once it is closed. */
  publisher: Publisher;
  /** Metric sources the plugin published and did not end with a `final` batch. */
  sources: Set<string>;
  /** Closed (or failed): what it still publishes is dropped. */
  retired: boolean;
  /** The state last logged, so a degraded state is one `warn` when it starts and one `info` when it ends. */
  observed: PluginState;
}

export interface PluginReport extends PluginStatus {
  name: string;
  kind: 'builtin' | 'external';
  subscriptions: readonly string[];
}

export class PluginHost {
  readonly #settings: PluginHostSettings;
  readonly #entries = new Map<string, Entry>();
  #builtins: readonly BuiltinPlugin[] = [];
  #statusJob: ScheduledJob | undefined;
  readonly #scheduler: JobScheduler;
  /** Plugins whose close() was called and has not returned yet (even past its timeout). */
  readonly #closing = new Set<string>();

  readonly #events: PluginEvents;

  constructor(settings: PluginHostSettings) {
    this.#settings = settings;
    this.#events = settings.events ?? new EventLog({ capacity: 1000 });
    this.#scheduler = settings.scheduler ?? new Scheduler();
  }

  /** Creates and starts every enabled built-in. All are subscribed before any is initialised. */
  async startBuiltins(builtins: readonly BuiltinPlugin[], config: AgentConfig): Promise<void> {
    this.#builtins = builtins;
    const created: Entry[] = [];
    for (const b of builtins) {
      const section = config[sectionKey(b.name)] as { enabled: boolean };
      if (!section.enabled) {
        this.#settings.logger.info(
          { plugin: b.name },
          `plugin ${b.name} is disabled by config (${sectionKey(b.name)}.enabled: false)`,
        );
        continue;
      }
      const e = this.#create(b.create(), section, 'builtin');
      if (e) created.push(e);
    }
    for (const e of created) {
      await this.#init(e);
      // A turn of the event loop between two plugins: requests that arrived meanwhile (the API
      // listens before the plugins start) are answered now, not after every plugin's start-up work.
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.#statusJob ??= this.#scheduler.every('plugin-status', this.#settings.statusCheckMs ?? 2000, () =>
      this.report(),
    );
  }

  /** Adds and starts a plugin at run time (Wasm plugins). Resolves false when its init failed. */
  async add(plugin: Plugin, config: unknown): Promise<boolean> {
    const e = this.#create(plugin, config, 'external');
    if (!e) return false;
    await this.#init(e);
    return e.state !== 'failed';
  }

  /** Stops and forgets a plugin. */
  async remove(name: string, timeoutMs = 5000): Promise<void> {
    const e = this.#entries.get(name);
    if (!e) return;
    this.#entries.delete(name);
    await this.#close(e, timeoutMs);
  }

  /** Re-reads `subscriptions()` of a running plugin (after a hot reload changed them). Queued messages are kept when the patterns are unchanged. */
  resubscribe(name: string): void {
    const e = this.#entries.get(name);
    if (!e?.sub) return;
    const patterns = e.plugin.subscriptions();
    e.sub.unsubscribe();
    e.sub = this.#subscribe(e, patterns);
  }

  get(name: string): Plugin | undefined {
    return this.#entries.get(name)?.plugin;
  }

  /** Applies a new config: sections that changed are reconfigured, enabled or disabled. */
  async reconfigure(config: AgentConfig, changed: readonly string[]): Promise<void> {
    for (const b of this.#builtins) {
      const key = sectionKey(b.name);
      if (!changed.includes(key)) continue;
      const section = config[key] as { enabled: boolean };
      const e = this.#entries.get(b.name);
      if (e && !section.enabled) {
        this.#settings.logger.info({ plugin: b.name }, `plugin ${b.name} disabled by the new config`);
        await this.remove(b.name);
      } else if (!e && section.enabled) {
        const ne = this.#create(b.create(), section, 'builtin');
        if (ne) await this.#init(ne);
      } else if (e?.plugin.reconfigure && e.state !== 'failed') {
        try {
          await e.plugin.reconfigure(section);
          e.config = section;
          this.#settings.logger.info({ plugin: b.name }, `plugin ${b.name} reconfigured`);
        } catch (err) {
          e.logger.error({ err }, `plugin ${b.name} refused the new config; it keeps the old one`);
        }
      } else if (e) {
        await this.remove(b.name);
        const ne = this.#create(b.create(), section, 'builtin');
        if (ne) await this.#init(ne);
        this.#settings.logger.info({ plugin: b.name }, `plugin ${b.name} restarted with the new config`);
      }
    }
  }

  /** Aborts every plugin's signal (sources stop producing). */
  stopSources(): void {
    for (const e of this.#entries.values()) e.abort.abort();
  }

  /** Closes every plugin, in reverse start order, within `timeoutMs` in total. */
  async closeAll(timeoutMs: number): Promise<boolean> {
    this.#statusJob?.cancel();
    this.#statusJob = undefined;
    const end = Date.now() + timeoutMs;
    const entries = [...this.#entries.values()].reverse();
    this.#entries.clear();
    let allClosed = true;
    for (const e of entries) if (!(await this.#close(e, Math.max(0, end - Date.now())))) allClosed = false;
    return allClosed;
  }

  report(): PluginReport[] {
    return [...this.#entries.entries()].map(([name, e]) => {
      const own = e.state === 'running' && e.plugin.status ? safeStatus(e) : undefined;
      this.#observe(e, own?.state ?? e.state, own?.reason ?? e.reason);
      return {
        name,
        kind: e.kind,
        subscriptions: e.sub ? e.plugin.subscriptions() : [],
        state: own?.state ?? e.state,
        ...((own?.reason ?? e.reason) ? { reason: own?.reason ?? e.reason } : {}),
        ...(own?.details ? { details: own.details } : {}),
      };
    });
  }

  /** `agent.plugin.state`: 1 for the state each plugin is in. */
  metrics(): Metric[] {
    return [
      gauge(
        {
          name: 'agent.plugin.state',
          unit: '{plugin}',
          description: 'Plugins by state (1 for the state each plugin is in).',
        },
        this.report().map((r) => ({ attributes: { plugin: r.name, state: r.state }, value: 1 })),
      ),
    ];
  }

  #create(plugin: Plugin, config: unknown, kind: Entry['kind']): Entry | undefined {
    if (this.#entries.has(plugin.name)) {
      this.#settings.logger.error(
        { plugin: plugin.name },
        `a plugin named ${plugin.name} is already running; the second one is left out`,
      );
      return undefined;
    }
    const bus = this.#settings.bus;
    const e: Entry = {
      plugin,
      config,
      kind,
      state: 'starting',
      abort: new AbortController(),
      logger: this.#settings.logger.child({ plugin: plugin.name }),
      sources: new Set(),
      retired: false,
      observed: 'starting',
      publisher: {
        publish(topic, data) {
          if (e.retired) return;
          if (topic === 'metrics') {
            const batch = data as MetricBatch;
            if (batch.final) e.sources.delete(batch.source);
            else e.sources.add(batch.source);
          }
          bus.publish(topic, data);
        },
      },
    };
    try {
      e.sub = this.#subscribe(e, plugin.subscriptions());
    } catch (err) {
      e.state = 'failed';
      e.observed = 'failed';
      e.reason = `bad subscriptions: ${(err as Error).message}`;
      e.logger.error({ err }, `plugin ${plugin.name} left out: ${e.reason}`);
    }
    this.#entries.set(plugin.name, e);
    return e;
  }

  #subscribe(e: Entry, patterns: readonly string[]): Subscription | undefined {
    if (patterns.length === 0) return undefined;
    const process = e.plugin.process?.bind(e.plugin);
    if (!process) throw new Error(`plugin ${e.plugin.name} subscribes to ${patterns.join(', ')} but has no process()`);
    // Paused until init succeeded: messages published meanwhile wait in the queue, none is lost.
    return this.#settings.bus.subscribe(e.plugin.name, patterns, process, { paused: e.state !== 'running' });
  }

  async #init(e: Entry): Promise<void> {
    if (e.state === 'failed') return;
    const timeout = this.#settings.initTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        e.plugin.init({
          config: e.config,
          bus: e.publisher,
          logger: e.logger,
          signal: e.abort.signal,
          scheduler: this.#scheduler,
          api: this.#settings.api,
          store: this.#settings.store,
          agent: this.#settings.agent,
          events: this.#events,
        }),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`init did not finish within ${timeout} ms`)), timeout);
        }),
      ]);
      e.state = 'running';
      e.sub?.resume();
      e.logger.debug(`plugin ${e.plugin.name} started`);
    } catch (err) {
      e.state = 'failed';
      e.reason = (err as Error).message;
      e.sub?.unsubscribe();
      e.sub = undefined;
      e.abort.abort();
      this.#retire(e);
      e.observed = 'failed'; // logged here as an error; #observe need not warn again
      e.logger.error(
        { err },
        `plugin ${e.plugin.name} failed to start and is left out; the other plugins run: ${e.reason}`,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  /** Plugins whose `close()` is still running (it may have outlived its timeout): what a stuck shutdown waits for. */
  closing(): string[] {
    return [...this.#closing];
  }

  /** Resolves false when the plugin's close did not finish within `timeoutMs` (or threw). */
  async #close(e: Entry, timeoutMs: number): Promise<boolean> {
    e.abort.abort();
    e.sub?.unsubscribe();
    if (e.state === 'failed') {
      this.#retire(e);
      return true;
    }
    e.state = 'stopped';
    let timer: NodeJS.Timeout | undefined;
    const name = e.plugin.name;
    this.#closing.add(name);
    const closed = Promise.resolve()
      .then(() => e.plugin.close())
      .finally(() => this.#closing.delete(name));
    closed.catch(() => undefined); // a rejection after the timeout is not unhandled
    try {
      await Promise.race([
        closed,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`close did not finish within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      return true;
    } catch (err) {
      e.logger.warn({ err }, `plugin ${e.plugin.name} did not close cleanly: ${(err as Error).message}`);
      return false;
    } finally {
      clearTimeout(timer);
      this.#retire(e);
    }
  }

  /**
   * A closed or failed plugin's series go from /metrics and OTLP: a `final` batch for every source it
   * published and did not end itself, after its own batches on the bus. What it publishes later is dropped.
   */
  #retire(e: Entry): void {
    e.retired = true;
    for (const source of e.sources)
      this.#settings.bus.publish('metrics', { source, time: Date.now(), metrics: [], final: true });
    e.sources.clear();
  }

  /**
   * Logs a plugin's own state changes: one `warn` when it becomes degraded (or worse), one `info` when
   * it recovers; for a built-in also publishes the change on `agent.plugin.state`.
   */
  #observe(e: Entry, state: PluginState, reason: string | undefined): void {
    const was = e.observed;
    if (state === was) return;
    e.observed = state;
    const bad = (s: PluginState) => s === 'degraded' || s === 'quarantined' || s === 'failed';
    if (bad(state))
      e.logger.warn(
        { state, previous: was, reason },
        `plugin ${e.plugin.name} is ${state}${reason ? `: ${reason}` : ''}`,
      );
    else if (state === 'running' && bad(was))
      e.logger.info({ state, previous: was }, `plugin ${e.plugin.name} is running again (was ${was})`);
    // A built-in's change of state becomes an event (Wasm plugins publish their own).
    if (e.kind === 'builtin' && (bad(state) || (state === 'running' && bad(was))))
      this.#settings.bus.publish('agent.plugin.state', { plugin: e.plugin.name, state, ...(reason ? { reason } : {}) });
  }
}

function safeStatus(e: Entry): PluginStatus | undefined {
  try {
    return e.plugin.status?.();
  } catch {
    return undefined;
  }
}
