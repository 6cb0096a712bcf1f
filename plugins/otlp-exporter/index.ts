/**
 * `otlp-exporter`: pushes every metric the agent holds to an OTLP/HTTP endpoint (an OpenTelemetry
 * Collector, Grafana Alloy, a vendor's OTLP intake) on an interval, with cumulative temporality.
 * Off by default; see README.md for the configuration and the self-metrics.
 */
import { gzipSync } from 'node:zlib';
import { bool, duration, int, object, oneOf, record, string, type Infer } from '../../core/config/schema.js';
import { counter, gauge, type Metric } from '../../core/metrics/model.js';
import { defineBuiltin } from '../../core/plugin/builtin.js';
import type { Plugin, PluginContext, PluginStatus } from '../../core/plugin/types.js';
import type { ScheduledJob } from '../../core/scheduler.js';
import type { OtlpProtocol } from './convert.js';
import { OtlpSender } from './sender.js';
import { SinkQueue } from '../../core/events/queue.js';
import { type AgentEvent, severityAtLeast } from '../../core/events/types.js';

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export const schema = object(
  {
    enabled: bool({ default: false, description: 'Export metrics over OTLP/HTTP.' }),
    endpoint: string({
      default: 'http://127.0.0.1:4318/v1/metrics',
      pattern: /^https?:\/\/[^\s/]+(\/\S*)?$/,
      patternHelp:
        'an http:// or https:// URL, e.g. http://collector:4318/v1/metrics (the full path: nothing is appended)',
      description: 'Full URL of the OTLP/HTTP metrics endpoint, path included.',
    }),
    protocol: oneOf(['http/protobuf', 'http/json'] as const, {
      default: 'http/protobuf',
      description: 'OTLP encoding: http/protobuf (smaller) or http/json.',
    }),
    headers: record(string(), {
      default: {},
      keyPattern: HEADER_NAME,
      keyHelp: 'an HTTP header name (letters, digits and -)',
      description: 'HTTP headers sent with every request, e.g. Authorization: "Bearer <token>". Values are not logged.',
    }),
    compression: oneOf(['gzip', 'none'] as const, { default: 'gzip', description: 'Request body compression.' }),
    interval: duration({
      default: '15s',
      min: '100ms',
      max: '1h',
      description: 'How often a snapshot of every metric is exported.',
    }),
    timeout: duration({ default: '10s', min: '100ms', max: '5m', description: 'Time limit of one HTTP request.' }),
    max_batch_points: int({
      default: 1000,
      min: 1,
      max: 1_000_000,
      description: 'Data points per request at most; a bigger snapshot is split into several requests.',
    }),
    queue_size: int({
      default: 100,
      min: 1,
      max: 100_000,
      description:
        'Requests kept while the endpoint is unreachable; when full the oldest is dropped and its points counted in agent_otlp_dropped_total{reason="queue_full"}.',
    }),
    retry_initial_interval: duration({
      default: '1s',
      min: '10ms',
      max: '10m',
      description:
        'First wait before retrying 429/502/503/504 or a network error (doubles each time, +-50% jitter); Retry-After wins.',
    }),
    retry_max_interval: duration({
      default: '30s',
      min: '10ms',
      max: '1h',
      description: 'Longest wait between two retries.',
    }),
    events: bool({
      default: true,
      description:
        "Also export the agent's events (lint findings, alerts, nginx errors, ...) as OTLP log records to logs_endpoint.",
    }),
    logs_endpoint: string({
      default: '',
      pattern: /^(https?:\/\/[^\s/]+(\/\S*)?)?$/,
      patternHelp: 'an http:// or https:// URL, e.g. http://collector:4318/v1/logs, or "" for the default',
      description: 'Full URL of the OTLP/HTTP logs endpoint ("" = endpoint with /v1/metrics replaced by /v1/logs).',
    }),
    events_min_severity: oneOf(['info', 'warning', 'error', 'critical'] as const, {
      default: 'info',
      description: 'Least severe event exported as a log record.',
    }),
    retry_max_elapsed: duration({
      default: '5m',
      min: '0s',
      max: '24h',
      description: 'Give up on a request (dropped, counted) after retrying this long.',
    }),
  },
  { description: 'OTLP metrics export over HTTP (protobuf or JSON) with gzip, batching, retry and a bounded queue.' },
);

export type OtlpExporterConfig = Infer<typeof schema>;

/** Cap on the final flush at shutdown, inside the agent's own shutdown deadline. */
const SHUTDOWN_FLUSH_MS = 2000;

export class OtlpExporter implements Plugin<OtlpExporterConfig> {
  readonly name = 'otlp-exporter';
  #ctx!: PluginContext<OtlpExporterConfig>;
  #sender!: OtlpSender;
  /** The OpenTelemetry conversion (~100 ms of CPU to load): imported by init, so only when the exporter is on. */
  #convert!: typeof import('./convert.js');
  #job: ScheduledJob | undefined;
  #collectErrors = 0;
  /** Events as log records: their own sender (same queue bound and retry) and event queue. */
  #logs: { sender: OtlpSender; queue: SinkQueue; endpoint: string; unsubscribe: () => void } | undefined;
  #logErrors = 0;

  subscriptions(): readonly string[] {
    return [];
  }

  async init(ctx: PluginContext<OtlpExporterConfig>): Promise<void> {
    this.#convert = await import('./convert.js');
    this.#ctx = ctx;
    const c = ctx.config;
    this.#sender = new OtlpSender({
      endpoint: c.endpoint,
      headers: c.headers,
      timeoutMs: c.timeout,
      queueSize: c.queue_size,
      retry: { initialMs: c.retry_initial_interval, maxMs: c.retry_max_interval, maxElapsedMs: c.retry_max_elapsed },
      logger: ctx.logger,
    });
    this.#sender.start();
    if (c.events && ctx.events) await this.#startLogs(ctx);
    this.#job = ctx.scheduler.every('otlp-exporter', c.interval, () => this.collect());
    ctx.signal.addEventListener('abort', () => this.#job?.cancel(), { once: true });
    ctx.logger.info(
      { endpoint: c.endpoint, protocol: c.protocol },
      `exporting metrics to ${c.endpoint} (${c.protocol}) every ${c.interval} ms`,
    );
  }

  async #startLogs(ctx: PluginContext<OtlpExporterConfig>): Promise<void> {
    const c = ctx.config;
    const events = ctx.events;
    if (!events) return;
    const { logsEndpointOf, serializeLogs, toLogRecords } = await import('./logs.js');
    const { resourceAttributes } = this.#convert;
    const endpoint = c.logs_endpoint || logsEndpointOf(c.endpoint);
    if (!endpoint) {
      ctx.logger.warn(
        `events are not exported as OTLP logs: endpoint ${c.endpoint} does not end in /v1/metrics, so set otlp_exporter.logs_endpoint`,
      );
      return;
    }
    const sender = new OtlpSender({
      endpoint,
      headers: c.headers,
      timeoutMs: c.timeout,
      queueSize: c.queue_size,
      retry: { initialMs: c.retry_initial_interval, maxMs: c.retry_max_interval, maxElapsedMs: c.retry_max_elapsed },
      logger: ctx.logger,
    });
    sender.start();
    const resource = resourceAttributes(ctx.agent);
    const queue = new SinkQueue({
      capacity: Math.max(1000, c.max_batch_points * 10),
      batchSize: c.max_batch_points,
      handle: (batch: AgentEvent[]) => {
        const wanted = batch.filter((e) => severityAtLeast(e.severity, c.events_min_severity));
        if (wanted.length === 0) return;
        const records = toLogRecords(wanted, { resource, scopeVersion: ctx.agent.version, now: Date.now() });
        const { body, contentType } = serializeLogs(records, c.protocol as OtlpProtocol);
        const gzip = c.compression === 'gzip';
        sender.enqueue({ body: gzip ? gzipSync(body) : body, contentType, gzip, points: wanted.length });
      },
      onError: (err) => {
        if (this.#logErrors++ === 0) ctx.logger.error({ err }, 'cannot build an OTLP logs request from events');
      },
    });
    const unsubscribe = events.subscribe(queue.push);
    const unregister = events.registerSink('otlp', () => {
      const st = sender.stats;
      const droppedRecords = [...st.dropped.values()].reduce((a, b) => a + b, 0);
      return {
        ...queue.report(st.failing ? 'failing' : 'ok', st.failing ? st.lastError : undefined, {
          endpoint,
          exported: st.exportedPoints,
          requests_queued: st.queueDepth,
        }),
        dropped: queue.dropped + droppedRecords,
      };
    });
    this.#logs = {
      sender,
      queue,
      endpoint,
      unsubscribe: () => {
        unsubscribe();
        unregister();
      },
    };
    ctx.logger.info({ endpoint }, `exporting events as OTLP log records to ${endpoint}`);
  }

  /** Takes a snapshot of the store and queues it as export requests (also the timer's tick). */
  collect(): void {
    const c = this.#ctx.config;
    const { resourceAttributes, serialize, toResourceMetrics } = this.#convert;
    try {
      const groups = toResourceMetrics(this.#ctx.store.snapshot(), {
        resource: resourceAttributes(this.#ctx.agent),
        scopeVersion: this.#ctx.agent.version,
        now: Date.now(),
        startTime: this.#ctx.agent.startedAt,
        maxPoints: c.max_batch_points,
      });
      for (const g of groups) {
        const { body, contentType } = serialize(g.request, c.protocol as OtlpProtocol);
        const gzip = c.compression === 'gzip';
        this.#sender.enqueue({ body: gzip ? gzipSync(body) : body, contentType, gzip, points: g.points });
      }
    } catch (err) {
      if (this.#collectErrors++ === 0)
        this.#ctx.logger.error(
          { err },
          'cannot build an OTLP export request; counted in agent_otlp_collect_errors_total',
        );
    }
    this.#ctx.bus.publish('metrics', {
      source: this.name,
      time: Date.now(),
      interval: this.#ctx.config.interval,
      metrics: this.selfMetrics(),
    });
  }

  selfMetrics(): Metric[] {
    const st = this.#sender.stats;
    const start = this.#ctx.agent.startedAt;
    const reasons = ['queue_full', 'rejected', 'retries_exhausted', 'shutdown'] as const;
    return [
      counter(
        { name: 'agent.otlp.exported', unit: '{data_point}', description: 'Data points the OTLP endpoint accepted.' },
        [{ attributes: {}, value: st.exportedPoints, startTime: start }],
      ),
      ...(this.#logs
        ? [
            counter(
              {
                name: 'agent.otlp.logs.exported',
                unit: '{log_record}',
                description:
                  'Events the OTLP logs endpoint accepted as log records (drops: agent.events.dropped{sink="otlp"}).',
              },
              [{ attributes: {}, value: this.#logs.sender.stats.exportedPoints, startTime: start }],
            ),
          ]
        : []),
      counter(
        {
          name: 'agent.otlp.dropped',
          unit: '{data_point}',
          description: 'Data points not exported, by reason: queue_full, rejected, retries_exhausted, shutdown.',
        },
        reasons.map((r) => ({ attributes: { reason: r }, value: st.dropped.get(r) ?? 0, startTime: start })),
      ),
      counter(
        {
          name: 'agent.otlp.requests',
          unit: '{request}',
          description: 'OTLP export attempts by answer: HTTP status, network_error or timeout.',
        },
        [...st.requests].map(([status, n]) => ({ attributes: { status }, value: n, startTime: start })),
      ),
      counter(
        {
          name: 'agent.otlp.sent',
          unit: 'By',
          description: 'Request bytes (after compression) the endpoint accepted.',
        },
        [{ attributes: {}, value: st.sentBytes, startTime: start }],
      ),
      counter(
        {
          name: 'agent.otlp.collect.errors',
          unit: '{error}',
          description: 'Snapshots that could not be turned into an export request.',
        },
        [{ attributes: {}, value: this.#collectErrors, startTime: start }],
      ),
      gauge({ name: 'agent.otlp.queue.depth', unit: '{request}', description: 'Export requests waiting to be sent.' }, [
        { attributes: {}, value: st.queueDepth },
      ]),
    ];
  }

  status(): PluginStatus {
    const st = this.#sender.stats;
    const details = {
      endpoint: this.#ctx.config.endpoint,
      queue_depth: st.queueDepth,
      exported_points: st.exportedPoints,
      dropped_points: [...st.dropped.values()].reduce((a, b) => a + b, 0),
      ...(st.lastSuccess ? { last_success: new Date(st.lastSuccess).toISOString() } : {}),
      ...(st.lastError ? { last_error: st.lastError } : {}),
      ...(this.#logs
        ? {
            logs_endpoint: this.#logs.endpoint,
            exported_log_records: this.#logs.sender.stats.exportedPoints,
            logs_queue_depth: this.#logs.sender.stats.queueDepth,
          }
        : {}),
    };
    return st.failing ? { state: 'degraded', reason: st.lastError, details } : { state: 'running', details };
  }

  async close(): Promise<void> {
    if (this.#job) this.#job.cancel();
    this.#job = undefined;
    if (!this.#sender) return;
    this.collect();
    const deadline = Math.min(SHUTDOWN_FLUSH_MS, this.#ctx.config.timeout);
    const logs = this.#logs;
    if (logs) {
      await logs.queue.flush(deadline / 2);
      logs.unsubscribe();
      logs.queue.close();
    }
    await Promise.all([this.#sender.stop(deadline), logs?.sender.stop(deadline)]);
  }
}

export const plugin = defineBuiltin({
  name: 'otlp-exporter',
  description: 'Exports every metric over OTLP/HTTP (protobuf or JSON, gzip, retry, bounded queue).',
  schema,
  create: () => new OtlpExporter(),
});
