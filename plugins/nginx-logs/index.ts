/**
 * `nginx-logs`: follows every access and error log of every nginx instance (learned from
 * `nginx.config.changed`), plus static logs from the config, and turns lines into metrics.
 * See README.md for the configuration and the metrics.
 */
import { bool, duration, list, number, object, oneOf, string, type Infer } from '../../core/config/schema.js';
import { counter, type Metric } from '../../core/metrics/model.js';
import type { AccessLogInfo, ErrorLogInfo, NginxConfigChanged } from '../../core/nginx/types.js';
import { defineBuiltin } from '../../core/plugin/builtin.js';
import type { Plugin, PluginContext, PluginStatus } from '../../core/plugin/types.js';
import type { Message } from '../../core/topics.js';
import { AccessLogFold } from './access-fold.js';
import { ErrorLogFold } from './error-fold.js';
import { DEFAULT_LATENCY_BOUNDS } from './histogram.js';
import { compileLogFormat, type CompiledLogFormat, type LogEscape } from './log-format.js';
import { LogTailer } from './tailer.js';

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
        'After a rename rotation, the old file is kept open and read until it has not grown for this long (nginx writes to it until it reopens).',
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
  startTime: number;
  /** The tailer error last logged (logged once until it changes). */
  loggedError?: string;
}

interface Untailable {
  instanceId: string;
  type: 'access' | 'error';
  path: string;
  reason: string;
}

/** The plugin: one tailer and one fold per log file, polled on one timer. */
export class NginxLogs implements Plugin<NginxLogsConfig> {
  readonly name = 'nginx-logs';
  #ctx!: PluginContext<NginxLogsConfig>;
  #config!: NginxLogsConfig;
  #jobs = new Map<string, Job>();
  #untailable = new Map<string, Untailable[]>();
  #formatErrors = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;
  #busy: Promise<void> | undefined;
  #closed = false;

  subscriptions(): readonly string[] {
    return ['nginx.config.changed', 'nginx.instance.removed'];
  }

  init(ctx: PluginContext<NginxLogsConfig>): void {
    this.#ctx = ctx;
    this.#config = ctx.config;
    this.#syncStatic();
    this.#startTimer();
    ctx.signal.addEventListener('abort', () => this.#stopTimer(), { once: true });
  }

  process(msg: Message): void {
    if (msg.topic === 'nginx.config.changed') this.#onConfig(msg.data);
    else if (msg.topic === 'nginx.instance.removed') this.#sync(msg.data.instance.id, []);
  }

  reconfigure(config: NginxLogsConfig): void {
    const boundsChanged = JSON.stringify(config.histogram_bounds) !== JSON.stringify(this.#config.histogram_bounds);
    this.#config = config;
    if (boundsChanged)
      for (const j of this.#jobs.values()) if (j.access) j.access = this.#accessFold(j, this.#compile(j));
    this.#syncStatic();
    this.#stopTimer();
    this.#startTimer();
  }

  /** One poll of every log, then one batch per log that changed (also the timer's tick). */
  async tick(): Promise<void> {
    if (this.#busy) return this.#busy;
    this.#busy = (async () => {
      for (const j of [...this.#jobs.values()]) {
        await j.tailer.poll();
        if (this.#closed) return;
        if (this.#jobs.get(key(j.instanceId, j.path)) !== j) continue;
        const err = j.tailer.stats.lastError;
        if (err !== j.loggedError) {
          if (err) this.#ctx.logger.warn({ path: j.path }, `cannot read ${j.type} log ${j.path}: ${readHint(err)}`);
          else if (j.loggedError) this.#ctx.logger.info({ path: j.path }, `reading ${j.type} log ${j.path} again`);
          j.loggedError = err;
        }
        const lines = j.access?.lines ?? j.error?.lines ?? 0;
        if (j.published < 0 || lines !== j.published) this.#publish(j);
      }
    })().finally(() => (this.#busy = undefined));
    return this.#busy;
  }

  #startTimer(): void {
    if (this.#closed) return;
    this.#timer = setInterval(() => void this.tick(), this.#config.poll_interval);
    this.#timer.unref();
    void this.tick();
  }

  #stopTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
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
      startTime: Date.now(),
      tailer: new LogTailer({
        path: d.path,
        startAt: this.#config.start_at,
        drainQuietMs: this.#config.rotation_drain,
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
    return new AccessLogFold(formats, {
      bounds: [...this.#config.histogram_bounds].sort((a, b) => a - b),
      startTime: j.startTime,
    });
  }

  #stop(k: string, j: Job): void {
    this.#jobs.delete(k);
    void j.tailer.close();
    this.#ctx.bus.publish('metrics', { source: source(j), time: Date.now(), metrics: [], final: true });
    this.#ctx.logger.info({ instanceId: j.instanceId, path: j.path }, `no longer following ${j.path}`);
  }

  #publish(j: Job): void {
    const fold = j.access ?? j.error;
    if (!fold) return;
    j.published = fold.lines;
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
    this.#closed = true;
    this.#stopTimer();
    await this.#busy?.catch(() => {});
    for (const j of this.#jobs.values()) await j.tailer.close();
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
