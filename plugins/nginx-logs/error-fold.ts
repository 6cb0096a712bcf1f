/**
 * nginx error log lines: `YYYY/MM/DD HH:MM:SS [level] PID#TID: *CID message`.
 * Counts lines per level and known upstream failures; hands emerg/alert/crit lines to a callback.
 */
import { counter, type Metric } from '../../core/metrics/model.js';
import { lineMetrics } from './access-fold.js';

export const ERROR_LEVELS = ['emerg', 'alert', 'crit', 'error', 'warn', 'notice', 'info', 'debug'] as const;
export type ErrorLevel = (typeof ERROR_LEVELS)[number];

/** Upstream failures counted on their own, with the text nginx writes for each. */
export const UPSTREAM_FAILURES: readonly { reason: string; match: (msg: string) => boolean }[] = [
  { reason: 'timed_out', match: (m) => m.includes('upstream timed out') },
  { reason: 'connect_refused', match: (m) => m.includes('Connection refused) while connecting to upstream') },
  { reason: 'no_live_upstreams', match: (m) => m.includes('no live upstreams') },
];

/** One parsed error log line. */
export interface ErrorLogLine {
  /** Unix ms, from the line's local time. */
  time: number;
  level: ErrorLevel;
  pid: number;
  /** The text after `PID#TID: ` (with `*CID ` when nginx wrote a connection number). */
  message: string;
}

/** Parses one error log line; null when it is not in nginx's error log shape. */
export function parseErrorLine(line: string): ErrorLogLine | null {
  // 2026/11/24 07:46:00 [error] 1234#1234: message
  if (line.length < 24 || line.charCodeAt(4) !== 47 || line.charCodeAt(19) !== 32 || line.charCodeAt(20) !== 91)
    return null;
  const close = line.indexOf('] ', 21);
  if (close < 0) return null;
  const level = line.slice(21, close);
  if (!(ERROR_LEVELS as readonly string[]).includes(level)) return null;
  const hash = line.indexOf('#', close + 2);
  const colon = line.indexOf(': ', close + 2);
  if (hash < 0 || colon < 0 || hash > colon) return null;
  const pid = Number(line.slice(close + 2, hash));
  const t = /^(\d{4})\/(\d\d)\/(\d\d) (\d\d):(\d\d):(\d\d)$/.exec(line.slice(0, 19));
  if (!t || !Number.isInteger(pid)) return null;
  const time = new Date(+t[1], +t[2] - 1, +t[3], +t[4], +t[5], +t[6]).getTime();
  return { time, level: level as ErrorLevel, pid, message: line.slice(colon + 2) };
}

/** Cumulative error-log metrics of one file. */
export class ErrorLogFold {
  lines = 0;
  malformed = 0;
  readonly byLevel = new Map<ErrorLevel, number>(ERROR_LEVELS.map((l) => [l, 0]));
  readonly upstream = new Map<string, number>(UPSTREAM_FAILURES.map((f) => [f.reason, 0]));
  readonly startTime: number;

  /** `onSevere` gets every emerg, alert and crit line. */
  constructor(
    private readonly onSevere: (line: ErrorLogLine) => void,
    opts: { startTime?: number } = {},
  ) {
    this.startTime = opts.startTime ?? Date.now();
  }

  consume(text: string): void {
    let pos = 0;
    while (pos < text.length) {
      let nl = text.indexOf('\n', pos);
      if (nl < 0) nl = text.length;
      const line = text.slice(pos, nl > pos && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl);
      pos = nl + 1;
      if (line.length) this.line(line);
    }
  }

  line(text: string): void {
    this.lines++;
    const l = parseErrorLine(text);
    if (!l) {
      this.malformed++;
      return;
    }
    this.byLevel.set(l.level, (this.byLevel.get(l.level) ?? 0) + 1);
    for (const f of UPSTREAM_FAILURES)
      if (f.match(l.message)) this.upstream.set(f.reason, (this.upstream.get(f.reason) ?? 0) + 1);
    if (l.level === 'emerg' || l.level === 'alert' || l.level === 'crit') this.onSevere(l);
  }

  metrics(): Metric[] {
    const start = this.startTime;
    return [
      counter(
        {
          name: 'nginx.error_log.entries',
          unit: '{entry}',
          description: 'Error log lines by level (emerg, alert, crit, error, warn, notice, info, debug).',
        },
        [...this.byLevel].map(([level, value]) => ({ attributes: { level }, value, startTime: start })),
      ),
      counter(
        {
          name: 'nginx.upstream.errors',
          unit: '{error}',
          description: 'Upstream failures in the error log, by reason: timed_out, connect_refused, no_live_upstreams.',
        },
        [...this.upstream].map(([reason, value]) => ({ attributes: { reason }, value, startTime: start })),
      ),
      ...lineMetrics(this.lines, this.malformed, start),
    ];
  }
}
