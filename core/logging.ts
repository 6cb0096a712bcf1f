/**
 * pino logger for the agent: JSON lines to stdout (what systemd and Docker collect), human-readable
 * when stdout is a terminal (format `auto`), and optionally also JSON to a file.
 * pino-pretty runs in-process as a stream, not as a transport thread: one thread less for a daemon.
 * It is loaded only when used (a terminal or format `pretty`): a daemon writing JSON does not pay
 * the ~20 ms of CPU its modules cost at start.
 */
import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';
import type pretty from 'pino-pretty';
import type { CoreConfig } from './config/load.js';

const require = createRequire(import.meta.url);

export type LogConfig = CoreConfig['log'];

export function createLogger(cfg: LogConfig, isTTY = process.stdout.isTTY === true): Logger {
  const usePretty = cfg.format === 'pretty' || (cfg.format === 'auto' && isTTY);
  const streams: pino.StreamEntry[] = [
    {
      level: 'trace',
      stream: usePretty
        ? (require('pino-pretty') as typeof pretty)({ destination: 1, sync: true, colorize: isTTY })
        : pino.destination({ fd: 1, sync: true }),
    },
  ];
  if (cfg.file) streams.push({ level: 'trace', stream: pino.destination({ dest: cfg.file, mkdir: true, sync: true }) });
  return pino(
    { level: cfg.level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.multistream(streams),
  );
}

/** A silent logger for tests and tools. */
export function nullLogger(): Logger {
  return pino({ level: 'silent' });
}
