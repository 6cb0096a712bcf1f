/**
 * One timer for the agent's periodic jobs (collections, scans, status checks) instead of one
 * `setInterval` each. Every job runs on the multiples of its interval plus one phase per agent (a
 * random offset under a second, so a fleet of agents started together does not scan in step): jobs
 * with the same or a multiple interval share a wake-up, and between two due jobs the process sleeps.
 * The timer is unref'd (it never keeps the process alive). A job still running when it is due again
 * is skipped, not stacked; a job that throws is reported and runs again next time.
 */

export interface ScheduledJob {
  readonly name: string;
  /** Stops the job; it is not run again. */
  cancel(): void;
}

/** What a plugin sees: `ctx.scheduler.every(...)`. */
export interface JobScheduler {
  /**
   * Runs `run` every `intervalMs`, aligned to the interval (first at the next multiple, or at once
   * with `runNow`). A returned promise is awaited before the job can run again.
   */
  every(name: string, intervalMs: number, run: () => unknown, opts?: { runNow?: boolean }): ScheduledJob;
}

export interface SchedulerStats {
  jobs: number;
  /** Times the timer fired. */
  wakeups: number;
  runs: number;
  /** Runs left out because the previous one of the same job had not finished. */
  skipped: number;
  errors: number;
}

export interface SchedulerSettings {
  /** Offset of every job's schedule from the interval multiples; default random in [0, 1000) ms. */
  phaseMs?: number;
  /** Called with the job's name when a run throws or rejects. */
  onError?: (name: string, err: unknown) => void;
  now?: () => number;
}

interface Job {
  name: string;
  intervalMs: number;
  run: () => unknown;
  due: number;
  running: boolean;
  cancelled: boolean;
}

/** Due jobs within this much of each other run in the same wake-up. */
const COALESCE_MS = 25;

export class Scheduler implements JobScheduler {
  readonly #jobs = new Set<Job>();
  readonly #phase: number;
  readonly #now: () => number;
  readonly #onError: (name: string, err: unknown) => void;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #closed = false;
  readonly #stats = { wakeups: 0, runs: 0, skipped: 0, errors: 0 };

  constructor(settings: SchedulerSettings = {}) {
    this.#phase = settings.phaseMs ?? Math.floor(Math.random() * 1000);
    this.#now = settings.now ?? Date.now;
    this.#onError = settings.onError ?? (() => undefined);
  }

  every(name: string, intervalMs: number, run: () => unknown, opts: { runNow?: boolean } = {}): ScheduledJob {
    if (!(intervalMs > 0)) throw new Error(`scheduler: job ${name} needs an interval above 0 ms, got ${intervalMs}`);
    const job: Job = { name, intervalMs, run, due: this.#next(intervalMs), running: false, cancelled: false };
    this.#jobs.add(job);
    if (opts.runNow) this.#start(job);
    this.#arm();
    return {
      name,
      cancel: () => {
        job.cancelled = true;
        this.#jobs.delete(job);
        this.#arm();
      },
    };
  }

  stats(): SchedulerStats {
    return { jobs: this.#jobs.size, ...this.#stats };
  }

  /** Cancels every job. */
  close(): void {
    this.#closed = true;
    for (const job of this.#jobs) job.cancelled = true;
    this.#jobs.clear();
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The first time after now on this interval's grid (multiples of the interval plus the phase). */
  #next(intervalMs: number, after = this.#now()): number {
    const phase = this.#phase % intervalMs;
    return Math.floor((after - phase) / intervalMs) * intervalMs + phase + intervalMs;
  }

  #arm(): void {
    if (this.#closed) return;
    let first = Number.POSITIVE_INFINITY;
    for (const job of this.#jobs) first = Math.min(first, job.due);
    if (first === this.#timerAt && this.#timer) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = first;
    if (first === Number.POSITIVE_INFINITY) return; // nothing to do: nothing wakes the process
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, first - this.#now()));
    this.#timer.unref();
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    this.#stats.wakeups++;
    const now = this.#now();
    for (const job of [...this.#jobs]) {
      if (job.due > now + COALESCE_MS) continue;
      job.due = this.#next(job.intervalMs, Math.max(now, job.due));
      if (job.running) this.#stats.skipped++;
      else this.#start(job);
    }
    this.#arm();
  }

  #start(job: Job): void {
    this.#stats.runs++;
    let result: unknown;
    try {
      result = job.run();
    } catch (err) {
      this.#stats.errors++;
      this.#onError(job.name, err);
      return;
    }
    if (result instanceof Promise) {
      job.running = true;
      result.then(
        () => {
          job.running = false;
        },
        (err: unknown) => {
          job.running = false;
          this.#stats.errors++;
          this.#onError(job.name, err);
        },
      );
    }
  }
}
