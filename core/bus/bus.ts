/**
 * The message bus: typed topics, one bounded FIFO queue per subscriber, delivery off the publisher's stack.
 *
 * - `publish` never blocks and never runs a handler: it appends the message to the queue of every
 *   matching subscriber and schedules delivery (setImmediate), so a slow subscriber delays only itself.
 * - Order is kept per subscriber. A handler that returns a promise is awaited before the next message.
 * - Full queue: the subscriber's overflow policy decides. `drop_oldest` (default) drops the oldest
 *   queued message to make room, so a lagging consumer sees the freshest state; `drop_newest` refuses
 *   the new message. Either way the drop is counted per subscriber (`agent.bus.dropped`), never silent.
 * - A handler that throws (or rejects) is logged with the subscriber name and topic, counted
 *   (`agent.bus.errors`), and keeps receiving.
 */
import type { Logger } from 'pino';
import type { Envelope, Message, Topic, TopicMap } from '../topics.js';
import { compilePattern, type TopicMatcher } from './pattern.js';
import { Ring } from './ring.js';

export type OverflowPolicy = 'drop_oldest' | 'drop_newest';
export type Handler = (msg: Message) => void | Promise<void>;

export interface SubscribeOptions {
  queueSize?: number;
  overflow?: OverflowPolicy;
  /** Queue messages but deliver none until `resume()` (the plugin host subscribes before init). */
  paused?: boolean;
}

export interface BusOptions {
  /** Default per-subscriber queue capacity. */
  queueSize?: number;
  overflow?: OverflowPolicy;
  logger?: Logger;
  /** Messages a subscriber handles before yielding to the event loop. */
  sliceSize?: number;
}

export interface SubscriberStats {
  name: string;
  patterns: readonly string[];
  delivered: number;
  dropped: number;
  errors: number;
  queueDepth: number;
  queueSize: number;
  /** Total time spent in the handler, seconds. */
  handleSeconds: number;
}

export interface BusStats {
  published: number;
  /** Published messages no subscriber matched. */
  unrouted: number;
  subscribers: SubscriberStats[];
}

export interface Subscription {
  readonly name: string;
  /** Stops delivery; messages still queued are discarded and counted as dropped. */
  unsubscribe(): void;
  /** Starts delivery of a subscription made with `paused: true`. */
  resume(): void;
}

class Subscriber {
  readonly queue: Ring<Envelope>;
  readonly matchers: TopicMatcher[];
  delivered = 0;
  dropped = 0;
  errors = 0;
  handleSeconds = 0;
  scheduled = false;
  /** A handler's promise is pending. */
  busy = false;
  paused = false;
  closed = false;

  constructor(
    readonly name: string,
    readonly patterns: readonly string[],
    readonly handler: Handler,
    queueSize: number,
    readonly overflow: OverflowPolicy,
  ) {
    this.queue = new Ring(queueSize);
    this.matchers = patterns.map(compilePattern);
  }

  matches(topic: string): boolean {
    for (const m of this.matchers) if (m(topic)) return true;
    return false;
  }
}

const ROUTE_CACHE_LIMIT = 10_000;

export class Bus {
  readonly #subs: Subscriber[] = [];
  readonly #routes = new Map<string, Subscriber[]>();
  readonly #pending: Subscriber[] = [];
  readonly #queueSize: number;
  readonly #overflow: OverflowPolicy;
  readonly #slice: number;
  readonly #logger: Logger | undefined;
  #tick: NodeJS.Immediate | undefined;
  #published = 0;
  #unrouted = 0;
  #idleWaiters: (() => void)[] = [];

  constructor(opts: BusOptions = {}) {
    this.#queueSize = opts.queueSize ?? 10_000;
    this.#overflow = opts.overflow ?? 'drop_oldest';
    this.#slice = opts.sliceSize ?? 1024;
    this.#logger = opts.logger;
  }

  publish<K extends Topic>(topic: K, data: TopicMap[K]): void {
    this.#published++;
    let subs = this.#routes.get(topic);
    if (subs === undefined) subs = this.#route(topic);
    if (subs.length === 0) {
      this.#unrouted++;
      return;
    }
    const env: Envelope<K> = { topic, time: Date.now(), data };
    for (let i = 0; i < subs.length; i++) {
      const s = subs[i];
      if (!s.queue.push(env)) {
        s.dropped++;
        if (s.overflow === 'drop_oldest') {
          s.queue.shift();
          s.queue.push(env);
        }
      }
      if (!s.scheduled && !s.busy && !s.paused) this.#schedule(s);
    }
  }

  subscribe(name: string, patterns: readonly string[], handler: Handler, opts: SubscribeOptions = {}): Subscription {
    if (this.#subs.some((s) => s.name === name && !s.closed))
      throw new Error(`bus: a subscriber named "${name}" already exists`);
    const sub = new Subscriber(
      name,
      [...patterns],
      handler,
      opts.queueSize ?? this.#queueSize,
      opts.overflow ?? this.#overflow,
    );
    sub.paused = opts.paused === true;
    this.#subs.push(sub);
    this.#routes.clear();
    return {
      name,
      unsubscribe: () => {
        if (sub.closed) return;
        sub.closed = true;
        while (sub.queue.shift() !== undefined) sub.dropped++;
        this.#subs.splice(this.#subs.indexOf(sub), 1);
        this.#routes.clear();
        this.#notifyIdle();
      },
      resume: () => {
        if (sub.closed || !sub.paused) return;
        sub.paused = false;
        if (sub.queue.size > 0 && !sub.busy && !sub.scheduled) this.#schedule(sub);
      },
    };
  }

  stats(): BusStats {
    return {
      published: this.#published,
      unrouted: this.#unrouted,
      subscribers: this.#subs.map((s) => ({
        name: s.name,
        patterns: s.patterns,
        delivered: s.delivered,
        dropped: s.dropped,
        errors: s.errors,
        queueDepth: s.queue.size,
        queueSize: s.queue.capacity,
        handleSeconds: s.handleSeconds,
      })),
    };
  }

  /** Resolves true when every queue is empty and no handler runs, false when `timeoutMs` passes first. */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.#idle()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#idleWaiters = this.#idleWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.#idleWaiters.push(done);
    });
  }

  #idle(): boolean {
    return this.#subs.every((s) => s.queue.size === 0 && !s.busy);
  }

  #notifyIdle(): void {
    if (this.#idleWaiters.length && this.#idle()) {
      const ws = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of ws) w();
    }
  }

  #route(topic: string): Subscriber[] {
    const subs = this.#subs.filter((s) => s.matches(topic));
    if (this.#routes.size >= ROUTE_CACHE_LIMIT) this.#routes.clear();
    this.#routes.set(topic, subs);
    return subs;
  }

  #schedule(s: Subscriber): void {
    s.scheduled = true;
    this.#pending.push(s);
    if (this.#tick === undefined) this.#tick = setImmediate(this.#run);
  }

  readonly #run = (): void => {
    this.#tick = undefined;
    const batch = this.#pending.splice(0, this.#pending.length);
    for (const s of batch) {
      s.scheduled = false;
      if (!s.closed) this.#deliver(s);
    }
    this.#notifyIdle();
  };

  #deliver(s: Subscriber): void {
    const start = performance.now();
    let n = 0;
    while (n < this.#slice) {
      const env = s.queue.shift();
      if (env === undefined) break;
      n++;
      s.delivered++;
      let r: void | Promise<void>;
      try {
        r = s.handler(env as Message);
      } catch (err) {
        this.#failed(s, env.topic, err);
        continue;
      }
      if (r !== undefined && typeof (r as Promise<void>).then === 'function') {
        s.busy = true;
        const t0 = start;
        (r as Promise<void>).then(
          () => this.#resume(s, t0),
          (err: unknown) => {
            this.#failed(s, env.topic, err);
            this.#resume(s, t0);
          },
        );
        return;
      }
    }
    s.handleSeconds += (performance.now() - start) / 1000;
    if (s.queue.size > 0 && !s.closed && !s.paused) this.#schedule(s);
  }

  #resume(s: Subscriber, start: number): void {
    s.handleSeconds += (performance.now() - start) / 1000;
    s.busy = false;
    if (s.queue.size > 0 && !s.closed && !s.paused) this.#schedule(s);
    else this.#notifyIdle();
  }

  #failed(s: Subscriber, topic: string, err: unknown): void {
    s.errors++;
    // The first ten failures of a subscriber are logged, then every thousandth: a flood stays
    // visible in agent.bus.errors without a log line per message.
    if (s.errors <= 10 || s.errors % 1000 === 0) {
      this.#logger?.error(
        { subscriber: s.name, topic, err, errors: s.errors },
        `subscriber "${s.name}" failed on topic "${topic}"; it keeps receiving`,
      );
    }
  }
}
