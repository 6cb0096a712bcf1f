/**
 * What SIGTERM and SIGINT do to the daemon: the first starts a graceful stop bounded by
 * `agent.shutdown_timeout`; if the stop has not finished by then, what was still running is logged and
 * the process exits 1 (whatever is stuck: a plugin's close, a drain, a socket). A second signal exits
 * at once. A stop that finished but cut something off exits 1 too; a clean stop exits 0.
 * A signal that arrives while the agent is still starting is acted on once start is over.
 */
import type { Logger } from 'pino';

export interface ShutdownSettings {
  /** The graceful stop; resolves true when nothing was cut off. */
  stop: () => Promise<boolean>;
  /** What the stop still waits for (logged when the deadline passes). */
  stillRunning: () => string[];
  /** `agent.shutdown_timeout` in ms, read when the stop begins (SIGHUP may have changed it). */
  timeoutMs: () => number;
  logger: Logger;
  exit: (code: number) => void;
}

export class Shutdown {
  readonly #settings: ShutdownSettings;
  #signals = 0;
  #ready = false;
  #pending = false;

  constructor(settings: ShutdownSettings) {
    this.#settings = settings;
  }

  /** True once a stop was asked for. */
  get requested(): boolean {
    return this.#signals > 0;
  }

  /** A stop request: a signal name (`SIGTERM`) or a sentence saying why. */
  signal(what: string): void {
    this.#signals++;
    if (this.#signals > 1) {
      this.#settings.logger.warn(`${what} again: exiting at once`);
      this.#settings.exit(1);
      return;
    }
    this.#settings.logger.info(what.startsWith('SIG') ? `${what} received` : what);
    if (this.#ready) this.#begin();
    else this.#pending = true;
  }

  /** The agent has started: a stop asked for meanwhile begins now. Returns true when one did. */
  ready(): boolean {
    this.#ready = true;
    const pending = this.#pending;
    if (pending) this.#begin();
    return pending;
  }

  #begin(): void {
    this.#pending = false;
    const timeout = this.#settings.timeoutMs();
    let finished = false;
    const deadline = setTimeout(() => {
      if (finished) return;
      const still = this.#settings.stillRunning();
      this.#settings.logger.error(
        { still_running: still },
        `shutdown did not finish within agent.shutdown_timeout (${timeout} ms); still running: ${still.join('; ') || 'nothing known'}; exiting with 1`,
      );
      this.#settings.exit(1);
    }, timeout);
    this.#settings.stop().then(
      (clean) => {
        finished = true;
        clearTimeout(deadline);
        this.#settings.exit(clean ? 0 : 1);
      },
      (err: unknown) => {
        finished = true;
        clearTimeout(deadline);
        this.#settings.logger.error({ err }, `error during shutdown: ${(err as Error).message}`);
        this.#settings.exit(1);
      },
    );
  }
}
