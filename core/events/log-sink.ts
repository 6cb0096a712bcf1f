/**
 * The log sink: each event once, at the level its severity maps to, with its key. Repeats of the
 * same key and state within `events.log_repeat_interval` are not logged one by one: when the
 * interval ends, one line says how many there were (and shows the last of them).
 */
import type { Logger } from 'pino';
import type { SinkReport } from './log.js';
import { SinkQueue } from './queue.js';
import type { AgentEvent, Severity } from './types.js';

/** pino level per severity; `critical` is logged at `error` with `severity: "critical"` (pino's fatal means the process dies). */
export const LOG_LEVEL: Record<Severity, 'info' | 'warn' | 'error'> = {
  info: 'info',
  warning: 'warn',
  error: 'error',
  critical: 'error',
};

export interface LogSinkOptions {
  logger: Logger;
  repeatIntervalMs: number;
  capacity: number;
  now?: () => number;
}

interface Fold {
  /** When the line that opened this window was written. */
  since: number;
  repeats: number;
  last: AgentEvent;
}

/** Keys remembered for folding at most; beyond it the oldest window is closed early. */
const MAX_FOLDS = 10_000;

export class LogSink {
  readonly queue: SinkQueue;
  readonly #log: Logger;
  readonly #interval: number;
  readonly #now: () => number;
  readonly #folds = new Map<string, Fold>();
  readonly #timer: NodeJS.Timeout | undefined;
  #lines = 0;
  #folded = 0;

  constructor(opts: LogSinkOptions) {
    this.#log = opts.logger;
    this.#interval = opts.repeatIntervalMs;
    this.#now = opts.now ?? Date.now;
    this.queue = new SinkQueue({ capacity: opts.capacity, handle: (batch) => this.#handle(batch) });
    if (this.#interval > 0) {
      this.#timer = setInterval(() => this.#closeWindows(false), Math.min(this.#interval, 10_000));
      this.#timer.unref();
    }
  }

  report(): SinkReport {
    return this.queue.report('ok', undefined, { lines: this.#lines, folded: this.#folded });
  }

  /** Writes the pending repeat counts; called at shutdown. */
  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#closeWindows(true);
    this.queue.close();
  }

  #handle(batch: AgentEvent[]): void {
    const now = this.#now();
    for (const event of batch) {
      if (this.#interval <= 0) {
        this.#write(event);
        continue;
      }
      const foldKey = `${event.key}\u0000${event.state ?? ''}\u0000${event.severity}`;
      const fold = this.#folds.get(foldKey);
      if (fold && now - fold.since < this.#interval) {
        fold.repeats++;
        fold.last = event;
        this.#folded++;
        continue;
      }
      if (fold) this.#writeRepeats(fold);
      this.#folds.delete(foldKey);
      this.#write(event);
      this.#folds.set(foldKey, { since: now, repeats: 0, last: event });
      if (this.#folds.size > MAX_FOLDS) {
        const [oldestKey, oldest] = this.#folds.entries().next().value as [string, Fold];
        this.#writeRepeats(oldest);
        this.#folds.delete(oldestKey);
      }
    }
  }

  #closeWindows(all: boolean): void {
    const now = this.#now();
    for (const [key, fold] of this.#folds) {
      if (!all && now - fold.since < this.#interval) continue;
      this.#writeRepeats(fold);
      this.#folds.delete(key);
    }
  }

  #write(event: AgentEvent): void {
    this.#lines++;
    this.#log[LOG_LEVEL[event.severity]](
      fields(event),
      `${event.kind}${event.state ? ` ${event.state}` : ''}: ${event.summary}`,
    );
  }

  #writeRepeats(fold: Fold): void {
    if (fold.repeats === 0) return;
    this.#lines++;
    const event = fold.last;
    const minutes = Math.round(this.#interval / 60_000);
    const span = minutes >= 1 ? `${minutes} min` : `${Math.round(this.#interval / 1000)} s`;
    this.#log[LOG_LEVEL[event.severity]](
      { ...fields(event), repeats: fold.repeats },
      `${event.kind}${event.state ? ` ${event.state}` : ''}: ${event.summary} (repeated ${fold.repeats} more time${fold.repeats === 1 ? '' : 's'} within ${span}; this is the last)`,
    );
  }
}

function fields(event: AgentEvent): Record<string, unknown> {
  return {
    event_id: event.id,
    severity: event.severity,
    source: event.source,
    kind: event.kind,
    key: event.key,
    ...(event.state ? { state: event.state } : {}),
    attributes: event.attributes,
  };
}
