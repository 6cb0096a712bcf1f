/**
 * NGINX Plus HTTP API (ngx_http_api_module): reads the endpoints that describe traffic and turns them
 * into metrics named as the NGINX Agent v3 `nginxplus` receiver names them (zone, upstream and peer
 * attributes `nginx.zone.name`, `nginx.upstream.name`, `nginx.peer.address`...), with times in seconds
 * and bytes in `By`. Reading (`readPlusApi`) and converting (`plusMetrics`, pure) are separate.
 */
import { httpGet } from '../../core/http-get.js';
import { counter, gauge, type Attributes, type Metric, type NumberPoint } from '../../core/metrics/model.js';
import type { CounterTracker } from './counters.js';
import { D } from './stub-status.js';

type Num = number | undefined;
export interface PlusResponses {
  '1xx'?: number;
  '2xx'?: number;
  '3xx'?: number;
  '4xx'?: number;
  '5xx'?: number;
  total?: number;
}
export interface PlusZone {
  processing?: number;
  requests?: number;
  responses?: PlusResponses;
  discarded?: number;
  received?: number;
  sent?: number;
}
export interface PlusPeer {
  id?: number;
  server: string;
  name?: string;
  backup?: boolean;
  state?: string;
  active?: number;
  requests?: number;
  header_time?: number;
  response_time?: number;
  responses?: PlusResponses;
  sent?: number;
  received?: number;
  fails?: number;
  unavail?: number;
  health_checks?: { checks?: number; fails?: number; unhealthy?: number };
}
export interface PlusUpstream {
  peers?: PlusPeer[];
  keepalive?: number;
  zombies?: number;
  zone?: string;
  queue?: { size?: number; max_size?: number; overflows?: number };
}
export interface PlusCacheOutcome {
  responses?: number;
  bytes?: number;
}
export interface PlusCache {
  size?: number;
  max_size?: number;
  cold?: boolean;
  [outcome: string]: PlusCacheOutcome | number | boolean | undefined;
}
export interface PlusSsl {
  handshakes?: number;
  handshakes_failed?: number;
  session_reuses?: number;
  verify_failures?: Record<string, number>;
}

/** What one read of the API returned; an endpoint that failed or is absent is undefined. */
export interface PlusData {
  connections?: { accepted?: number; dropped?: number; active?: number; idle?: number };
  requests?: { total?: number; current?: number };
  serverZones?: Record<string, PlusZone>;
  locationZones?: Record<string, PlusZone>;
  upstreams?: Record<string, PlusUpstream>;
  caches?: Record<string, PlusCache>;
  ssl?: PlusSsl;
}

const ENDPOINTS: [keyof PlusData, string][] = [
  ['connections', 'connections'],
  ['requests', 'http/requests'],
  ['serverZones', 'http/server_zones'],
  ['locationZones', 'http/location_zones'],
  ['upstreams', 'http/upstreams'],
  ['caches', 'http/caches'],
  ['ssl', 'ssl'],
];

async function getJson(url: string, timeoutMs: number): Promise<unknown> {
  const res = await httpGet(url, { timeoutMs, headers: { accept: 'application/json' } });
  const text = res.body;
  if (res.status !== 200) throw new Error(`GET ${url}: HTTP ${res.status}`);
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(
      `GET ${url}: not JSON (starts ${JSON.stringify(text.slice(0, 60))}); is it an \`api\` location of NGINX Plus?`,
    );
  }
}

/**
 * Reads the API at `base` (e.g. `http://127.0.0.1:8080/api`): the newest version it offers, then every
 * endpoint in parallel. Throws only when the API itself does not answer; a failing endpoint (a module
 * not configured) is listed in `errors` and left out of the data.
 */
export async function readPlusApi(
  base: string,
  timeoutMs: number,
  version?: number,
): Promise<{ data: PlusData; version: number; errors: string[] }> {
  const root = base.replace(/\/+$/, '');
  let v = version;
  if (v === undefined) {
    const versions = await getJson(`${root}/`, timeoutMs);
    if (!Array.isArray(versions) || !versions.every((x) => typeof x === 'number') || versions.length === 0)
      throw new Error(
        `GET ${root}/: expected the list of API versions (e.g. [1,2,...,9]), got ${JSON.stringify(versions).slice(0, 80)}`,
      );
    v = Math.max(...(versions as number[]));
  }
  const errors: string[] = [];
  const data: PlusData = {};
  await Promise.all(
    ENDPOINTS.map(async ([k, path]) => {
      try {
        (data as Record<string, unknown>)[k] = await getJson(`${root}/${v}/${path}`, timeoutMs);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }),
  );
  if (errors.length === ENDPOINTS.length) throw new Error(errors[0]);
  return { data, version: v, errors };
}

const RANGES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
/** Peer states as the API spells them. */
export const PEER_STATES = ['up', 'draining', 'down', 'unavail', 'checking', 'unhealthy'] as const;
const CACHE_OUTCOMES = ['hit', 'stale', 'updating', 'revalidated', 'miss', 'expired', 'bypass'] as const;

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Builds metrics from one read; counters go through `counters` (reset handling, interval deltas). */
export function plusMetrics(d: PlusData, counters: CounterTracker, now: number): Metric[] {
  const series = new Map<
    string,
    { d: { name: string; unit: string; description: string }; type: 'counter' | 'gauge'; points: NumberPoint[] }
  >();
  const add = (
    type: 'counter' | 'gauge',
    desc: { name: string; unit: string; description: string },
    attributes: Attributes,
    value: Num,
  ) => {
    if (!isNum(value)) return;
    let s = series.get(desc.name);
    if (!s) series.set(desc.name, (s = { d: desc, type, points: [] }));
    s.points.push(type === 'counter' ? counters.read(desc.name, attributes, value, now).point : { attributes, value });
  };
  const c = (desc: { name: string; unit: string; description: string }, a: Attributes, v: Num) =>
    add('counter', desc, a, v);
  const g = (desc: { name: string; unit: string; description: string }, a: Attributes, v: Num) =>
    add('gauge', desc, a, v);
  const ms = (v: Num) => (isNum(v) ? v / 1000 : undefined);

  if (d.connections) {
    c(D.connections, { outcome: 'accepted' }, d.connections.accepted);
    c(D.connections, { outcome: 'dropped' }, d.connections.dropped);
    g(D.connectionCount, { outcome: 'active' }, d.connections.active);
    g(D.connectionCount, { outcome: 'idle' }, d.connections.idle);
  }
  if (d.requests && isNum(d.requests.total)) {
    const r = counters.read(D.requests.name, {}, d.requests.total, now);
    series.set(D.requests.name, { d: D.requests, type: 'counter', points: [r.point] });
    if (r.delta !== undefined) g(D.requestCount, {}, r.delta);
  }

  const zones = (type: 'server' | 'location', list: Record<string, PlusZone> | undefined) => {
    for (const [name, z] of Object.entries(list ?? {})) {
      const a = { 'nginx.zone.name': name, 'nginx.zone.type': type };
      c(M.zoneRequests, a, z.requests);
      g(M.zoneProcessing, a, z.processing);
      c(M.zoneDiscarded, a, z.discarded);
      c(M.zoneIo, { ...a, 'nginx.byte.io.direction': 'rx' }, z.received);
      c(M.zoneIo, { ...a, 'nginx.byte.io.direction': 'tx' }, z.sent);
      for (const r of RANGES) c(M.zoneStatus, { ...a, status_range: r }, z.responses?.[r]);
    }
  };
  zones('server', d.serverZones);
  zones('location', d.locationZones);

  for (const [upstream, u] of Object.entries(d.upstreams ?? {})) {
    const ua = { 'nginx.upstream.name': upstream, 'nginx.zone.name': u.zone ?? upstream };
    g(M.keepalive, ua, u.keepalive);
    g(M.zombies, ua, u.zombies);
    g(M.queueUsage, ua, u.queue?.size);
    g(M.queueLimit, ua, u.queue?.max_size);
    c(M.queueOverflows, ua, u.queue?.overflows);
    const byState = new Map<string, number>(PEER_STATES.map((s) => [s, 0]));
    for (const p of u.peers ?? []) {
      const state = p.state ?? 'up';
      byState.set(state, (byState.get(state) ?? 0) + 1);
      const pa = { ...ua, 'nginx.peer.address': p.server, 'nginx.peer.name': p.name ?? p.server };
      for (const s of PEER_STATES) g(M.peerState, { ...pa, 'nginx.peer.state': s }, s === state ? 1 : 0);
      g(M.peerConnections, pa, p.active);
      c(M.peerRequests, pa, p.requests);
      for (const r of RANGES) c(M.peerResponses, { ...pa, status_range: r }, p.responses?.[r]);
      g(M.peerHeaderTime, pa, ms(p.header_time));
      g(M.peerResponseTime, pa, ms(p.response_time));
      c(M.peerIo, { ...pa, 'nginx.byte.io.direction': 'rx' }, p.received);
      c(M.peerIo, { ...pa, 'nginx.byte.io.direction': 'tx' }, p.sent);
      c(M.peerFails, pa, p.fails);
      c(M.peerUnavail, pa, p.unavail);
      c(M.peerHealthChecks, { ...pa, 'nginx.health_check': 'fail' }, p.health_checks?.fails);
      c(M.peerHealthChecks, { ...pa, 'nginx.health_check': 'unhealthy' }, p.health_checks?.unhealthy);
    }
    for (const [s, n] of byState) g(M.peerCount, { ...ua, 'nginx.peer.state': s }, n);
  }

  for (const [name, cache] of Object.entries(d.caches ?? {})) {
    const a = { 'nginx.cache.name': name };
    g(M.cacheUsage, a, cache.size);
    g(M.cacheLimit, a, cache.max_size);
    for (const o of CACHE_OUTCOMES) {
      const x = cache[o];
      if (!x || typeof x !== 'object') continue;
      c(M.cacheResponses, { ...a, 'nginx.cache.outcome': o }, x.responses);
      c(M.cacheBytes, { ...a, 'nginx.cache.outcome': o }, x.bytes);
    }
  }

  if (d.ssl) {
    c(M.sslHandshakes, { 'nginx.ssl.status': 'success' }, d.ssl.handshakes);
    c(M.sslHandshakes, { 'nginx.ssl.status': 'failed' }, d.ssl.handshakes_failed);
    c(M.sslHandshakes, { 'nginx.ssl.status': 'reuse' }, d.ssl.session_reuses);
    for (const [reason, n] of Object.entries(d.ssl.verify_failures ?? {}))
      c(M.sslVerify, { 'nginx.ssl.verify_failure.reason': reason }, n);
  }

  const out: Metric[] = [];
  for (const s of series.values()) out.push(s.type === 'counter' ? counter(s.d, s.points) : gauge(s.d, s.points));
  out.push(gauge(D.up, [{ attributes: {}, value: 1 }]));
  return out;
}

/** Descriptors of the Plus-only metrics (README table is written from these). */
export const M = {
  zoneRequests: {
    name: 'nginx.http.zone.requests',
    unit: '{request}',
    description: 'Client requests in a status zone (server or location).',
  },
  zoneProcessing: {
    name: 'nginx.http.request.processing.count',
    unit: '{request}',
    description: 'Client requests being processed now, per zone.',
  },
  zoneDiscarded: {
    name: 'nginx.http.request.discarded',
    unit: '{request}',
    description: 'Requests completed without sending a response, per zone.',
  },
  zoneIo: {
    name: 'nginx.http.request.byte.io',
    unit: 'By',
    description: 'Bytes received from (rx) and sent to (tx) clients, per zone.',
  },
  zoneStatus: {
    name: 'nginx.http.response.status',
    unit: '{response}',
    description: 'Responses per zone by status_range (1xx..5xx).',
  },
  keepalive: {
    name: 'nginx.http.upstream.keepalive.count',
    unit: '{connection}',
    description: 'Idle keepalive connections of an upstream.',
  },
  zombies: {
    name: 'nginx.http.upstream.zombie.count',
    unit: '{peer}',
    description: 'Peers removed from an upstream but still serving requests.',
  },
  queueUsage: {
    name: 'nginx.http.upstream.queue.usage',
    unit: '{request}',
    description: 'Requests in the upstream queue now.',
  },
  queueLimit: {
    name: 'nginx.http.upstream.queue.limit',
    unit: '{request}',
    description: 'Requests the upstream queue can hold.',
  },
  queueOverflows: {
    name: 'nginx.http.upstream.queue.overflows',
    unit: '{request}',
    description: 'Requests rejected because the upstream queue was full.',
  },
  peerCount: {
    name: 'nginx.http.upstream.peer.count',
    unit: '{peer}',
    description: 'Peers of an upstream by nginx.peer.state.',
  },
  peerState: {
    name: 'nginx.http.upstream.peer.state',
    unit: '{state}',
    description: 'State of a peer: 1 for its current nginx.peer.state, 0 for the others.',
  },
  peerConnections: {
    name: 'nginx.http.upstream.peer.connection.count',
    unit: '{connection}',
    description: 'Active connections to a peer.',
  },
  peerRequests: {
    name: 'nginx.http.upstream.peer.requests',
    unit: '{request}',
    description: 'Client requests forwarded to a peer.',
  },
  peerResponses: {
    name: 'nginx.http.upstream.peer.responses',
    unit: '{response}',
    description: 'Responses from a peer by status_range.',
  },
  peerHeaderTime: {
    name: 'nginx.http.upstream.peer.header.time',
    unit: 's',
    description: 'Average time to get the response header from a peer.',
  },
  peerResponseTime: {
    name: 'nginx.http.upstream.peer.response.time',
    unit: 's',
    description: 'Average time to get the full response from a peer.',
  },
  peerIo: {
    name: 'nginx.http.upstream.peer.byte.io',
    unit: 'By',
    description: 'Bytes received from (rx) and sent to (tx) a peer.',
  },
  peerFails: {
    name: 'nginx.http.upstream.peer.fails',
    unit: '{attempt}',
    description: 'Unsuccessful attempts to communicate with a peer.',
  },
  peerUnavail: {
    name: 'nginx.http.upstream.peer.unavailables',
    unit: '{event}',
    description: 'Times a peer became unavailable (max_fails reached).',
  },
  peerHealthChecks: {
    name: 'nginx.http.upstream.peer.health_checks',
    unit: '{check}',
    description: 'Failed health checks (fail) and transitions to unhealthy (unhealthy) of a peer.',
  },
  cacheUsage: { name: 'nginx.cache.memory.usage', unit: 'By', description: 'Current size of a cache.' },
  cacheLimit: { name: 'nginx.cache.memory.limit', unit: 'By', description: 'max_size of a cache.' },
  cacheResponses: {
    name: 'nginx.cache.responses',
    unit: '{response}',
    description: 'Responses read from a cache or the proxied server, by nginx.cache.outcome.',
  },
  cacheBytes: {
    name: 'nginx.cache.bytes',
    unit: 'By',
    description: 'Bytes read from a cache or the proxied server, by nginx.cache.outcome.',
  },
  sslHandshakes: {
    name: 'nginx.ssl.handshakes',
    unit: '{handshake}',
    description: 'SSL handshakes by nginx.ssl.status: success, failed, reuse (session reuses, a part of success).',
  },
  sslVerify: {
    name: 'nginx.ssl.certificate.verify_failures',
    unit: '{certificate}',
    description: 'Client certificate verification failures by reason.',
  },
} as const;
