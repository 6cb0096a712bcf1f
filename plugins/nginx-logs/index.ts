/**
 * `nginx-logs`: follows every access and error log of every nginx instance (learned from
 * `nginx.config.changed`), plus static logs from the config, and turns lines into metrics.
 * See README.md for the configuration and the metrics.
 */
import { bool, duration, int, list, number, object, oneOf, string, type Infer } from '../../core/config/schema.js';
import { counter, type Metric } from '../../core/metrics/model.js';
import type { AccessLogInfo, ErrorLogInfo, NginxConfigChanged } from '../../core/nginx/types.js';
import { defineBuiltin } from '../../core/plugin/builtin.js';
import type { Plugin, PluginContext, PluginStatus } from '../../core/plugin/types.js';
import type { Message } from '../../core/topics.js';
import { AccessLogFold } from './access-fold.js';
import { ErrorLogFold } from './error-fold.js';
import { DEFAULT_LATENCY_BOUNDS } from './histogram.js';
import { compileLogFormat, type CompiledLogFormat, type LogEscape, unescapeValue } from './log-format.js';
import { nginxHolds } from './holders.js';
import { PositionStore } from './positions.js';
import { LogScheduler } from './scheduler.js';
import { LogTailer } from './tailer.js';
import { TOP_URIS_CAPACITY, TOP_URIS_PUBLISHED, TOP_URIS_WINDOW_MS } from './top-uris.js';

/** The `nginx_logs` config section. */
export const schema = object(
  {
    enabled: bool({
      default: true,
      description: 'Follow the access and error logs of every discovered nginx instance.',
    }),
    poll_interval: duration({
      default: '1s',
      min: '10ms',
      max: '1m',
      description:
        'How often each log is checked for new lines, rotation and truncation (one stat and one read per log).',
    }),
    start_at: oneOf(['end', 'beginning'] as const, {
      default: 'end',
      description:
        'Where to start in a log that already exists when first seen: end (count only new lines) or beginning. A log that appears later is always read from its start.',
    }),
    histogram_bounds: list(number({ min: 0 }), {
      default: [...DEFAULT_LATENCY_BOUNDS],
      description: 'Upper bounds in seconds of the request and upstream time histogram buckets, ascending.',
    }),
    rotation_drain: duration({
      default: '5s',
      min: '0s',
      max: '10m',
      description:
        "After a rename rotation the old file is read until no process of the nginx instance holds it (/proc/PID/fd); when that cannot be told (static logs, nginx's /proc not readable), until it has not grown for this long.",
    }),
    catch_up_max_bytes: int({
      default: 64 * 1024 * 1024,
      min: 0,
      max: Number.MAX_SAFE_INTEGER,
      description:
        'At start, each log is read on from the position saved in agent.state_dir, but at most this many bytes (the newest): older lines written while the agent was down are skipped with a warning.',
    }),
    removed_instance_keep: duration({
      default: '5m',
      min: '0s',
      max: '24h',
      description:
        'When an nginx instance goes away (stopped, restarting), its logs are still followed with their counters for this long, so a restart reads on where it was; then their series are dropped.',
    }),
    logs: list(
      object({
        path: string({ description: 'Absolute path of the log file.' }),
        type: oneOf(['access', 'error'] as const, { default: 'access', description: 'access or error.' }),
        format: string({ default: 'combined', description: 'For access logs: a log_format string, or combined.' }),
        escape: oneOf(['default', 'json', 'none'] as const, {
          default: 'default',
          description: 'The escape= of the log_format.',
        }),
      }),
      {
        default: [],
        description:
          'Logs to follow without discovery (nginx in another container, no /proc access): [{path, type, format, escape}].',
      },
    ),
  },
  {
    description:
      'Access and error log metrics: responses by status range and method, bytes, request and upstream time histograms, error log levels.',
  },
);

/** Validated `nginx_logs` section. */
export type NginxLogsConfig = Infer<typeof schema>;

/** Instance id used for the `logs` of the config (no nginx.instance.id resource attribute). */
export const STATIC_INSTANCE = 'static';

interface Desired {
  type: 'access' | 'error';
  path: string;
  /** Distinct formats written to this file, in config order (access logs only). */
  formats: { format: string; escape: LogEscape }[];
}

interface Job {
  instanceId: string;
  path: string;
  type: 'access' | 'error';
  formatKey: string;
  tailer: LogTailer;
  access?: AccessLogFold;
  error?: ErrorLogFold;
  published: number;
  /** When the last `metrics` batch of this log was published (ms). */
  publishedAt: number;
  /** Lines and window generation of the last `nginx.access.top` (published when either moved). */
  topPublished: { lines: number; generation: number };
  startTime: number;
  /** The tailer error last logged (logged once until it changes). */
  loggedError?: string;
  /** The poll running now; another is run after it when `again` is set meanwhile. */
  polling?: Promise<void>;
  again: boolean;
  /** When its nginx instance went away (the job is kept for `removed_instance_keep`). */
  goneSince?: number;
}

/**
 * A busy log publishes its metrics (and top URIs) at most this often: each batch goes to every
 * subscriber, Wasm plugins included (serialised to their worker), and a busy log is read four times a
 * second. At ~2,000 req/s (wrk, two agents side by side on one nginx, 3 x 30 s) this took the agent
 * with the shipped Wasm plugins from 3.36/2.92/2.82 % of a core to 1.76/1.33/1.26 %.
 */
const PUBLISH_GAP_MS = 1000;
/** How often positions are saved to the state directory (and at close). */
const SAVE_INTERVAL_MS = 5000;
/** How long close waits for a poll in progress (a read on a hung file system) before closing anyway. */
const CLOSE_WAIT_MS = 2000;

interface Untailable {
  instanceId: string;
  type: 'access' | 'error';
  path: string;
  reason: string;
}

/** The plugin: one tailer and one fold per log file, each polled on its own (timer and inotify). */
export class NginxLogs implements Plugin<NginxLogsConfig> {
  readonly name = 'nginx-logs';
  #ctx!: PluginContext<NginxLogsConfig>;
  #config!: NginxLogsConfig;
  #jobs = new Map<string, Job>();
  #untailable = new Map<string, Untailable[]>();
  #formatErrors = new Map<string, string>();
  /** Master PID of each running nginx instance, to tell whether it still holds a rotated file. */
  #masters = new Map<string, number>();
  #positions!: PositionStore;
  #scheduler: LogScheduler | undefined;
  #closed = false;

  subscriptions(): readonly string[] {
    return ['nginx.config.changed', 'nginx.instance.*'];
  }

  init(ctx: PluginContext<NginxLogsConfig>): void {
    this.#ctx = ctx;
    this.#config = ctx.config;
    this.#positions = new PositionStore({ stateDir: ctx.agent.stateDir, warn: (m) => ctx.logger.warn(m) });
    this.#scheduler = new LogScheduler({
      jobs: ctx.scheduler,
      pollIntervalMs: this.#config.poll_interval,
      saveIntervalMs: SAVE_INTERVAL_MS,
      onTick: () => void this.tick(),
      onSave: () => void this.savePositions(),
      onFileEvent: (path) => {
        for (const j of this.#jobs.values()) if (j.path === path) void this.#pollJob(j);
      },
      onWatchError: (path, message) =>
        ctx.logger.info(`cannot watch ${path} (${message}): it is read every poll_interval only`),
    });
    this.#syncStatic();
    this.#scheduler.start();
    ctx.signal.addEventListener('abort', () => this.#scheduler?.stop(), { once: true });
  }

  process(msg: Message): void {
    switch (msg.topic) {
      case 'nginx.config.changed':
        this.#onConfig(msg.data);
        break;
      case 'nginx.instance.added':
      case 'nginx.instance.reloaded':
      case 'nginx.instance.health':
        this.#masters.set(msg.data.instance.id, msg.data.instance.pid);
        break;
      case 'nginx.instance.removed':
        this.#masters.delete(msg.data.instance.id);
        this.#instanceGone(msg.data.instance.id);
        break;
    }
  }

  reconfigure(config: NginxLogsConfig): void {
    const boundsChanged = JSON.stringify(config.histogram_bounds) !== JSON.stringify(this.#config.histogram_bounds);
    this.#config = config;
    if (boundsChanged)
      for (const j of this.#jobs.values()) if (j.access) j.access = this.#accessFold(j, this.#compile(j));
    this.#syncStatic();
    this.#scheduler?.restart(config.poll_interval);
  }

  /**
   * One poll of every log, then one batch per log that changed (also the timer's tick). Each log is
   * polled on its own: one that hangs (a read on a stuck file system) holds up no other.
   */
  async tick(): Promise<void> {
    const now = Date.now();
    for (const [k, j] of this.#jobs)
      if (j.goneSince !== undefined && now - j.goneSince >= this.#config.removed_instance_keep) this.#stop(k, j);
    this.#scheduler?.watchPaths([...this.#jobs.values()].map((j) => j.path));
    await Promise.all([...this.#jobs.values()].map((j) => this.#pollJob(j)));
  }

  /** Polls one log now, or once more right after the poll in progress. */
  #pollJob(j: Job): Promise<void> {
    if (j.polling) {
      j.again = true;
      return j.polling;
    }
    j.polling = (async () => {
      do {
        j.again = false;
        const bytesBefore = j.tailer.stats.bytesRead;
        await j.tailer.poll();
        if (this.#closed || this.#jobs.get(key(j.instanceId, j.path)) !== j) return;
        const found = j.tailer.stats.bytesRead > bytesBefore;
        this.#scheduler?.polled(j.path, found);
        this.#afterPoll(j, found);
      } while (j.again);
    })().finally(() => (j.polling = undefined));
    return j.polling;
  }

  /**
   * Logs the read error if it changed, and publishes the log's metrics and top URIs when lines came
   * in: at once for a quiet log, at most once per PUBLISH_GAP_MS while the log is busy (polls keep
   * finding bytes, four a second); the first poll that finds nothing publishes what is left.
   */
  #afterPoll(j: Job, found: boolean): void {
    const err = j.tailer.stats.lastError;
    if (err !== j.loggedError) {
      if (err) this.#ctx.logger.warn({ path: j.path }, `cannot read ${j.type} log ${j.path}: ${readHint(err)}`);
      else if (j.loggedError) this.#ctx.logger.info({ path: j.path }, `reading ${j.type} log ${j.path} again`);
      j.loggedError = err;
    }
    const lines = j.access?.lines ?? j.error?.lines ?? 0;
    const now = Date.now();
    if (found && j.published >= 0 && now - j.publishedAt < PUBLISH_GAP_MS) return;
    if (j.published < 0 || lines !== j.published) this.#publish(j);
    if (j.access) this.#publishTop(j, j.access);
  }

  /** `nginx.access.top` when lines came in or the window moved on (nothing when the format has no URI). */
  #publishTop(j: Job, fold: AccessLogFold): void {
    const top = fold.topUris;
    if (!top || !fold.logsUri) return;
    top.rotate(Date.now());
    const last = j.topPublished;
    if (last.lines === fold.lines && last.generation === top.generation) return;
    j.topPublished = { lines: fold.lines, generation: top.generation };
    const escape = fold.escape;
    this.#ctx.bus.publish('nginx.access.top', {
      instanceId: j.instanceId,
      logPath: j.path,
      windowSeconds: top.windowMs / 1000,
      requests: top.requests,
      uris: top
        .top(TOP_URIS_PUBLISHED, (raw) => unescapeValue(raw, escape))
        .map((u) => ({ uri: u.uri, requests: u.requests, errors5xx: u.errors5xx })),
    });
  }

  /** Records where each log is and writes the positions file if anything moved. */
  async savePositions(): Promise<void> {
    for (const j of this.#jobs.values()) {
      const position = await j.tailer.position();
      if (position) this.#positions.set(j.path, position);
    }
    await this.#positions.save();
  }

  /** The instance stopped (or is restarting): keep following its logs for `removed_instance_keep`. */
  #instanceGone(instanceId: string): void {
    this.#untailable.delete(instanceId);
    const now = Date.now();
    for (const j of this.#jobs.values()) if (j.instanceId === instanceId) j.goneSince ??= now;
    if (this.#config.removed_instance_keep === 0) void this.tick();
  }

  #onConfig(c: NginxConfigChanged): void {
    const a = c.analysis;
    const untailable: Untailable[] = [];
    const byPath = new Map<string, Desired>();
    const add = (log: AccessLogInfo | ErrorLogInfo, type: 'access' | 'error') => {
      if (!log.tailable) {
        untailable.push({ instanceId: c.instanceId, type, path: log.path, reason: log.reason ?? 'not a file' });
        return;
      }
      const k = `${type}\0${log.path}`;
      let d = byPath.get(k);
      if (!d) byPath.set(k, (d = { type, path: log.path, formats: [] }));
      if (type === 'access') {
        const al = log as AccessLogInfo;
        const format = al.format || al.formatName || 'combined';
        if (!d.formats.some((f) => f.format === format)) d.formats.push({ format, escape: 'default' });
      }
    };
    for (const l of a.accessLogs ?? []) add(l, 'access');
    for (const l of a.errorLogs ?? []) add(l, 'error');
    this.#untailable.set(c.instanceId, untailable);
    this.#sync(c.instanceId, [...byPath.values()]);
  }

  #syncStatic(): void {
    const desired: Desired[] = this.#config.logs.map((l) => ({
      type: l.type,
      path: l.path,
      formats: l.type === 'access' ? [{ format: l.format, escape: l.escape }] : [],
    }));
    this.#sync(STATIC_INSTANCE, desired);
  }

  /** Makes the instance's jobs match `desired`: stops the gone, starts the new, swaps changed formats. */
  #sync(instanceId: string, desired: Desired[]): void {
    if (desired.length === 0) this.#untailable.delete(instanceId);
    const want = new Map(desired.map((d) => [key(instanceId, d.path), d]));
    for (const [k, j] of this.#jobs) {
      if (j.instanceId !== instanceId) continue;
      const d = want.get(k);
      if (!d || d.type !== j.type) this.#stop(k, j);
    }
    for (const [k, d] of want) {
      const formatKey = JSON.stringify(d.formats);
      const existing = this.#jobs.get(k);
      if (existing) {
        existing.goneSince = undefined;
        if (existing.formatKey !== formatKey && existing.access) {
          existing.formatKey = formatKey;
          const compiled = this.#compileDesired(k, d);
          if (compiled) existing.access.setFormats(compiled);
        }
        continue;
      }
      this.#start(k, instanceId, d, formatKey);
    }
  }

  #start(k: string, instanceId: string, d: Desired, formatKey: string): void {
    const job: Job = {
      instanceId,
      path: d.path,
      type: d.type,
      formatKey,
      published: -1,
      publishedAt: 0,
      topPublished: { lines: -1, generation: -1 },
      startTime: Date.now(),
      again: false,
      tailer: new LogTailer({
        path: d.path,
        startAt: this.#config.start_at,
        drainQuietMs: this.#config.rotation_drain,
        resume: this.#positions.get(d.path),
        catchUpMaxBytes: this.#config.catch_up_max_bytes,
        isHeld:
          instanceId === STATIC_INSTANCE
            ? undefined
            : async (dev, ino) => {
                const master = this.#masters.get(instanceId);
                return master ? nginxHolds(master, dev, ino) : undefined;
              },
        onWarning: (message) => this.#ctx.logger.warn({ path: d.path }, message),
        onText: (text) => (job.access ?? job.error)?.consume(text),
      }),
    };
    if (d.type === 'access') {
      const compiled = this.#compileDesired(k, d);
      if (!compiled) return;
      job.access = this.#accessFold(job, compiled);
    } else {
      job.error = new ErrorLogFold(
        (l) =>
          this.#ctx.bus.publish('nginx.log.error', {
            instanceId,
            file: d.path,
            level: l.level,
            message: l.message,
            time: l.time,
          }),
        { startTime: job.startTime },
      );
    }
    this.#jobs.set(k, job);
    this.#ctx.logger.info({ instanceId, path: d.path, type: d.type }, `following ${d.type} log ${d.path}`);
    // Look at the log now, not at the next tick: with start_at end, the lines nginx writes between
    // "following" and that tick (up to poll_interval) would otherwise be skipped as history.
    this.#scheduler?.watchPaths([...this.#jobs.values()].map((j) => j.path));
    void this.#pollJob(job);
  }

  #compile(j: Job): CompiledLogFormat[] {
    const formats = JSON.parse(j.formatKey) as Desired['formats'];
    return formats.map((f) => compileLogFormat(f.format, { escape: f.escape }));
  }

  #compileDesired(k: string, d: Desired): CompiledLogFormat[] | undefined {
    try {
      const out = d.formats.map((f) => compileLogFormat(f.format, { escape: f.escape }));
      this.#formatErrors.delete(k);
      return out;
    } catch (err) {
      const msg = `${d.path}: log_format cannot be used: ${(err as Error).message}`;
      if (!this.#formatErrors.has(k)) this.#ctx.logger.error(msg);
      this.#formatErrors.set(k, msg);
      return undefined;
    }
  }

  #accessFold(j: Job, formats: CompiledLogFormat[]): AccessLogFold {
    j.startTime = Date.now();
    j.published = -1;
    j.topPublished = { lines: -1, generation: -1 };
    return new AccessLogFold(formats, {
      bounds: [...this.#config.histogram_bounds].sort((a, b) => a - b),
      startTime: j.startTime,
      topUris: { capacity: TOP_URIS_CAPACITY, windowMs: TOP_URIS_WINDOW_MS },
    });
  }

  #stop(k: string, j: Job): void {
    this.#jobs.delete(k);
    void (async () => {
      const position = await j.tailer.position();
      if (position) this.#positions.set(j.path, position);
      await j.tailer.close();
    })();
    this.#ctx.bus.publish('metrics', { source: source(j), time: Date.now(), metrics: [], final: true });
    if (j.access?.topUris && j.access.logsUri)
      this.#ctx.bus.publish('nginx.access.top', {
        instanceId: j.instanceId,
        logPath: j.path,
        windowSeconds: TOP_URIS_WINDOW_MS / 1000,
        requests: 0,
        uris: [],
      });
    this.#ctx.logger.info({ instanceId: j.instanceId, path: j.path }, `no longer following ${j.path}`);
  }

  #publish(j: Job): void {
    const fold = j.access ?? j.error;
    if (!fold) return;
    j.published = fold.lines;
    j.publishedAt = Date.now();
    const st = j.tailer.stats;
    const metrics: Metric[] = [
      ...fold.metrics(),
      counter(
        {
          name: 'nginx.log.rotations',
          unit: '{rotation}',
          description: 'Rotations seen by the tailer, by kind: rename (create + reopen) or truncate (copytruncate).',
        },
        [
          { attributes: { kind: 'rename' }, value: st.rotations, startTime: j.startTime },
          { attributes: { kind: 'truncate' }, value: st.truncations, startTime: j.startTime },
        ],
      ),
    ];
    const resource: Record<string, string> = { 'log.file.path': j.path };
    if (j.instanceId !== STATIC_INSTANCE) resource['nginx.instance.id'] = j.instanceId;
    this.#ctx.bus.publish('metrics', { source: source(j), time: Date.now(), resource, metrics });
  }

  status(): PluginStatus {
    const logs = [...this.#jobs.values()].map((j) => {
      const f = j.access ?? j.error;
      const st = j.tailer.stats;
      return {
        instance_id: j.instanceId,
        type: j.type,
        path: j.path,
        tailable: true,
        open: st.open,
        offset: st.offset,
        lines: f?.lines ?? 0,
        malformed: f?.malformed ?? 0,
        rotations: st.rotations,
        truncations: st.truncations,
        draining: st.draining,
        ...(st.lastError ? { error: readHint(st.lastError) } : {}),
      };
    });
    const notTailable = [...this.#untailable.values()]
      .flat()
      .map((u) => ({ instance_id: u.instanceId, type: u.type, path: u.path, tailable: false, reason: u.reason }));
    const errors = [...logs.filter((l) => l.error).map((l) => `${l.path}: ${l.error}`), ...this.#formatErrors.values()];
    const details = { logs: [...logs, ...notTailable] };
    return errors.length ? { state: 'degraded', reason: errors.join('; '), details } : { state: 'running', details };
  }

  async close(): Promise<void> {
    const scheduler = this.#scheduler;
    scheduler?.stop();
    const jobs = [...this.#jobs.values()];
    // Let polls in progress finish (their lines are counted), but never wait on a stuck one for long.
    const bounded = <T>(work: Promise<T>) => (scheduler ? scheduler.within(work, CLOSE_WAIT_MS) : work);
    await bounded(Promise.all(jobs.map((j) => j.polling?.catch(() => {}))));
    this.#closed = true;
    await bounded(this.savePositions().catch(() => {}));
    await bounded(Promise.all(jobs.map((j) => j.tailer.close())));
    this.#jobs.clear();
  }
}

/** The error, with what to do about the usual one. */
function readHint(err: string): string {
  return err.includes('EACCES')
    ? `${err} (give the agent's user read access, e.g. membership of the group that owns the nginx logs, adm on Debian)`
    : err;
}

function key(instanceId: string, path: string): string {
  return `${instanceId}\0${path}`;
}

function source(j: Job): string {
  return `nginx-logs:${j.instanceId}:${j.path}`;
}

export const plugin = defineBuiltin({
  name: 'nginx-logs',
  description:
    'Access and error log metrics for every nginx instance: responses, bytes, request/upstream time histograms, error levels.',
  schema,
  create: () => new NginxLogs(),
});
