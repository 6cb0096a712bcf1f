/**
 * One Wasm plugin as the plugin host sees it: a Plugin whose `process` collects bus messages into
 * batches and hands them to the worker (WasmRuntime). Failures are counted; repeated failures put the
 * plugin in quarantine with exponential backoff; memory above `memory_mb` stops it. A hot reload
 * loads the new version beside the old one and swaps them between two batches.
 */
import type { Logger } from 'pino';
import type { Message, Topic, TopicMap } from '../topics.js';
import type { Plugin, PluginContext, PluginState, PluginStatus, Publisher } from '../plugin/types.js';
import { extismLogLevel } from './host-env.js';
import type { Manifest } from './manifest.js';
import { capMemory, type CheckedPlugin } from './module.js';
import type { LoadSpec } from './protocol.js';
import type { CallResult, WasmRuntime } from './runtime.js';

/** Host-wide limits and defaults (the `wasm` config section, in ms and counts). */
export interface WasmLimits {
  batchSize: number;
  batchWaitMs: number;
  maxBatchesInFlight: number;
  timeoutMs: number;
  memoryMb: number;
  failuresBeforeQuarantine: number;
  quarantineBackoffMs: number;
  quarantineBackoffMaxMs: number;
  maxPublishesPerCall: number;
}

/** Manifest defaults: `vars_max_bytes` (Extism's own default) and `http_max_response_bytes`. */
export const DEFAULT_VARS_MAX_BYTES = 1_048_576;
export const DEFAULT_HTTP_MAX_RESPONSE_BYTES = 1_048_576;

/** Call duration buckets, seconds. */
export const CALL_BOUNDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

export interface WasmPluginCounters {
  calls: number;
  messages: number;
  errors: number;
  timeouts: number;
  quarantines: number;
  /** Messages discarded here: while quarantined or stopped, or in a batch that could not be encoded. */
  dropped: number;
  published: number;
  refused: number;
  durationCount: number;
  durationSum: number;
  durationBuckets: number[];
}

interface Version {
  checked: CheckedPlugin;
  instanceId: string;
  timeoutMs: number;
  memoryMb: number;
  describe?: { version?: string; description?: string };
  /** `metric_names` of the manifest, when it names some: the metrics of a batch the plugin gets. */
  metricNames?: ReadonlySet<string>;
}

/**
 * A plugin folder at start-up: its manifest is read (name and subscriptions, so the host subscribes
 * it before any built-in publishes), its module is checked by init, a turn later.
 */
export interface PendingCheck {
  readonly manifest: Manifest;
  check(): CheckedPlugin;
  /** Checked once this has settled (the agent's built-ins started), and a turn of the event loop later. */
  readonly after?: Promise<unknown>;
}

export class WasmPlugin implements Plugin {
  readonly name: string;
  readonly startTime = Date.now();
  readonly counters: WasmPluginCounters = {
    calls: 0,
    messages: 0,
    errors: 0,
    timeouts: 0,
    quarantines: 0,
    dropped: 0,
    published: 0,
    refused: 0,
    durationCount: 0,
    durationSum: 0,
    durationBuckets: new Array(CALL_BOUNDS.length + 1).fill(0),
  };
  readonly #runtime: WasmRuntime;
  readonly #limits: WasmLimits;
  /**
   * The first version: the checked folder, the error that refused it (init throws it), or a folder
   * whose manifest alone has been read, its module checked by init (see PendingCheck).
   */
  #first: CheckedPlugin | Error | PendingCheck;
  readonly #dir: string;
  #v: Version | undefined;
  #gen = 0;
  #bus: Publisher | undefined;
  #log: Logger | undefined;
  #state: PluginState = 'starting';
  #reason: string | undefined;
  #lastError: string | undefined;
  #reloadError: string | undefined;
  #consecutive = 0;
  /** Quarantines since the last successful call: the backoff doubles with each. */
  #streak = 0;
  #retryAt = 0;
  #pending: Message[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** The batch of a quiet plugin, sent at the end of this turn of the event loop (see process). */
  #soon: NodeJS.Immediate | undefined;
  /** When the last batch went to the runtime (performance.now()). */
  #lastFlush = Number.NEGATIVE_INFINITY;
  #inflight = 0;
  #inflightMessages = 0;
  #waiters: (() => void)[] = [];
  #idle: (() => void)[] = [];
  #refusalsLogged = 0;

  /** `checked` is the validated folder, or the error that refused it (the plugin then fails its init, visibly). */
  constructor(
    name: string,
    dir: string,
    checked: CheckedPlugin | Error | PendingCheck,
    runtime: WasmRuntime,
    limits: WasmLimits,
  ) {
    this.name = name;
    this.#dir = dir;
    this.#first = checked;
    this.#runtime = runtime;
    this.#limits = limits;
  }

  get loaded(): boolean {
    return this.#v !== undefined;
  }
  get instanceId(): string | undefined {
    return this.#v?.instanceId;
  }
  get dir(): string {
    return this.#dir;
  }
  /** SHA-256 of the module and manifest text of the running version (reloads skip identical files). */
  get fingerprint(): string | undefined {
    return this.#v ? `${this.#v.checked.sha256}:${JSON.stringify(this.#v.checked.manifest)}` : undefined;
  }
  /** Messages waiting here or in the worker. */
  get queued(): number {
    return this.#pending.length + this.#inflightMessages;
  }

  subscriptions(): readonly string[] {
    const src = this.#v?.checked ?? this.#first;
    return src instanceof Error ? [] : src.manifest.subscriptions;
  }

  async init(ctx: PluginContext<unknown>): Promise<void> {
    this.#bus = ctx.bus;
    this.#log = ctx.logger;
    if ('check' in this.#first) {
      // The host has subscribed this plugin already (messages wait in its queue); the check (reading,
      // hashing and compiling the module) runs after the built-ins' start and between the API's
      // answers, not before them.
      const pending = this.#first;
      await pending.after?.catch(() => undefined);
      await new Promise((resolve) => setImmediate(resolve));
      try {
        this.#first = pending.check();
      } catch (err) {
        this.#first = err as Error;
      }
    }
    if (this.#first instanceof Error) throw this.#first;
    const first = this.#first;
    this.#v = await this.#load(first);
    this.#setState('running');
    ctx.logger.info(
      { wasm: first.wasmFile, sha256: first.sha256, version: this.#v.describe?.version },
      `Wasm plugin ${this.name} loaded from ${this.#dir}${this.#v.describe?.version ? ` (version ${this.#v.describe.version})` : ''}`,
    );
  }

  process(msg: Message): void | Promise<void> {
    if (this.#state === 'failed' || this.#state === 'stopped' || !this.#v) {
      this.counters.dropped++;
      return;
    }
    if (this.#state === 'quarantined') {
      if (Date.now() < this.#retryAt) {
        this.counters.dropped++;
        return;
      }
      this.#setState('running', undefined);
      this.#log?.info(`Wasm plugin ${this.name} leaves quarantine and gets the next batch`);
    }
    this.#pending.push(trimMetrics(msg, this.#v.metricNames));
    if (this.#pending.length < this.#limits.batchSize) {
      if (this.#timer || this.#soon) return;
      // A quiet plugin (nothing in flight, no batch sent within batch_wait) gets its batch at the end
      // of this turn, with whatever else arrives in it, instead of batch_wait later: no timer wakes the
      // agent for it, and the runtime sends it in one round with the other plugins' (under load,
      // nginx-logs publishes error-budget's metrics and bus-meter's access.top together). Still at
      // most one call per batch_wait unless batches fill, as with the timer.
      if (this.#inflight === 0 && performance.now() - this.#lastFlush >= this.#limits.batchWaitMs) {
        this.#soon = setImmediate(() => {
          this.#soon = undefined;
          if (this.#inflight < this.#limits.maxBatchesInFlight) this.#flush();
        });
        return;
      }
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        // With enough batches in flight this one keeps filling; it goes when a call completes.
        if (this.#inflight < this.#limits.maxBatchesInFlight) this.#flush();
      }, this.#limits.batchWaitMs);
      return;
    }
    if (this.#inflight < this.#limits.maxBatchesInFlight) {
      this.#flush();
      return;
    }
    // Back-pressure: the batch is full and enough are in flight; the bus queue holds what follows (its overflow policy applies).
    return new Promise((r) => this.#waiters.push(r));
  }

  /**
   * Loads `checked` beside the running version (init included) and swaps it in: batches already sent
   * finish on the old version, every later batch goes to the new one. Throws, keeping the old
   * version, when the new one cannot be loaded. Resolves true when the subscriptions changed.
   */
  async reload(checked: CheckedPlugin): Promise<boolean> {
    let next: Version;
    try {
      next = await this.#load(checked);
    } catch (e) {
      this.#reloadError = (e as Error).message;
      throw e;
    }
    const old = this.#v;
    this.#v = next;
    this.#reloadError = undefined;
    this.#consecutive = 0;
    this.#streak = 0;
    this.#lastError = undefined;
    if (this.#state !== 'running') this.#setState('running', undefined);
    if (old) void this.#runtime.unload(old.instanceId);
    this.#log?.info(
      { sha256: checked.sha256, version: next.describe?.version },
      `Wasm plugin ${this.name} reloaded: the new version takes the next batch`,
    );
    return JSON.stringify(old?.checked.manifest.subscriptions) !== JSON.stringify(checked.manifest.subscriptions);
  }

  /** Records a new version that was refused before loading (bad manifest, hash, exports). */
  refuseReload(message: string): void {
    this.#reloadError = message;
  }

  async close(): Promise<void> {
    this.#flush();
    if (this.#inflight > 0) await new Promise<void>((r) => this.#idle.push(r));
    const v = this.#v;
    this.#v = undefined;
    this.#state = 'stopped';
    if (v) await this.#runtime.unload(v.instanceId);
  }

  status(): PluginStatus {
    const v = this.#v;
    const c = this.counters;
    return {
      state: this.#state,
      ...(this.#reason ? { reason: this.#reason } : {}),
      details: {
        kind: 'wasm',
        dir: this.#dir,
        ...(v
          ? { wasm: v.checked.wasmFile, sha256: v.checked.sha256, timeout_ms: v.timeoutMs, memory_mb: v.memoryMb }
          : {}),
        ...(v?.describe?.version ? { version: v.describe.version } : {}),
        ...(v?.describe?.description ? { description: v.describe.description } : {}),
        publishes: v?.checked.manifest.publishes ?? [],
        calls: c.calls,
        messages: c.messages,
        errors: c.errors,
        timeouts: c.timeouts,
        quarantines: c.quarantines,
        published: c.published,
        refused: c.refused,
        dropped: c.dropped,
        queued: this.queued,
        ...(this.#state === 'quarantined' ? { retry_at: new Date(this.#retryAt).toISOString() } : {}),
        ...(this.#lastError ? { last_error: this.#lastError } : {}),
        ...(this.#reloadError ? { reload_refused: this.#reloadError } : {}),
      },
    };
  }

  async #load(checked: CheckedPlugin): Promise<Version> {
    const m = checked.manifest;
    const timeoutMs = m.timeout_ms ?? this.#limits.timeoutMs;
    const memoryMb = m.memory_mb ?? this.#limits.memoryMb;
    const memoryBytes = memoryMb * 1_048_576;
    // The module's own maximum is twice the cap: a call that ends above memory_mb stops the plugin,
    // and no single call can take more than twice it.
    const wasm = capMemory(checked.bytes, Math.min(2 * memoryBytes, 4 * 1024 ** 3 - 65_536));
    const id = `${this.name}#${++this.#gen}`;
    const spec: LoadSpec = {
      id,
      name: this.name,
      abi: m.abi,
      wasm,
      // The plugin learns its own name (e.g. for its metrics source `wasm:<name>`).
      config: { ...m.config, 'plugin.name': this.name },
      publishes: m.publishes,
      allowedHosts: m.allowed_hosts,
      allowedPaths: checked.allowedPaths,
      useWasi: checked.wasi,
      logLevel: extismLogLevel(this.#log?.level ?? 'info'),
      vars: {},
      varsMaxBytes: m.vars_max_bytes ?? DEFAULT_VARS_MAX_BYTES,
      httpTimeoutMs: m.http_timeout_ms ?? Math.max(1, Math.floor(timeoutMs / 2)),
      httpMaxResponseBytes: m.http_max_response_bytes ?? DEFAULT_HTTP_MAX_RESPONSE_BYTES,
      memoryBytes,
      maxPublishesPerCall: this.#limits.maxPublishesPerCall,
    };
    const r = await this.#runtime.load(spec, Math.max(timeoutMs * 10, 5000));
    return {
      checked,
      instanceId: id,
      timeoutMs,
      memoryMb,
      ...(r.describe ? { describe: r.describe } : {}),
      ...(m.metric_names.length ? { metricNames: new Set(m.metric_names) } : {}),
    };
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    clearImmediate(this.#soon);
    this.#soon = undefined;
    const v = this.#v;
    if (this.#pending.length === 0 || !v) return;
    this.#lastFlush = performance.now();
    const batch = this.#pending;
    this.#pending = [];
    let input: string;
    try {
      input = encodeBatch(batch);
    } catch (e) {
      this.counters.dropped += batch.length;
      this.#log?.error({ err: e }, `Wasm plugin ${this.name}: a batch could not be encoded as JSON and was dropped`);
      return;
    }
    this.#inflight++;
    this.#inflightMessages += batch.length;
    void this.#runtime.call(v.instanceId, input, v.timeoutMs).then((r) => this.#done(v, batch.length, r));
  }

  #done(v: Version, n: number, r: CallResult): void {
    this.#inflight--;
    this.#inflightMessages -= n;
    const c = this.counters;
    if ('cancelled' in r && r.cancelled) {
      c.dropped += n;
      this.#wake();
      return;
    }
    c.calls++;
    c.messages += n;
    const s = r.ms / 1000;
    c.durationCount++;
    c.durationSum += s;
    let b = CALL_BOUNDS.findIndex((x) => s <= x);
    if (b < 0) b = CALL_BOUNDS.length;
    c.durationBuckets[b]++;
    for (const p of r.publishes) {
      this.#bus?.publish(p.topic as Topic, p.data as TopicMap[Topic]);
      c.published++;
    }
    if (r.refused.length) {
      c.refused += r.refused.length;
      for (const x of r.refused) {
        this.#refusalsLogged++;
        if (this.#refusalsLogged <= 10 || this.#refusalsLogged % 1000 === 0) {
          this.#log?.warn(
            { topic: x.topic, refused: c.refused },
            `Wasm plugin ${this.name}: publish refused: ${x.reason}`,
          );
        }
      }
    }
    if (v === this.#v) {
      if (r.ok && !('memoryCap' in r && r.memoryCap)) {
        this.#consecutive = 0;
        this.#streak = 0;
      } else this.#failed(v, r);
    } else if (!r.ok) c.errors++;
    this.#wake();
  }

  #wake(): void {
    if (
      this.#pending.length &&
      this.#inflight < this.#limits.maxBatchesInFlight &&
      (this.#pending.length >= this.#limits.batchSize || !this.#timer)
    )
      this.#flush();
    this.#waiters.shift()?.();
    if (this.#inflight === 0) for (const i of this.#idle.splice(0)) i();
  }

  #failed(v: Version, r: CallResult): void {
    const c = this.counters;
    if ('memoryCap' in r && r.memoryCap) {
      if (!r.ok) c.errors++;
      const what =
        !r.ok && r.error?.startsWith('Extism memory blocks')
          ? r.error
          : `its memory reached ${(r.memBytes / 1_048_576).toFixed(1)} MiB`;
      this.#stop(`${what}, above memory_mb ${v.memoryMb}; stopped until its files change`);
      return;
    }
    c.errors++;
    const timedOut = 'timeout' in r && r.timeout;
    if (timedOut) c.timeouts++;
    this.#consecutive++;
    this.#lastError = timedOut ? `call ran past timeout_ms ${v.timeoutMs} and was stopped` : (r.error ?? 'failed');
    if (c.errors <= 10 || c.errors % 1000 === 0) {
      this.#log?.warn(
        { errors: c.errors, consecutive: this.#consecutive },
        `Wasm plugin ${this.name}: call failed (${this.#lastError}); the next batch goes through`,
      );
    }
    if (this.#consecutive >= this.#limits.failuresBeforeQuarantine) {
      this.#streak++;
      c.quarantines++;
      const backoff = Math.min(
        this.#limits.quarantineBackoffMs * 2 ** (this.#streak - 1),
        this.#limits.quarantineBackoffMaxMs,
      );
      this.#retryAt = Date.now() + backoff;
      this.#consecutive = 0;
      c.dropped += this.#pending.length;
      this.#pending = [];
      clearTimeout(this.#timer);
      this.#timer = undefined;
      clearImmediate(this.#soon);
      this.#soon = undefined;
      this.#setState(
        'quarantined',
        `${this.#limits.failuresBeforeQuarantine} failed calls in a row (last: ${this.#lastError}); messages are dropped until ${new Date(this.#retryAt).toISOString()} (backoff ${backoff} ms)`,
      );
      this.#log?.error(
        { backoff_ms: backoff, quarantines: c.quarantines },
        `Wasm plugin ${this.name} quarantined for ${backoff} ms: ${this.#reason}`,
      );
    }
  }

  #stop(reason: string): void {
    const v = this.#v;
    this.counters.dropped += this.#pending.length;
    this.#pending = [];
    this.#setState('failed', reason);
    this.#log?.error(`Wasm plugin ${this.name} stopped: ${reason}`);
    // Unloaded from the worker but kept as the running version, so the next change of its files reloads it.
    if (v) void this.#runtime.unload(v.instanceId, true);
  }

  #setState(state: PluginState, reason?: string): void {
    this.#state = state;
    this.#reason = reason;
    if (state !== 'starting')
      this.#bus?.publish('agent.plugin.state', { plugin: this.name, state, ...(reason ? { reason } : {}) });
  }
}

/**
 * A `metrics` message with only the metrics named in the plugin's `metric_names` (the batch's other
 * fields as published), so what the plugin does not read is neither encoded here nor parsed there;
 * any other message, or no names, as it is.
 */
export function trimMetrics(msg: Message, names: ReadonlySet<string> | undefined): Message {
  if (!names || msg.topic !== 'metrics') return msg;
  const metrics = msg.data.metrics.filter((m) => names.has(m.name));
  return metrics.length === msg.data.metrics.length ? msg : { ...msg, data: { ...msg.data, metrics } };
}

/** The ABI v1 input: `{"messages":[{"topic","time","data"}, ...]}`. */
export function encodeBatch(batch: readonly Message[]): string {
  let s = '{"messages":[';
  for (let i = 0; i < batch.length; i++) {
    const m = batch[i];
    if (i) s += ',';
    s += `{"topic":${JSON.stringify(m.topic)},"time":${m.time},"data":${JSON.stringify(m.data) ?? 'null'}}`;
  }
  return `${s}]}`;
}
