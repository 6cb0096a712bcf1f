/**
 * A sink's own bounded queue: the event log hands it events synchronously, it keeps at most
 * `capacity` of them (the newest: the oldest queued is dropped and counted), and one drain loop
 * at a time passes them in batches to the sink's handler off the publisher's stack.
 */
import { Ring } from '../bus/ring.js';
import type { SinkReport } from './log.js';
import type { AgentEvent } from './types.js';

/** Longest a synchronous sink runs before yielding to the event loop. */
const SLICE_MS = 5;

export interface SinkQueueOptions {
  capacity: number;
  /** Handles a batch (oldest first). A rejection is the sink's business: it is counted, not retried. */
  handle: (batch: AgentEvent[]) => void | Promise<void>;
  /** Largest batch handed at once. */
  batchSize?: number;
  onError?: (err: unknown) => void;
}

export class SinkQueue {
  readonly #ring: Ring<AgentEvent>;
  readonly #opts: SinkQueueOptions;
  #dropped = 0;
  #running = false;
  #closed = false;
  #idle: (() => void)[] = [];

  constructor(opts: SinkQueueOptions) {
    this.#opts = opts;
    this.#ring = new Ring(Math.max(1, opts.capacity));
  }

  get dropped(): number {
    return this.#dropped;
  }
  get queued(): number {
    return this.#ring.size;
  }
  get capacity(): number {
    return this.#ring.capacity;
  }

  /** Never blocks: a full queue drops its oldest event. */
  readonly push = (event: AgentEvent): void => {
    if (this.#closed) return;
    if (!this.#ring.push(event)) {
      this.#ring.shift();
      this.#dropped++;
      this.#ring.push(event);
    }
    if (!this.#running) {
      this.#running = true;
      setImmediate(() => void this.#drain());
    }
  };

  report(state: SinkReport['state'] = 'ok', reason?: string, details?: Record<string, unknown>): SinkReport {
    return {
      state,
      ...(reason ? { reason } : {}),
      queued: this.queued,
      capacity: this.capacity,
      dropped: this.#dropped,
      ...(details ? { details } : {}),
    };
  }

  /** Resolves when the queue is empty and no batch is being handled (or at the deadline). */
  flush(timeoutMs: number): Promise<boolean> {
    if (!this.#running && this.#ring.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      timer.unref();
      this.#idle.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Drops what is queued (counted) and accepts nothing more. */
  close(): void {
    this.#closed = true;
    while (this.#ring.shift() !== undefined) this.#dropped++;
  }

  async #drain(): Promise<void> {
    const size = this.#opts.batchSize ?? 512;
    let sliceStart = performance.now();
    try {
      while (this.#ring.size > 0) {
        const batch: AgentEvent[] = [];
        let e: AgentEvent | undefined;
        while (batch.length < size && (e = this.#ring.shift()) !== undefined) batch.push(e);
        let asynchronous = false;
        try {
          const pending = this.#opts.handle(batch);
          if (pending) {
            asynchronous = true;
            await pending;
          }
        } catch (err) {
          this.#opts.onError?.(err);
        }
        // A synchronous sink goes on for up to SLICE_MS, then lets the publisher run.
        if (this.#ring.size > 0 && (asynchronous || performance.now() - sliceStart > SLICE_MS)) {
          await new Promise((r) => setImmediate(r));
          sliceStart = performance.now();
        }
      }
    } finally {
      this.#running = false;
      const waiters = this.#idle;
      this.#idle = [];
      for (const w of waiters) w();
    }
  }
}
