/**
 * The process's last line of defence: an exception nobody caught, or a promise rejection nobody
 * handled, is logged and the agent goes on.
 *
 * Why not exit (Node's default)? Every input path already isolates its own failures: a request
 * handler's exception is a 500 (core/api/server.ts), a plugin's `process` throw is counted by the bus,
 * a plugin's init/close failure leaves only that plugin out. What still reaches here is a bug in a
 * callback of one component (a timer, an event emitter), and ending the process for it would reset
 * every counter, lose the log positions and the queued messages of every other component, and under
 * systemd come back 5 s later to meet the same input again. The cost of going on is that the one
 * component whose callback threw may be left half-done; its own health (plugin state, `/health`) shows
 * that, and the log line names the error so it can be fixed. The count is a self-metric
 * (`agent.process.uncaught`) so an alert can see it.
 *
 * Log lines are bounded: the first 10 errors are logged in full, then one line per 1000.
 */
import type { Logger } from 'pino';

export interface ProcessGuard {
  /** Uncaught exceptions and unhandled rejections seen so far. */
  readonly count: { exceptions: number; rejections: number };
  remove(): void;
}

const LOG_IN_FULL = 10;
const LOG_EVERY = 1000;

export function guardProcess(logger: Logger, proc: NodeJS.Process = process): ProcessGuard {
  const count = { exceptions: 0, rejections: 0 };
  const report = (kind: 'exceptions' | 'rejections', err: unknown) => {
    const n = ++count[kind];
    const total = count.exceptions + count.rejections;
    if (total > LOG_IN_FULL && total % LOG_EVERY !== 0) return;
    const what = kind === 'exceptions' ? 'uncaught exception' : 'unhandled promise rejection';
    logger.error(
      { err, uncaught: { ...count } },
      `${what} (a bug; the agent goes on, please report it): ${(err as Error)?.message ?? String(err)}` +
        (total === LOG_IN_FULL ? ` (${n} so far; from now on one line per ${LOG_EVERY})` : ''),
    );
  };
  const onException = (err: Error) => report('exceptions', err);
  const onRejection = (reason: unknown) => report('rejections', reason);
  proc.on('uncaughtException', onException);
  proc.on('unhandledRejection', onRejection);
  return {
    count,
    remove() {
      proc.off('uncaughtException', onException);
      proc.off('unhandledRejection', onRejection);
    },
  };
}
