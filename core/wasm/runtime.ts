/**
 * The agent's side of the plugin worker: one worker thread runs every Wasm plugin; requests are
 * queued here and sent in rounds (at most one request per plugin in a round, one message to the
 * worker), which the worker runs one after the other, each with a timer here. A call past its
 * limit, or a worker that dies, ends in `terminate()`: a new worker is started, every loaded plugin
 * is loaded again into it, and the queue goes on (requests not yet sent are not lost). The agent's
 * event loop never runs plugin code.
 */
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import type { PluginLogLevel } from './host-env.js';
import type { CallReply, FromWorker, LoadReply, LoadSpec, ToWorker, VarChanges } from './protocol.js';
import { PACKAGE_ROOT } from '../package-root.js';

export interface WasmRuntimeSettings {
  logger: Logger;
  /** Plugin log lines (Extism `log`), tagged with the loaded plugin id. */
  onLog?: (id: string, level: PluginLogLevel, message: string) => void;
  /** V8 heap limit of the worker (Wasm memories are capped per plugin by memory_mb). */
  heapMb?: number;
}

export type CallResult =
  | (CallReply & { timeout?: false; crashed?: false; cancelled?: false })
  | {
      ok: false;
      timeout: boolean;
      crashed: boolean;
      cancelled: boolean;
      error: string;
      publishes: [];
      refused: [];
      memBytes: 0;
      ms: number;
    };

interface Failed {
  failed: 'timeout' | 'crash' | 'cancelled';
  error: string;
  ms: number;
}

interface Op {
  msg: ToWorker;
  timeoutMs: number;
  resolve: (r: FromWorker | Failed) => void;
  /** Re-sent after a worker restart (loads of already loaded plugins). */
  sentAt?: number;
}

export class WasmRuntime {
  readonly #settings: WasmRuntimeSettings;
  #worker: Worker | undefined;
  #ready: Promise<void> | undefined;
  /**
   * Requests by lane, served round-robin so a slow plugin delays the others by one call at most. One
   * lane per plugin name, not per loaded version: during a hot reload the old version's queued calls
   * run before the new version's, so a subscriber sees the plugin's output in order.
   */
  readonly #lanes = new Map<string, Op[]>();
  /** Lanes with requests, in serving order. */
  #turns: string[] = [];
  #lastKey: string | undefined;
  /** Reloads after a restart, then the requests of the round the old worker did not run: served before any lane. */
  readonly #urgent: Op[] = [];
  /**
   * The round sent to the worker and not answered yet, in the order the worker runs it: the first
   * runs now (its timer is armed), each reply arms the next one's.
   */
  #round: Op[] = [];
  /** A round is to be sent at the end of this turn of the event loop (setImmediate). */
  #roundScheduled = false;
  #timer: NodeJS.Timeout | undefined;
  #seq = 0;
  /** Specs of plugins loaded in the live worker, to bring back after a restart. */
  readonly #loaded = new Map<string, LoadSpec>();
  /** Extism vars of each loaded version as the worker last reported them: handed back after a restart. */
  readonly #vars = new Map<string, Record<string, Uint8Array>>();
  #closed = false;
  /** Crashes since the last answer: past MAX_CRASHES the runtime gives up instead of looping. */
  #crashes = 0;
  /** Worker restarts after a timeout or a crash. */
  restarts = 0;
  /** Rounds sent to the worker (messages to it carrying requests): each wakes the worker once. */
  rounds = 0;

  constructor(s: WasmRuntimeSettings) {
    this.#settings = s;
  }

  /** True while a worker thread exists (it costs its isolate: started only for a plugin). */
  get workerStarted(): boolean {
    return this.#worker !== undefined;
  }

  /** Ids of the plugins loaded in the worker. */
  get loadedIds(): string[] {
    return [...this.#loaded.keys()];
  }

  /**
   * Starts the worker now, ahead of the first load, so its start overlaps the caller's own work (reading
   * and checking plugin folders). Without it the first load starts the worker.
   */
  prepare(): void {
    if (!this.#worker && !this.#closed) this.#spawn();
  }

  /** Instantiates a plugin (and runs its `init`). Rejects with the reason when it cannot. */
  async load(spec: LoadSpec, timeoutMs: number): Promise<LoadReply> {
    const r = await this.#enqueue({ type: 'load', seq: 0, spec }, timeoutMs);
    if ('failed' in r)
      throw new Error(
        r.failed === 'timeout'
          ? `init did not return within ${timeoutMs} ms (the worker was restarted)`
          : `the plugin worker died while loading: ${r.error}`,
      );
    const reply = r as LoadReply;
    if (!reply.ok) throw new Error(reply.error ?? 'load failed');
    this.#loaded.set(spec.id, spec);
    return reply;
  }

  /** Calls `process` of a loaded plugin with one batch (JSON input). Never rejects. */
  async call(id: string, input: string, timeoutMs: number): Promise<CallResult> {
    const r = await this.#enqueue({ type: 'call', seq: 0, id, input }, timeoutMs);
    if ('failed' in r)
      return {
        ok: false,
        timeout: r.failed === 'timeout',
        crashed: r.failed === 'crash',
        cancelled: r.failed === 'cancelled',
        error: r.error,
        publishes: [],
        refused: [],
        memBytes: 0,
        ms: r.ms,
      };
    return r as CallReply;
  }

  /**
   * Drops a loaded plugin after the calls queued for it, or, with `cancelQueued`, at once: its queued
   * calls then end as cancelled (a stopped plugin runs nothing more).
   */
  async unload(id: string, cancelQueued = false): Promise<void> {
    if (!this.#loaded.has(id)) return;
    this.#loaded.delete(id);
    this.#vars.delete(id);
    if (cancelQueued) {
      const key = laneOf(id);
      const lane = this.#lanes.get(key) ?? [];
      const keep = lane.filter((op) => op.msg.type === 'load' || op.msg.id !== id);
      for (const op of lane)
        if (!keep.includes(op)) op.resolve({ failed: 'cancelled', error: 'the plugin was stopped', ms: 0 });
      if (keep.length) this.#lanes.set(key, keep);
      else {
        this.#lanes.delete(key);
        this.#turns = this.#turns.filter((k) => k !== key);
      }
    }
    await this.#enqueue({ type: 'unload', seq: 0, id }, 5000);
    // The last plugin gone: the worker's isolate is given back (a later load starts a new one).
    if (this.#loaded.size === 0 && this.#round.length === 0 && this.#urgent.length === 0 && this.#lanes.size === 0) {
      const w = this.#worker;
      this.#worker = undefined;
      await w?.terminate();
    }
  }

  /** Terminates the worker; queued requests end as crashed. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    const w = this.#worker;
    this.#worker = undefined;
    const pending = [
      ...this.#round.splice(0),
      ...this.#urgent.splice(0),
      ...[...this.#lanes.values()].flatMap((l) => l.splice(0)),
    ];
    this.#lanes.clear();
    this.#turns = [];
    for (const op of pending) op.resolve({ failed: 'crash', error: 'the plugin runtime is closed', ms: 0 });
    this.#loaded.clear();
    this.#vars.clear();
    await w?.terminate();
  }

  #enqueue(msg: ToWorker, timeoutMs: number): Promise<FromWorker | Failed> {
    if (this.#closed) return Promise.resolve({ failed: 'crash', error: 'the plugin runtime is closed', ms: 0 });
    const key = laneOf(msg.type === 'load' ? msg.spec.id : msg.id);
    return new Promise((resolve) => {
      let lane = this.#lanes.get(key);
      if (!lane) this.#lanes.set(key, (lane = []));
      if (lane.length === 0) this.#turns.push(key);
      lane.push({ msg, timeoutMs, resolve });
      this.#pump();
    });
  }

  /**
   * The next round: the urgent requests, then one request of each lane with some, round-robin (a
   * lane already in the round ends it, so a plugin's backlog waits for the next round and delays the
   * others by one call at most).
   */
  #nextRound(): Op[] {
    const round = this.#urgent.splice(0);
    const served = new Set<string>();
    for (;;) {
      // The lane served last goes behind the others even when it emptied and refilled meanwhile.
      if (this.#turns.length > 1 && this.#turns[0] === this.#lastKey) this.#turns.push(this.#turns.shift()!);
      const key = this.#turns[0];
      if (key === undefined || served.has(key)) return round;
      this.#turns.shift();
      served.add(key);
      this.#lastKey = key;
      const lane = this.#lanes.get(key);
      if (!lane) continue;
      const op = lane.shift();
      if (lane.length) this.#turns.push(key);
      else this.#lanes.delete(key);
      if (op) round.push(op);
    }
  }

  #spawn(): void {
    // From source (tests, tsx) the worker is TypeScript: load it through tsx's API. Built, it is plain JS.
    const fromSource = import.meta.url.endsWith('.ts');
    // Built, the worker is dist/core/wasm/worker.js whether this code runs from dist/core/wasm or from
    // the dist/agent.cjs bundle.
    const target = fromSource
      ? new URL('./worker.ts', import.meta.url)
      : pathToFileURL(join(PACKAGE_ROOT, 'dist', 'core', 'wasm', 'worker.js'));
    const resourceLimits = { maxOldGenerationSizeMb: this.#settings.heapMb ?? 256 };
    const w = fromSource
      ? new Worker(
          `import(${JSON.stringify(tsxApi())}).then((m) => m.tsImport(${JSON.stringify(target.href)}, ${JSON.stringify(import.meta.url)}))`,
          { eval: true, resourceLimits, execArgv: NO_WARNINGS },
        )
      : new Worker(target, { resourceLimits, execArgv: NO_WARNINGS });
    w.unref();
    this.#worker = w;
    this.#ready = new Promise<void>((resolve) => {
      const onReady = (m: FromWorker) => {
        if (m.type === 'ready') {
          w.off('message', onReady);
          resolve();
        }
      };
      w.on('message', onReady);
      w.once('exit', () => resolve());
    });
    w.on('message', (m: FromWorker) => this.#onMessage(w, m));
    w.on('error', (err) => this.#settings.logger.error({ err }, `Wasm plugin worker failed: ${err.message}`));
    w.on('exit', (code) => {
      if (this.#worker !== w || this.#closed) return;
      this.#restart('crash', `the worker exited with code ${code}`);
    });
  }

  /**
   * Sends the next round once the worker has answered the last one, at the end of this turn of the
   * event loop: the requests of every plugin whose batch is ready in this turn (their batch timers
   * fire together) go in one message, so the worker wakes once for them, not once per plugin.
   */
  #pump(): void {
    if (this.#round.length || this.#closed || this.#roundScheduled) return;
    this.#roundScheduled = true;
    setImmediate(() => {
      this.#roundScheduled = false;
      this.#send();
    });
  }

  #send(): void {
    if (this.#round.length || this.#closed) return;
    const round = this.#nextRound();
    if (round.length === 0) return;
    if (!this.#worker) this.#spawn();
    this.#round = round;
    const w = this.#worker!;
    for (const op of round) op.msg.seq = ++this.#seq;
    void this.#ready!.then(() => {
      if (this.#round !== round || this.#worker !== w) return;
      this.#arm(round[0]!);
      this.rounds++;
      w.postMessage(round.map((op) => op.msg));
    });
  }

  /** The worker starts `op` now (the previous one answered): its timer runs from here. */
  #arm(op: Op): void {
    op.sentAt = performance.now();
    this.#timer = setTimeout(() => this.#restart('timeout', `no answer within ${op.timeoutMs} ms`), op.timeoutMs);
  }

  #onMessage(w: Worker, m: FromWorker): void {
    if (w !== this.#worker) return;
    if (m.type === 'log') {
      this.#settings.onLog?.(m.id, m.level, m.message);
      return;
    }
    if (m.type !== 'reply') return;
    const round = this.#round;
    const op = round[0];
    if (!op || op.msg.seq !== m.seq) return;
    this.#crashes = 0;
    clearTimeout(this.#timer);
    round.shift();
    if (round[0]) this.#arm(round[0]);
    if (m.vars) this.#keepVars(op.msg.type === 'load' ? op.msg.spec.id : op.msg.id, m.vars);
    op.resolve(m);
    if (round.length === 0) this.#pump();
  }

  #keepVars(id: string, changes: VarChanges): void {
    const vars = this.#vars.get(id) ?? {};
    for (const [key, value] of Object.entries(changes)) {
      if (value) vars[key] = value;
      else delete vars[key];
    }
    this.#vars.set(id, vars);
  }

  /** Ends the current request as failed, replaces the worker, reloads the plugins, goes on with the queue. */
  #restart(failed: 'timeout' | 'crash', why: string): void {
    clearTimeout(this.#timer);
    const [op, ...notRun] = this.#round;
    this.#round = [];
    const old = this.#worker;
    this.#worker = undefined;
    void old?.terminate();
    if (failed === 'crash' && ++this.#crashes > MAX_CRASHES) {
      const error = `the Wasm plugin worker died ${this.#crashes} times in a row (last: ${why}); Wasm plugins stay stopped until the agent restarts`;
      this.#settings.logger.error(error);
      op?.resolve({ failed, error, ms: 0 });
      this.#urgent.push(...notRun);
      void this.close();
      return;
    }
    this.restarts++;
    const offender = op ? (op.msg.type === 'load' ? op.msg.spec.id : op.msg.id) : undefined;
    this.#settings.logger.warn(
      { plugin: offender, restarts: this.restarts },
      `Wasm plugin worker restarted: ${offender ? `${offender} ` : ''}${why}; the other plugins are loaded again`,
    );
    // Reload every plugin first, in load order, ahead of the queued requests.
    const reloads: Op[] = [...this.#loaded.values()].map((spec) => ({
      msg: { type: 'load', seq: 0, spec: { ...spec, vars: this.#vars.get(spec.id) ?? spec.vars } },
      timeoutMs: 10_000,
      resolve: (r) => {
        if ('failed' in r || !(r as LoadReply).ok) {
          this.#loaded.delete(spec.id);
          this.#settings.logger.error(
            { plugin: spec.name },
            `Wasm plugin ${spec.name} could not be loaded again after a worker restart: ${'failed' in r ? r.error : (r as LoadReply).error}`,
          );
        }
      },
    }));
    // The rest of the round never ran: it goes to the new worker after the reloads, in its order.
    this.#urgent.push(...reloads, ...notRun);
    op?.resolve({ failed, error: why, ms: op.sentAt ? performance.now() - op.sentAt : 0 });
    this.#pump();
  }
}

const MAX_CRASHES = 5;

/** The lane of a loaded plugin id (`name#generation`): its name, shared by every version. */
export function laneOf(id: string): string {
  const hash = id.lastIndexOf('#');
  return hash > 0 ? id.slice(0, hash) : id;
}

/** The SDK imports node:wasi even with WASI off, which prints an ExperimentalWarning per worker. */
const NO_WARNINGS = ['--no-warnings'];

function tsxApi(): string {
  return import.meta.resolve('tsx/esm/api');
}
