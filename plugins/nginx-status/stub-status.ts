/**
 * stub_status: the page parser (pure) and the metrics built from two consecutive reads.
 */
import { counter, gauge, type Metric } from '../../core/metrics/model.js';
import type { CounterTracker } from './counters.js';

export interface StubStatus {
  active: number;
  accepted: number;
  handled: number;
  requests: number;
  reading: number;
  writing: number;
  waiting: number;
}

/**
 * Parses the ngx_http_stub_status_module page:
 * ```
 * Active connections: 1
 * server accepts handled requests
 *  5 5 5
 * Reading: 0 Writing: 1 Waiting: 0
 * ```
 * Lines may end in spaces (nginx writes them) or CRLF. Throws an error that says what the page
 * looked like when it is not a stub_status page (an HTML page, a 404 body, JSON).
 */
export function parseStubStatus(text: string): StubStatus {
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  const got = () => JSON.stringify(text.trim().slice(0, 80));
  const active = /^Active connections:\s*(\d+)$/.exec(lines[0] ?? '');
  if (!active)
    throw new Error(
      `not a stub_status page: expected "Active connections: N" on line 1, got ${got()} (is the URL a location with stub_status?)`,
    );
  if (!/^server accepts handled requests/.test(lines[1] ?? ''))
    throw new Error(
      `not a stub_status page: expected "server accepts handled requests" on line 2, got ${JSON.stringify(lines[1] ?? '')}`,
    );
  const nums = /^(\d+)\s+(\d+)\s+(\d+)/.exec(lines[2] ?? '');
  if (!nums)
    throw new Error(
      `not a stub_status page: expected three numbers (accepts handled requests) on line 3, got ${JSON.stringify(lines[2] ?? '')}`,
    );
  const rww = /^Reading:\s*(\d+)\s+Writing:\s*(\d+)\s+Waiting:\s*(\d+)$/.exec(lines[3] ?? '');
  if (!rww)
    throw new Error(
      `not a stub_status page: expected "Reading: N Writing: N Waiting: N" on line 4, got ${JSON.stringify(lines[3] ?? '')}`,
    );
  return {
    active: Number(active[1]),
    accepted: Number(nums[1]),
    handled: Number(nums[2]),
    requests: Number(nums[3]),
    reading: Number(rww[1]),
    writing: Number(rww[2]),
    waiting: Number(rww[3]),
  };
}

export const D = {
  connections: {
    name: 'nginx.http.connections',
    unit: '{connection}',
    description: 'Client connections since nginx started, by outcome (accepted, handled; Plus: dropped).',
  },
  connectionCount: {
    name: 'nginx.http.connection.count',
    unit: '{connection}',
    description: 'Client connections now, by outcome (active, reading, writing, waiting; Plus: idle).',
  },
  requests: { name: 'nginx.http.requests', unit: '{request}', description: 'Client requests since nginx started.' },
  requestCount: {
    name: 'nginx.http.request.count',
    unit: '{request}',
    description: 'Client requests in the last collection interval.',
  },
  up: {
    name: 'nginx.up',
    unit: '{status}',
    description: 'Whether the last read of the status endpoint succeeded (1) or not (0).',
  },
} as const;

/** The five stub_status metrics from one read; `request.count` is absent on the first read. */
export function stubStatusMetrics(s: StubStatus, counters: CounterTracker, now: number): Metric[] {
  const acc = counters.read(D.connections.name, { outcome: 'accepted' }, s.accepted, now);
  const han = counters.read(D.connections.name, { outcome: 'handled' }, s.handled, now);
  const req = counters.read(D.requests.name, {}, s.requests, now);
  const out: Metric[] = [
    counter(D.connections, [acc.point, han.point]),
    gauge(D.connectionCount, [
      { attributes: { outcome: 'active' }, value: s.active },
      { attributes: { outcome: 'reading' }, value: s.reading },
      { attributes: { outcome: 'writing' }, value: s.writing },
      { attributes: { outcome: 'waiting' }, value: s.waiting },
    ]),
    counter(D.requests, [req.point]),
    gauge(D.up, [{ attributes: {}, value: 1 }]),
  ];
  if (req.delta !== undefined) out.push(gauge(D.requestCount, [{ attributes: {}, value: req.delta }]));
  return out;
}
