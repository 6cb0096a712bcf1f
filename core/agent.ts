/**
 * The agent: wires config, logger, bus, metric store, HTTP API and plugins, and runs their lifecycle.
 * Start: bus and store, API (503 on /health while starting), plugins, then `running`.
 * Stop: stop sources, drain queues within `agent.shutdown_timeout`, close plugins, close the API.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { RouteTable } from './api/router.js';
import { ApiServer } from './api/server.js';
import type { ApiResponse } from './api/types.js';
import type { FleetClient } from './fleet/client.js';
import { Bus } from './bus/bus.js';
import { changedSections, ConfigError, type AgentConfig, type LoadedConfig } from './config/load.js';
import { MetricStore } from './metrics/store.js';
import { MetricsExposition } from './metrics/exposition.js';
import type { BuiltinPlugin } from './plugin/builtin.js';
import { Scheduler } from './scheduler.js';
import { PluginHost } from './plugin/host.js';
import type { AgentInfo, Plugin } from './plugin/types.js';
import { apiMetrics, busMetrics } from './self-metrics.js';
import { VERSION } from './version.js';
import { instanceId, readMachineId } from './instance-id.js';
import { WasmManager } from './wasm/manager.js';
import { EventPipeline } from './events/pipeline.js';
import type { EventLogReader } from './events/types.js';
import { matchesAny } from './bus/pattern.js';
import { resolveStateDir } from './state-dir.js';
import { dashboardEnabled } from './config/core-schema.js';
import { Views } from './views/views.js';

export type AgentState = 'starting' | 'running' | 'stopping' | 'stopped';

export interface AgentSettings {
  loaded: LoadedConfig;
  builtins: readonly BuiltinPlugin[];
  logger: Logger;
  /** Re-reads the config (SIGHUP); throws ConfigError when the new one is bad. */
  reload?: () => LoadedConfig;
}

export class Agent {
  readonly bus: Bus;
  readonly store: MetricStore;
  readonly info: AgentInfo;
  readonly host: PluginHost;
  /** The one timer of every periodic job (see core/scheduler.ts). */
  readonly scheduler: Scheduler;
  /** Wasm plugins (absent when `wasm.enabled` is false). */
  readonly wasm: WasmManager | undefined;
  /** The event pipeline (core/events): recent events, firing conditions, live subscription. */
  readonly events: EventLogReader;
  readonly #events: EventPipeline;
  /** History, summary and dashboard (core/views). */
  readonly views: Views;
  #state: AgentState = 'starting';
  #loaded: LoadedConfig;
  #api: ApiServer | undefined;
  /** Every API route, served over HTTP when `api.enabled` and called in-process by the fleet. */
  readonly #routeTable = new RouteTable();
  #fleet: FleetClient | undefined;
  #apiAddress: { host: string; port: number } | undefined;
  readonly #settings: AgentSettings;
  readonly #log: Logger;
  readonly #exposition: MetricsExposition;
  /** The shutdown step under way (for the log line when the deadline passes). */
  #phase: string | undefined;
  readonly #stateDirWarning: string | undefined;

  constructor(s: AgentSettings) {
    this.#settings = s;
    this.#loaded = s.loaded;
    this.#log = s.logger;
    this.store = new MetricStore({
      onStale: (source, silentMs, intervalMs) =>
        s.logger.warn(
          { source, silent_ms: silentMs, interval_ms: intervalMs },
          `metric source ${source} sent nothing for ${Math.round(silentMs / 1000)} s (its interval is ${intervalMs / 1000} s): its series are dropped until it publishes again`,
        ),
    });
    this.#exposition = new MetricsExposition({
      store: this.store,
      exporterCompat: () => this.#loaded.config.prometheus.exporter_compat,
    });
    const cfg = s.loaded.config;
    const host = hostname();
    const stateDir = resolveStateDir(cfg.agent.state_dir);
    this.#stateDirWarning = stateDir.warning;
    let id: string | undefined;
    this.info = Object.freeze({
      version: VERSION,
      startedAt: Date.now(),
      hostname: host,
      // Worked out when first asked: its SHA-1 loads node:crypto (about 2 ms), which the API's first
      // answers do not need.
      get instanceId() {
        id ??= instanceId(readMachineId(), host, s.loaded.file);
        return id;
      },
      labels: Object.freeze({ ...cfg.agent.labels }),
      ...(stateDir.dir ? { stateDir: stateDir.dir } : {}),
    });
    this.bus = new Bus({
      queueSize: cfg.bus.queue_size,
      overflow: cfg.bus.overflow,
      logger: s.logger.child({ component: 'bus' }),
    });
    const dashboard = dashboardEnabled(cfg.api.dashboard, cfg.api.host);
    if (cfg.api.enabled) {
      this.#api = new ApiServer({
        host: cfg.api.host,
        port: cfg.api.port,
        token: readToken(cfg, s.loaded.file),
        logger: s.logger.child({ component: 'api' }),
        routes: this.#routeTable,
        // The page and its scripts hold no data: a browser loads them, then sends the token itself.
        ...(dashboard ? { isPublic: (path: string) => path === '/' || path.startsWith('/dashboard/') } : {}),
      });
    }
    this.#events = new EventPipeline({
      bus: this.bus,
      config: cfg.events,
      logger: s.logger,
      hostname: host,
      sourceOf: (topic) => this.#wasmSourceOf(topic),
      busQueueSize: cfg.bus.queue_size,
    });
    this.events = this.#events.log;
    this.store.addCollector(() => this.#events.metrics());
    this.scheduler = new Scheduler({
      onError: (job, err) => s.logger.error({ err, job }, `periodic job ${job} failed; it runs again next time`),
    });
    this.host = new PluginHost({
      scheduler: this.scheduler,
      bus: this.bus,
      logger: s.logger,
      api: this.#routeTable,
      store: this.store,
      agent: this.info,
      events: this.#events.log,
    });
    this.bus.subscribe(
      'metric-store',
      ['metrics'],
      (m) => {
        if (m.topic === 'metrics') this.store.apply(m.data);
      },
      { queueSize: Math.max(cfg.bus.queue_size, 1000) },
    );
    this.store.addCollector(() => busMetrics(this.bus.stats(), this.info.startedAt));
    this.store.addCollector(() => this.host.metrics());
    if (cfg.wasm.enabled) {
      const wasm = new WasmManager({ config: cfg.wasm, host: this.host, bus: this.bus, logger: s.logger });
      this.wasm = wasm;
      this.store.addCollector(() => wasm.metrics());
    }
    this.views = new Views({
      bus: this.bus,
      store: this.store,
      info: this.info,
      plugins: () => this.host.report(),
      state: () => this.#state,
      intervalMs: historyInterval(cfg),
      scheduler: this.scheduler,
      dashboard,
      events: () => this.events,
    });
    if (this.#api) {
      const api = this.#api;
      this.store.addCollector(() => apiMetrics(api.requests, this.info.startedAt));
    }
    this.store.addCollector(() => this.#fleet?.metrics() ?? []);
    this.#routes(this.#routeTable);
    this.#events.routes(this.#routeTable);
    this.views.routes(this.#routeTable);
  }

  get state(): AgentState {
    return this.#state;
  }
  get config(): AgentConfig {
    return this.#loaded.config;
  }
  get apiAddress(): { host: string; port: number } | undefined {
    return this.#apiAddress;
  }
  /** The fleet connection (absent while loading and when `fleet.enabled` is false). */
  get fleet(): FleetClient | undefined {
    return this.#fleet;
  }

  /**
   * Runs a local API request in-process through the same handlers and checks (also when
   * `api.enabled` is false); errors come back as `{ status, body: { error } }`.
   */
  dispatch(method: string, path: string, body = ''): Promise<ApiResponse> {
    return this.#routeTable.call(method, path, body);
  }

  async start(): Promise<void> {
    for (const w of this.#loaded.warnings) this.#log.warn(w);
    if (this.#stateDirWarning) this.#log.warn(this.#stateDirWarning);
    if (this.#api) {
      this.#apiAddress = await this.#api.listen();
      this.#log.info(
        // since_exec_ms: how long start-up took to get here (performance.now() counts from exec).
        {
          api: `http://${this.#apiAddress.host}:${this.#apiAddress.port}`,
          since_exec_ms: Math.round(performance.now()),
        },
        `API listening on http://${this.#apiAddress.host}:${this.#apiAddress.port}`,
      );
    }
    // Wasm plugins first: they only consume, and subscribed before any built-in publishes they miss
    // nothing (a built-in's first nginx.config.changed, say): start() reads every plugin folder's
    // manifest and subscribes its plugin before it resolves. Their modules are checked, and the
    // worker started, once the built-ins have started: after the API's first answers.
    let builtinsStarted = () => {};
    await this.wasm?.start(new Promise<void>((resolve) => (builtinsStarted = resolve)));
    this.views.start();
    try {
      await this.host.startBuiltins(this.#settings.builtins, this.#loaded.config);
    } finally {
      builtinsStarted();
    }
    // Not awaited: loading the NATS client must not delay `running` (the fleet reports `connecting`).
    if (this.#loaded.config.fleet.enabled) void this.#startFleet();
    this.#state = 'running';
    this.#log.info(
      { version: VERSION, config: this.#loaded.file ?? '(embedded defaults)' },
      `agent ${VERSION} running`,
    );
  }

  /** Loads the NATS client only now (start-up cost) and connects in the background. */
  async #startFleet(): Promise<void> {
    const cfg = this.#loaded.config;
    try {
      const { FleetClient } = await import('./fleet/client.js');
      if (this.#state === 'stopping' || this.#state === 'stopped') return;
      this.#fleet = new FleetClient(cfg.fleet, {
        agentId: this.info.instanceId ?? '',
        hostname: this.info.hostname,
        version: this.info.version,
        startedAt: this.info.startedAt,
        labels: this.info.labels ?? {},
        api: this.#routeTable,
        events: this.events,
        onCommand: (record) => this.bus.publish('fleet.command', record),
        logger: this.#log.child({ component: 'fleet' }),
      });
      this.#fleet.start();
    } catch (err) {
      this.#log.error({ err }, `fleet cannot start, the agent runs without it: ${(err as Error).message}`);
    }
  }

  /** Adds a run-time plugin (Wasm) to the running agent. */
  addPlugin(plugin: Plugin, config: unknown): Promise<boolean> {
    return this.host.add(plugin, config);
  }

  /** SIGHUP: re-read the config; a bad one is refused and the old one stays in force. */
  async reload(): Promise<boolean> {
    if (!this.#settings.reload || this.#state !== 'running') return false;
    let next: LoadedConfig;
    try {
      next = this.#settings.reload();
    } catch (err) {
      this.#log.error(
        { err: { message: (err as Error).message } },
        `new config refused, the old one stays in force:\n${(err as Error).message}`,
      );
      this.bus.publish('agent.config.reloaded', { ok: false, changedSections: [], error: (err as Error).message });
      return false;
    }
    for (const w of next.warnings) this.#log.warn(w);
    const changed = changedSections(this.#loaded.config, next.config);
    this.#loaded = next;
    if (changed.includes('log')) this.#log.level = next.config.log.level;
    const needRestart = changed.filter(
      (k) => k === 'api' || k === 'bus' || k === 'wasm' || k === 'events' || k === 'fleet',
    );
    if (needRestart.length) this.#log.warn(`changes to ${needRestart.join(', ')} take effect at the next restart`);
    await this.host.reconfigure(next.config, changed);
    this.#log.info(
      { changed },
      changed.length ? `config reloaded; changed: ${changed.join(', ')}` : 'config reloaded; nothing changed',
    );
    this.bus.publish('agent.config.reloaded', { ok: true, changedSections: changed });
    return true;
  }

  /**
   * Graceful stop within `agent.shutdown_timeout`: stop sources, drain queues, close plugins (each within
   * what is left), close Wasm and the API. Resolves true when every step finished in time; false when
   * something was cut off (logged with what), and the caller exits non-zero.
   */
  async stop(): Promise<boolean> {
    if (this.#state === 'stopping' || this.#state === 'stopped') return true;
    this.#state = 'stopping';
    const timeout = this.#loaded.config.agent.shutdown_timeout;
    // The last part of the deadline is kept for closing Wasm and the API.
    const reserve = Math.min(1000, timeout / 5);
    const end = Date.now() + timeout - reserve;
    const left = () => Math.max(0, end - Date.now());
    this.#log.info(`shutting down (deadline ${timeout} ms)`);
    this.host.stopSources();
    await this.#fleet?.stop(Math.min(2000, timeout));
    this.views.stop();
    let clean = await this.#step('stopping the Wasm plugin watcher', left(), this.wasm?.stopWatching());
    const drained = await this.#step('draining the bus queues', left(), this.bus.drain(left()));
    if (!drained) this.#log.warn('queues not drained before the shutdown deadline; remaining messages are dropped');
    this.#phase = 'closing plugins';
    const closed = await this.host.closeAll(left());
    const finalBudget = () => Math.max(0, end + reserve - Date.now());
    clean = (await this.#step('closing the Wasm runtime', finalBudget(), this.wasm?.close())) && clean;
    const eventsBudget = Math.max(left(), finalBudget() / 2);
    clean = (await this.#step('closing the event pipeline', eventsBudget, this.#events.close(eventsBudget))) && clean;
    clean = (await this.#step('closing the API server', finalBudget(), this.#api?.close())) && clean;
    clean = clean && drained && closed;
    this.scheduler.close();
    this.#phase = undefined;
    this.#state = 'stopped';
    if (clean) this.#log.info('agent stopped');
    else
      this.#log.warn(
        { still_running: this.stillRunning() },
        'agent stopped; some work was cut off at the shutdown deadline',
      );
    return clean;
  }

  /** During a stop: the step under way and every plugin whose close() has not returned. */
  stillRunning(): string[] {
    return [
      ...(this.#phase ? [this.#phase] : []),
      ...this.host.closing().map((name) => `plugin ${name}: close() has not returned`),
    ];
  }

  /** Runs one shutdown step; resolves false (and leaves it running) when it takes longer than `ms`. */
  async #step(what: string, ms: number, work: Promise<unknown> | boolean | undefined): Promise<boolean> {
    if (work === undefined) return true;
    this.#phase = what;
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      Promise.resolve(work).then(
        (v) => v !== false,
        (err: unknown) => {
          this.#log.warn({ err }, `shutdown: ${what} failed: ${(err as Error).message}`);
          return false;
        },
      ),
      new Promise<'timeout'>((r) => {
        timer = setTimeout(() => r('timeout'), ms);
      }),
    ]);
    clearTimeout(timer);
    if (result === 'timeout') {
      this.#log.warn(`shutdown: ${what} did not finish within ${ms} ms; going on without it`);
      return false;
    }
    if (this.#phase === what) this.#phase = undefined;
    return result;
  }

  status(): Record<string, unknown> {
    return {
      version: VERSION,
      state: this.#state,
      started_at: new Date(this.info.startedAt).toISOString(),
      uptime_seconds: Math.round((Date.now() - this.info.startedAt) / 1000),
      hostname: this.info.hostname,
      instance_id: this.info.instanceId,
      config: { file: this.#loaded.file, env: this.#loaded.env },
      plugins: this.host.report(),
      fleet: this.#fleet?.status() ?? { state: this.#loaded.config.fleet.enabled ? 'connecting' : 'disabled' },
    };
  }

  readonly #sources = new Map<string, { source: string | undefined; at: number }>();

  /** `wasm:<name>` of the Wasm plugin whose manifest may publish on `topic` (cached a few seconds). */
  #wasmSourceOf(topic: string): string | undefined {
    const now = Date.now();
    const cached = this.#sources.get(topic);
    if (cached && now - cached.at < SOURCE_CACHE_MS) return cached.source;
    let source: string | undefined;
    for (const p of this.wasm?.plugins() ?? []) {
      const publishes = p.status().details?.publishes;
      if (Array.isArray(publishes) && matchesAny(publishes as string[], topic)) {
        source = `wasm:${p.name}`;
        break;
      }
    }
    if (this.#sources.size > 1000) this.#sources.clear();
    this.#sources.set(topic, { source, at: now });
    return source;
  }

  #routes(api: RouteTable): void {
    api.route('GET', '/health', () => {
      const reports = this.host.report();
      const plugins = Object.fromEntries(
        reports.map((p) => [p.name, { state: p.state, ...(p.reason ? { reason: p.reason } : {}) }]),
      );
      // The API answers from the first milliseconds; the agent is `starting` (503) until every
      // plugin has done its first collection, not only until the plugins' init returned.
      const status =
        this.#state === 'running' && reports.some((p) => p.state === 'starting') ? 'starting' : this.#state;
      // The fleet connection is reported, never counted against health: NATS down is not the agent down.
      const fleet = this.#fleet?.status() ?? { state: this.#loaded.config.fleet.enabled ? 'connecting' : 'disabled' };
      return {
        status: status === 'running' ? 200 : 503,
        body: {
          status,
          plugins,
          events: { sinks: this.#events.health() },
          fleet: { state: fleet.state, server: fleet.server ?? null },
        },
      };
    });
    api.route('GET', '/metrics', (req) => this.#exposition.respond(req.headers));
    api.route('GET', '/v1/status', () => ({ status: 200, body: this.status() }));
    api.route('GET', '/v1/plugins', () => ({ status: 200, body: { plugins: this.host.report() } }));
  }
}

const SOURCE_CACHE_MS = 5_000;
/** The history samples at the nginx-status interval (5 s by default), kept within 1 s..60 s. */
function historyInterval(cfg: AgentConfig): number {
  const interval = (cfg.nginx_status as { interval?: unknown } | undefined)?.interval;
  return typeof interval === 'number' ? Math.min(60_000, Math.max(1000, interval)) : 5000;
}

/** The config check found the file readable; if it went away since, that is still a config error (exit 2). */
function readToken(cfg: AgentConfig, file: string | null): string {
  if (cfg.api.token_file) {
    try {
      return readFileSync(cfg.api.token_file, 'utf8').trim();
    } catch (e) {
      throw new ConfigError([`api.token_file: cannot read ${cfg.api.token_file}: ${(e as Error).message}`], file);
    }
  }
  return cfg.api.token;
}
