/**
 * Finds the Wasm plugin folders in the configured directories, adds each to the plugin host,
 * watches them for hot reload, and reports per-plugin metrics. Owns the one plugin worker.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from 'pino';
import type { Bus } from '../bus/bus.js';
import { PACKAGE_ROOT, type CoreConfig } from '../config/load.js';
import { counter, gauge, histogram, type Metric } from '../metrics/model.js';
import type { PluginHost } from '../plugin/host.js';
import type { PluginLogLevel } from './host-env.js';
import { MANIFEST_FILE, type Manifest } from './manifest.js';
import { checkPluginDir, readManifest } from './module.js';
import { CALL_BOUNDS, WasmPlugin, type WasmLimits } from './plugin.js';
import { WasmRuntime } from './runtime.js';

export type WasmConfig = CoreConfig['wasm'];

export interface WasmManagerSettings {
  config: WasmConfig;
  host: PluginHost;
  bus: Bus;
  logger: Logger;
}

/** The directories to scan: `wasm.dirs`, or the checkout's `wasm-plugins` when none is set and it exists. */
export function pluginDirs(cfg: WasmConfig, packageRoot = PACKAGE_ROOT): string[] {
  if (cfg.dirs.length) return cfg.dirs.map((d) => resolve(d));
  const def = join(packageRoot, 'wasm-plugins');
  return existsSync(def) ? [def] : [];
}

/** Folders directly inside `dir` that hold a plugin.yaml (folders named `_x` or `.x` are skipped). */
export function pluginFolders(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter(
      (e) =>
        e.isDirectory() &&
        !e.name.startsWith('_') &&
        !e.name.startsWith('.') &&
        existsSync(join(dir, e.name, MANIFEST_FILE)),
    )
    .map((e) => join(dir, e.name))
    .sort();
}

export function limitsOf(cfg: WasmConfig): WasmLimits {
  return {
    batchSize: cfg.batch_size,
    batchWaitMs: cfg.batch_wait,
    maxBatchesInFlight: cfg.max_batches_in_flight,
    timeoutMs: cfg.timeout_ms,
    memoryMb: cfg.memory_mb,
    failuresBeforeQuarantine: cfg.failures_before_quarantine,
    quarantineBackoffMs: cfg.quarantine_backoff,
    quarantineBackoffMaxMs: cfg.quarantine_backoff_max,
    maxPublishesPerCall: cfg.max_publishes_per_call,
  };
}

const LOG_LINES_PER_MINUTE = 100;

export class WasmManager {
  readonly runtime: WasmRuntime;
  readonly #settings: WasmManagerSettings;
  readonly #log: Logger;
  readonly #limits: WasmLimits;
  /** By folder. */
  readonly #plugins = new Map<string, WasmPlugin>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  #watcher: FSWatcher | undefined;
  #dirs: string[] = [];
  /** Reloads run one at a time, in order. */
  #chain: Promise<void> = Promise.resolve();
  readonly #logBudget = new Map<string, { minute: number; lines: number; suppressed: number }>();
  #stopped = false;

  constructor(s: WasmManagerSettings) {
    this.#settings = s;
    this.#log = s.logger.child({ component: 'wasm' });
    this.#limits = limitsOf(s.config);
    this.runtime = new WasmRuntime({
      logger: this.#log,
      onLog: (id, level, message) => this.#pluginLog(id, level, message),
    });
  }

  get dirs(): readonly string[] {
    return this.#dirs;
  }

  plugins(): WasmPlugin[] {
    return [...this.#plugins.values()];
  }

  /**
   * Subscribes every plugin folder's plugin on the bus (messages wait in its queue), one folder a
   * turn of the event loop, and resolves once all are subscribed. Their loads in the worker go on in
   * the background, after `after`, then watching starts (when `wasm.watch`): `ready` resolves when
   * every plugin is loaded (or failed) and the watcher runs.
   */
  async start(after: Promise<unknown> = Promise.resolve()): Promise<void> {
    this.#after = after;
    this.#dirs = pluginDirs(this.#settings.config);
    const adds: Promise<void>[] = [];
    for (const dir of this.#dirs) {
      if (!existsSync(dir) || !statSync(dir).isDirectory()) {
        this.#log.error(
          { dir },
          `Wasm plugin directory ${dir} does not exist (from wasm.dirs or --plugins-dir); no plugins loaded from it`,
        );
        continue;
      }
      let folders: string[];
      try {
        folders = pluginFolders(dir);
      } catch (err) {
        this.#log.error(
          { dir, err },
          `Wasm plugin directory ${dir} cannot be read (${(err as Error).message}); no plugins loaded from it`,
        );
        continue;
      }
      // The worker boots (~40 ms of a core) while the modules are checked; with no folder it never
      // starts. Both wait for `after` (the built-ins started): not in the way of the first answers.
      if (folders.length)
        void after.then(() => {
          if (!this.#stopped) this.runtime.prepare();
        });
      for (const folder of folders) {
        // #sync reads the manifest and subscribes the plugin before its first await.
        adds.push(
          this.#sync(folder).catch((err: unknown) =>
            this.#log.error({ err }, `Wasm plugin in ${folder} could not be added: ${(err as Error).message}`),
          ),
        );
        // A turn of the event loop between two manifests (1-2 ms of YAML each, more while the code is
        // cold): a scrape that came in meanwhile is answered now, not after every folder.
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    this.ready = Promise.all(adds)
      .then(async () => {
        if (this.#settings.config.watch && this.#dirs.length && !this.#stopped) await this.#watch();
        const from = [...new Set(this.plugins().map((p) => dirname(p.dir)))];
        if (this.#plugins.size)
          this.#log.info(
            { dirs: from, plugins: this.plugins().map((p) => p.name) },
            `${this.#plugins.size} Wasm plugin(s) from ${from.join(', ')}`,
          );
      })
      .catch((err: unknown) =>
        this.#log.error({ err }, `watching the Wasm plugin directories failed: ${(err as Error).message}`),
      );
  }

  /** Resolves when the plugins found at start are loaded (or failed) and the watcher runs. */
  ready: Promise<void> = Promise.resolve();

  /** Stops watching (plugins are closed by the host; the worker by close()). */
  async stopWatching(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
    await this.#watcher?.close();
    this.#watcher = undefined;
  }

  async close(): Promise<void> {
    await this.stopWatching();
    await this.#chain;
    await this.runtime.close();
  }

  /** Re-reads one plugin folder now (what the watcher does after its debounce). */
  reloadFolder(folder: string): Promise<void> {
    this.#chain = this.#chain
      .then(() => this.#sync(folder))
      .catch((err: unknown) =>
        this.#log.error({ err }, `Wasm plugin reload of ${folder} failed: ${(err as Error).message}`),
      );
    return this.#chain;
  }

  metrics(): Metric[] {
    const ps = this.plugins();
    const bus = new Map(this.#settings.bus.stats().subscribers.map((s) => [s.name, s]));
    const per = (f: (p: WasmPlugin) => number) =>
      ps.map((p) => ({ attributes: { plugin: p.name }, value: f(p), startTime: p.startTime }));
    return [
      counter(
        {
          name: 'agent.wasm.plugin.calls',
          unit: '{call}',
          description: 'Calls of the Wasm plugin (one call carries a batch of messages).',
        },
        per((p) => p.counters.calls),
      ),
      counter(
        {
          name: 'agent.wasm.plugin.messages',
          unit: '{message}',
          description: 'Messages delivered to the Wasm plugin.',
        },
        per((p) => p.counters.messages),
      ),
      counter(
        {
          name: 'agent.wasm.plugin.errors',
          unit: '{error}',
          description: 'Failed calls: traps, Extism errors, non-zero returns, timeouts, memory over the cap.',
        },
        per((p) => p.counters.errors),
      ),
      counter(
        {
          name: 'agent.wasm.plugin.timeouts',
          unit: '{timeout}',
          description: 'Calls stopped at timeout_ms (the plugin worker was restarted).',
        },
        per((p) => p.counters.timeouts),
      ),
      counter(
        {
          name: 'agent.wasm.plugin.quarantines',
          unit: '{quarantine}',
          description: 'Times the plugin was quarantined after repeated failures.',
        },
        per((p) => p.counters.quarantines),
      ),
      counter(
        {
          name: 'agent.wasm.plugin.published',
          unit: '{message}',
          description: 'Messages the plugin published that the host accepted.',
        },
        per((p) => p.counters.published),
      ),
      counter(
        {
          name: 'agent.wasm.plugin.refused',
          unit: '{message}',
          description:
            "Messages the plugin tried to publish outside its manifest's publishes or the open topics, or malformed.",
        },
        per((p) => p.counters.refused),
      ),
      counter(
        {
          name: 'agent.wasm.plugin.dropped',
          unit: '{message}',
          description:
            'Messages never delivered: queue overflow on the bus, or discarded while quarantined or stopped.',
        },
        per((p) => p.counters.dropped + (bus.get(p.name)?.dropped ?? 0)),
      ),
      gauge(
        {
          name: 'agent.wasm.plugin.queue.depth',
          unit: '{message}',
          description: 'Messages waiting for the plugin: in its bus queue, its next batch, or in flight.',
        },
        ps.map((p) => ({ attributes: { plugin: p.name }, value: p.queued + (bus.get(p.name)?.queueDepth ?? 0) })),
      ),
      histogram(
        {
          name: 'agent.wasm.plugin.call.duration',
          unit: 's',
          description: 'Time of one call inside the plugin worker.',
        },
        ps.map((p) => ({
          attributes: { plugin: p.name },
          count: p.counters.durationCount,
          sum: p.counters.durationSum,
          bounds: CALL_BOUNDS,
          buckets: [...p.counters.durationBuckets],
          startTime: p.startTime,
        })),
      ),
      counter(
        {
          name: 'agent.wasm.worker.restarts',
          unit: '{restart}',
          description: 'Restarts of the Wasm plugin worker after a timeout or a crash.',
        },
        [{ attributes: {}, value: this.runtime.restarts, startTime: this.#startTime }],
      ),
    ];
  }

  readonly #startTime = Date.now();
  /** What the first check of a plugin found at start waits for (see start). */
  #after: Promise<unknown> = Promise.resolve();

  async #sync(folder: string): Promise<void> {
    if (this.#stopped) return;
    const existing = this.#plugins.get(folder);
    if (!existsSync(join(folder, MANIFEST_FILE))) {
      if (existing) {
        this.#plugins.delete(folder);
        await this.#settings.host.remove(existing.name);
        this.#log.info(
          { plugin: existing.name },
          `Wasm plugin ${existing.name} unloaded: ${folder} no longer holds ${MANIFEST_FILE}`,
        );
      }
      return;
    }
    if (!existing) {
      // A new folder: only its manifest now, so the host subscribes the plugin at once (at start-up,
      // before any built-in publishes); its module is read, hashed, compiled and checked by the
      // plugin's init a turn of the event loop later, between the API's first answers.
      let manifest: Manifest;
      try {
        manifest = readManifest(folder);
      } catch (e) {
        await this.#addRefused(folder, e as Error);
        return;
      }
      const p = new WasmPlugin(
        manifest.name,
        folder,
        { manifest, check: () => checkPluginDir(folder, manifest), after: this.#after },
        this.runtime,
        this.#limits,
      );
      this.#plugins.set(folder, p);
      if (await this.#add(p)) this.#plugins.delete(folder);
      return;
    }
    let checked;
    try {
      checked = checkPluginDir(folder);
    } catch (e) {
      const msg = (e as Error).message;
      if (existing?.loaded) {
        existing.refuseReload(msg);
        this.#log.error(
          { plugin: existing.name },
          `new version of Wasm plugin ${existing.name} refused; the running version stays: ${msg}`,
        );
        return;
      }
      this.#plugins.delete(folder);
      await this.#settings.host.remove(existing.name);
      await this.#addRefused(folder, e as Error);
      return;
    }
    if (existing?.loaded && existing.name === checked.manifest.name) {
      if (existing.fingerprint === `${checked.sha256}:${JSON.stringify(checked.manifest)}`) return;
      try {
        if (await existing.reload(checked)) this.#settings.host.resubscribe(existing.name);
      } catch (e) {
        this.#log.error(
          { plugin: existing.name },
          `new version of Wasm plugin ${existing.name} refused; the running version stays: ${(e as Error).message}`,
        );
      }
      return;
    }
    this.#plugins.delete(folder);
    await this.#settings.host.remove(existing.name);
    const p = new WasmPlugin(checked.manifest.name, folder, checked, this.runtime, this.#limits);
    this.#plugins.set(folder, p);
    if (await this.#add(p)) this.#plugins.delete(folder);
  }

  /** Added anyway so /health and /v1/plugins show the folder as failed with the reason. */
  async #addRefused(folder: string, err: Error): Promise<void> {
    const p = new WasmPlugin(basename(folder), folder, err, this.runtime, this.#limits);
    this.#plugins.set(folder, p);
    if (await this.#add(p)) this.#plugins.delete(folder);
  }

  /**
   * Adds to the host (which subscribes it before its first await, then loads it through init);
   * true when refused outright (duplicate name).
   */
  async #add(p: WasmPlugin): Promise<boolean> {
    if (this.#settings.host.get(p.name)) {
      this.#log.error(
        { plugin: p.name, dir: p.dir },
        `Wasm plugin in ${p.dir} is named ${p.name}, like a plugin already running; it is left out (rename it in ${MANIFEST_FILE})`,
      );
      return true;
    }
    await this.#settings.host.add(p, null);
    return false;
  }

  /** Resolves once the watcher's first scan is done (changes before that are not seen). */
  async #watch(): Promise<void> {
    const w = watch(this.#dirs, {
      ignoreInitial: true,
      // The watches never keep the process alive: a host.test run in 20 hung after its last test on an
      // fs.watch that chokidar had started for a folder created and removed just before close().
      persistent: false,
      depth: 2,
      ignored: (path: string) => /(^|[/\\])(\.[^/\\]*|[^/\\]*~|[^/\\]*\.sw[px]|[^/\\]*\.tmp)$/.test(path),
    });
    w.on('all', (event: string, path: string) => {
      const folder = this.#folderOf(path);
      this.#log.debug({ event, path, folder }, 'Wasm plugin file event');
      if (!folder) return;
      clearTimeout(this.#timers.get(folder));
      this.#timers.set(
        folder,
        setTimeout(() => {
          this.#timers.delete(folder);
          if (!this.#stopped) void this.reloadFolder(folder);
        }, this.#settings.config.reload_debounce),
      );
    });
    w.on('error', (err) =>
      this.#log.warn({ err }, `watching the Wasm plugin directories failed: ${(err as Error).message}`),
    );
    this.#watcher = w;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      w.once('ready', resolve);
      timer = setTimeout(resolve, 10_000);
    });
    clearTimeout(timer);
    if (this.#stopped) {
      // The agent stopped while the first scan ran.
      this.#watcher = undefined;
      await w.close();
    }
  }

  /** The plugin folder (directly inside a watched dir) that `path` belongs to. */
  #folderOf(path: string): string | undefined {
    for (const dir of this.#dirs) {
      const rel = relative(dir, path);
      if (rel === '' || rel.startsWith('..')) continue;
      const first = rel.split(sep)[0];
      if (first.startsWith('_') || first.startsWith('.')) return undefined;
      return join(dir, first);
    }
    return undefined;
  }

  #pluginLog(id: string, level: PluginLogLevel, message: string): void {
    const name = id.slice(0, id.lastIndexOf('#'));
    const minute = Math.floor(Date.now() / 60_000);
    let b = this.#logBudget.get(name);
    if (!b || b.minute !== minute) {
      if (b?.suppressed)
        this.#log.warn(
          { plugin: name },
          `Wasm plugin ${name}: ${b.suppressed} log lines suppressed in the last minute (more than ${LOG_LINES_PER_MINUTE})`,
        );
      b = { minute, lines: 0, suppressed: 0 };
      this.#logBudget.set(name, b);
    }
    if (++b.lines > LOG_LINES_PER_MINUTE) {
      b.suppressed++;
      return;
    }
    this.#log[level]({ plugin: name }, message);
  }
}
