/**
 * The event pipeline: subscribes to every event topic on the bus with its own queue, converts each
 * message into events (convert.ts), records them in the event log (ring, firing conditions) and
 * hands them to the sinks, each through its own bounded queue so none can hold up the bus.
 */
import type { Logger } from 'pino';
import type { ApiRouter } from '../api/types.js';
import type { Bus, Subscription } from '../bus/bus.js';
import type { CoreConfig } from '../config/load.js';
import { counter, gauge, type Metric } from '../metrics/model.js';
import type { Message } from '../topics.js';
import { EventConverter, EVENT_TOPICS } from './convert.js';
import { filterFromQuery } from './filter.js';
import { EventLog, type SinkReport } from './log.js';
import { LogSink } from './log-sink.js';
import { EventStream } from './stream.js';
import { AlertmanagerSink } from './alertmanager.js';

export type EventsConfig = CoreConfig['events'];

export interface EventPipelineOptions {
  bus: Bus;
  config: EventsConfig;
  logger: Logger;
  /** Host name: the `instance` label of alerts. */
  hostname: string;
  /** Who publishes on an open topic (`wasm:<name>`), when known. */
  sourceOf?: (topic: string) => string | undefined;
  /** Bus queue of the pipeline's own subscription. */
  busQueueSize?: number;
  /** Clock of the log sink's repeat folding (tests). */
  now?: () => number;
}

export class EventPipeline {
  readonly log: EventLog;
  readonly #converter: EventConverter;
  readonly #logSink: LogSink;
  readonly #stream: EventStream;
  readonly #alertmanager: AlertmanagerSink | undefined;
  readonly #unsubscribe: (() => void)[] = [];
  readonly #subscription: Subscription;
  readonly #logger: Logger;
  readonly #config: EventsConfig;
  readonly #startTime = Date.now();
  #convertErrors = 0;

  constructor(opts: EventPipelineOptions) {
    this.#config = opts.config;
    this.#logger = opts.logger.child({ component: 'events' });
    this.log = new EventLog({ capacity: opts.config.buffer_size, logger: this.#logger });
    this.#converter = new EventConverter({ sourceOf: opts.sourceOf, isFiring: (key) => this.log.isFiring(key) });
    this.#logSink = new LogSink({
      logger: this.#logger,
      repeatIntervalMs: opts.config.log_repeat_interval,
      capacity: opts.config.queue_size,
      now: opts.now,
    });
    this.#unsubscribe.push(this.log.subscribe(this.#logSink.queue.push));
    this.#unsubscribe.push(this.log.registerSink('log', () => this.#logSink.report()));
    this.#stream = new EventStream({ log: this.log, queueSize: opts.config.stream_queue_size });
    this.#unsubscribe.push(this.log.registerSink('stream', () => this.#stream.report()));
    if (opts.config.alertmanager.url !== '') {
      const am = new AlertmanagerSink({
        url: opts.config.alertmanager.url,
        minSeverity: opts.config.alertmanager.min_severity,
        resendIntervalMs: opts.config.alertmanager.resend_interval,
        timeoutMs: opts.config.alertmanager.timeout,
        capacity: opts.config.queue_size,
        hostname: opts.hostname,
        logger: this.#logger,
      });
      this.#alertmanager = am;
      this.#unsubscribe.push(this.log.subscribe(am.queue.push));
      this.#unsubscribe.push(this.log.registerSink('alertmanager', () => am.report()));
    }
    this.#subscription = opts.bus.subscribe('events', EVENT_TOPICS, (msg) => this.#onMessage(msg), {
      queueSize: Math.max(opts.busQueueSize ?? 0, opts.config.queue_size),
    });
  }

  /** Adds `GET /v1/events`, `GET /v1/events/stream` and `GET /v1/alerts`. */
  routes(api: ApiRouter): void {
    api.route('GET', '/v1/events', (req) => {
      const filter = filterFromQuery(req.query, this.log.capacity);
      const events = this.log.recent({ ...filter, limit: filter.limit ?? 100 });
      return { status: 200, body: { last_id: this.log.lastId, events } };
    });
    api.route('GET', '/v1/events/stream', (req) => this.#stream.handle(req));
    api.route('GET', '/v1/alerts', () => ({ status: 200, body: { alerts: this.log.firing() } }));
  }

  /** For `/health`: each sink's state. */
  health(): Record<string, SinkReport> {
    return this.log.sinks();
  }

  metrics(): Metric[] {
    const sinks = Object.entries(this.log.sinks());
    const startTime = this.#startTime;
    return [
      counter({ name: 'agent.events', unit: '{event}', description: 'Events recorded by the event pipeline.' }, [
        { attributes: {}, value: this.log.lastId, startTime },
      ]),
      counter(
        {
          name: 'agent.events.dropped',
          unit: '{event}',
          description: 'Events a sink dropped because its queue was full (see events.queue_size), by sink.',
        },
        sinks.map(([sink, r]) => ({ attributes: { sink }, value: r.dropped, startTime })),
      ),
      gauge(
        { name: 'agent.events.queue.depth', unit: '{event}', description: 'Events waiting in a sink queue, by sink.' },
        sinks.map(([sink, r]) => ({ attributes: { sink }, value: r.queued })),
      ),
      gauge(
        { name: 'agent.events.firing', unit: '{condition}', description: 'Conditions firing now (GET /v1/alerts).' },
        [{ attributes: {}, value: this.log.firing().length }],
      ),
    ];
  }

  /** Flushes the sinks (within the deadline) and stops. */
  async close(timeoutMs: number): Promise<void> {
    await Promise.all([this.#logSink.queue.flush(timeoutMs), this.#alertmanager?.close(timeoutMs)]);
    this.#subscription.unsubscribe();
    this.#stream.close();
    for (const u of this.#unsubscribe) u();
    this.#logSink.close();
  }

  #onMessage(msg: Message): void {
    let inputs: ReturnType<EventConverter['convert']>;
    try {
      inputs = this.#converter.convert(msg);
    } catch (err) {
      this.#convertErrors++;
      if (this.#convertErrors <= 10 || this.#convertErrors % 1000 === 0)
        this.#logger.warn(
          { err, topic: msg.topic, errors: this.#convertErrors },
          `a message on ${msg.topic} could not be turned into an event (malformed payload); it is skipped`,
        );
      return;
    }
    for (const input of inputs) this.log.record(input);
  }
}
