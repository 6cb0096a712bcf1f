/**
 * One nginx instance as this plugin follows it: its last parsed config (snapshot), the last
 * `nginx -t` result, a file watcher, and a lock that serialises re-parses and applies.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { MetricBatch } from '../../core/metrics/model.js';
import { emptyConfigAnalysis } from '../../core/nginx/config/analyse.js';
import type {
  ConfigAnalysis,
  ConfigFileInfo,
  ConfigPayload,
  NginxConfigSnapshot,
  NginxConfigValidated,
  NginxInstance,
} from '../../core/nginx/types.js';
import type { Publisher } from '../../core/plugin/types.js';
import type { ApplyFile, ApplyResult, ConfigApplier } from './applier.js';
import { certificateMetrics, expiringCertificates } from './certs.js';
import { diffFiles } from './diff.js';
import type { NginxTester } from './nginx-test.js';
import type { OwnWrites } from './own-writes.js';
import { ConfigWatcher } from './watcher.js';
import { includePatterns, planWatch } from './watch-targets.js';

/** The parser, analyser and version functions (core/nginx/config), injected. */
export interface ConfigTools {
  parse(
    confPath: string,
    opts: { prefix?: string; confDir?: string; readFile?: (p: string) => Promise<string> },
  ): Promise<ConfigPayload>;
  analyse(payload: ConfigPayload, opts: { prefix: string; confPath: string }): Promise<ConfigAnalysis>;
  version(files: { path: string; content: string }[]): { version: string; files: ConfigFileInfo[] };
}

export type RefreshReason = 'initial' | 'watch' | 'reload' | 'apply' | 'manual';

export interface TrackerSettings {
  debounceMs: number;
  certExpiryWindowMs: number;
  /** Watch the config files (false: parse on instance events only). */
  watch: boolean;
}

export interface TrackerDeps {
  tools: ConfigTools;
  tester: NginxTester;
  applier: ConfigApplier;
  ownWrites: OwnWrites;
  bus: Publisher;
  /** Counts and logs (once per stage) a failure that did not stop the tracker. */
  onError(stage: 'parse' | 'analyse' | 'test' | 'watch' | 'apply', err: Error, instance: NginxInstance): void;
  now?: () => number;
}

interface Loaded {
  snapshot: NginxConfigSnapshot;
}

/** Runs async functions one at a time, in call order. */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#tail.then(fn, fn);
    this.#tail = p.catch(() => undefined);
    return p;
  }
}

export class InstanceTracker {
  #instance: NginxInstance;
  #snapshot: NginxConfigSnapshot | undefined;
  #lastTest: NginxConfigValidated | undefined;
  readonly #lock = new Mutex();
  readonly #watcher: ConfigWatcher | undefined;
  readonly #announced = new Set<string>();
  #closed = false;
  /** Counts for status and tests. */
  readonly counts = { parses: 0, changes: 0, tests: 0, applies: 0 };
  /** Set when the instance comes from `static_instances` rather than discovery. */
  readonly isStatic: boolean;

  constructor(
    instance: NginxInstance,
    private readonly deps: TrackerDeps,
    private settings: TrackerSettings,
    opts: { isStatic?: boolean } = {},
  ) {
    this.#instance = instance;
    this.isStatic = opts.isStatic ?? false;
    if (settings.watch)
      this.#watcher = new ConfigWatcher({
        debounceMs: settings.debounceMs,
        ownWrites: deps.ownWrites,
        onChange: () => void this.refresh('watch'),
        onError: (e) => deps.onError('watch', e, this.#instance),
      });
  }

  get instance(): NginxInstance {
    return this.#instance;
  }
  get snapshot(): NginxConfigSnapshot | undefined {
    return this.#snapshot;
  }
  get lastTest(): NginxConfigValidated | undefined {
    return this.#lastTest;
  }
  get watchedDirs(): string[] {
    return this.#watcher?.dirs ?? [];
  }
  get watcherStats() {
    return this.#watcher?.stats;
  }

  update(settings: TrackerSettings): void {
    this.settings = settings;
    this.#watcher?.setDebounce(settings.debounceMs);
  }

  /** New process details for the same instance (reload, pid change after a restart). */
  setInstance(instance: NginxInstance): void {
    this.#instance = instance;
  }

  /**
   * Re-parses the config. Publishes `nginx.config.changed` (always on `initial`, otherwise only when
   * the version changed) followed by `nginx.config.validated`. Never throws.
   */
  refresh(reason: RefreshReason): Promise<void> {
    return this.#lock.run(async () => {
      if (this.#closed) return;
      const loaded = await this.#load();
      if (loaded) await this.#commit(loaded, reason);
    });
  }

  /** Applies files under the instance lock, then publishes `nginx.config.applied` (and the change when it took). */
  apply(files: readonly ApplyFile[], opts: { dryRun?: boolean } = {}): Promise<ApplyResult & { version?: string }> {
    return this.#lock.run(async () => {
      const errorLogs = (this.#snapshot?.analysis.errorLogs ?? []).filter((l) => l.tailable).map((l) => l.path);
      // A dry run leaves the files as they were: nothing to publish or re-read.
      if (opts.dryRun) return this.deps.applier.apply(this.#instance, files, [...new Set(errorLogs)], opts);
      this.counts.applies++;
      const r = await this.deps.applier.apply(this.#instance, files, [...new Set(errorLogs)]);
      // After a success the files on disk are the new config; after a rollback they should equal
      // the old one again (a version change then means someone else wrote meanwhile).
      const loaded = r.written.length ? await this.#load() : undefined;
      const version = r.ok ? loaded?.snapshot.version : this.#snapshot?.version;
      this.deps.bus.publish('nginx.config.applied', {
        instanceId: this.#instance.id,
        ok: r.ok,
        rolledBack: r.rolledBack,
        steps: r.steps,
        ...(version ? { version } : {}),
      });
      if (loaded) await this.#commit(loaded, 'apply', r.ok && r.test ? r.test : undefined);
      return { ...r, ...(version ? { version } : {}) };
    });
  }

  async #load(): Promise<Loaded | undefined> {
    const inst = this.#instance;
    const contents = new Map<string, string>();
    const readText = async (p: string) => {
      const t = await readFile(p, 'utf8');
      contents.set(p, t);
      return t;
    };
    let payload: ConfigPayload;
    try {
      payload = await this.deps.tools.parse(inst.confPath, {
        prefix: inst.prefix,
        confDir: dirname(inst.confPath),
        readFile: readText,
      });
    } catch (e) {
      this.deps.onError('parse', e as Error, inst);
      return undefined;
    }
    this.counts.parses++;
    let analysis: ConfigAnalysis;
    try {
      analysis = await this.deps.tools.analyse(payload, { prefix: inst.prefix, confPath: inst.confPath });
    } catch (e) {
      this.deps.onError('analyse', e as Error, inst);
      analysis = emptyConfigAnalysis();
    }
    const { version, files } = this.deps.tools.version([...contents].map(([path, content]) => ({ path, content })));
    return {
      snapshot: {
        instanceId: inst.id,
        confPath: inst.confPath,
        prefix: inst.prefix,
        version,
        files,
        payload,
        analysis,
      },
    };
  }

  async #commit(loaded: Loaded, reason: RefreshReason, test?: NginxConfigValidated): Promise<void> {
    const prev = this.#snapshot;
    const next = loaded.snapshot;
    this.#snapshot = next;
    // The watch is re-targeted alongside, not before, the change is published: chokidar's scan of
    // the config directories took 20-25 ms at start-up, and nginx-status waits for this event to
    // read stub_status (nginx_up). An edit made after the files were read and before the watch is
    // ready goes unseen either way. The refresh (and so the instance's lock) still ends only once
    // the watch is in place.
    const watched = this.#syncWatch(next);
    try {
      await this.#publish(prev, next, reason, test, watched);
    } finally {
      await watched;
    }
  }

  async #publish(
    prev: NginxConfigSnapshot | undefined,
    next: NginxConfigSnapshot,
    reason: RefreshReason,
    test: NginxConfigValidated | undefined,
    watched: Promise<void>,
  ): Promise<void> {
    this.publishCertificates();
    if (prev && prev.version === next.version && reason !== 'initial') return;
    this.counts.changes++;
    const diff = diffFiles(prev?.files, next.files);
    this.deps.bus.publish('nginx.config.changed', {
      ...next,
      ...(prev ? { previousVersion: prev.version } : {}),
      ...diff,
    });
    let result = test;
    if (!result) {
      // nginx -t still comes after the watch is in place, as when the change waited for it too, and
      // a turn of the event loop after the change: the bus hands the change on first (nginx-status
      // sends its first stub_status request), and the few ms that spawning nginx blocks this thread
      // stay out of the way of what the change set off.
      await watched;
      await new Promise((resolve) => setImmediate(resolve));
      try {
        result = await this.deps.tester.test(this.#instance, next.version);
        this.counts.tests++;
      } catch (e) {
        this.deps.onError('test', e as Error, this.#instance);
        return;
      }
    }
    this.#lastTest = { ...result, version: next.version };
    this.deps.bus.publish('nginx.config.validated', this.#lastTest);
  }

  async #syncWatch(s: NginxConfigSnapshot): Promise<void> {
    if (!this.#watcher || this.#closed) return;
    try {
      const logs = [...s.analysis.accessLogs, ...s.analysis.errorLogs].map((l) => l.path);
      const plan = await planWatch({
        // The main file even when it could not be read, so its appearance is noticed.
        files: s.files.length ? s.files.map((f) => f.path) : [s.confPath],
        patterns: includePatterns(s.payload, dirname(s.confPath)),
        exclude: logs,
        exists: async (d) => {
          try {
            return (await stat(d)).isDirectory();
          } catch {
            return false;
          }
        },
      });
      await this.#watcher.update(plan);
    } catch (e) {
      this.deps.onError('watch', e as Error, this.#instance);
    }
  }

  /** Publishes the certificate gauge and any newly expiring certificates (also called on a timer). */
  publishCertificates(): void {
    const s = this.#snapshot;
    if (!s || this.#closed) return;
    const now = (this.deps.now ?? Date.now)();
    const batch: MetricBatch = {
      source: `nginx-config:${this.#instance.id}`,
      time: now,
      resource: { 'nginx.instance.id': this.#instance.id },
      metrics: certificateMetrics(s.analysis.certificates, now),
    };
    this.deps.bus.publish('metrics', batch);
    for (const ev of expiringCertificates(
      this.#instance.id,
      s.analysis.certificates,
      now,
      this.settings.certExpiryWindowMs,
      this.#announced,
    ))
      this.deps.bus.publish('nginx.ssl.certificate.expiring', ev);
  }

  /** Stops the watcher after in-flight work; publishes a final (empty) metric batch. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#lock.run(async () => {
      this.#closed = true;
    });
    await this.#watcher?.close();
    this.deps.bus.publish('metrics', {
      source: `nginx-config:${this.#instance.id}`,
      time: Date.now(),
      metrics: [],
      final: true,
    });
  }
}
