/**
 * Folds access-log lines into cumulative metrics. Per line it scans field boundaries with the
 * compiled format and reads only what the metrics need (status, method, bytes, times) straight
 * from the character codes: no substring, no object, no number parsing through strings.
 */
import { counter, histogram, type Metric, type NumberPoint } from '../../core/metrics/model.js';
import type { CompiledLogFormat } from './log-format.js';
import { Histogram } from './histogram.js';
import { uriRange, WindowedTopUris } from './top-uris.js';

/** Methods kept as their own `http.request.method` value; anything else is `_OTHER` (OTel convention). */
export const KNOWN_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;
const OTHER: number = KNOWN_METHODS.length;
const METHOD_NAMES: readonly string[] = [...KNOWN_METHODS, '_OTHER'];
const RANGES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/** Where the fields a metric needs sit in one format (-1: the format does not log it). */
interface FieldPlan {
  readonly format: CompiledLogFormat;
  readonly bounds: Int32Array;
  readonly status: number;
  /** `$request_method` when logged, else the first word of `$request`. */
  readonly method: number;
  readonly request: number;
  /** `$body_bytes_sent`, else `$bytes_sent`. */
  readonly bytes: number;
  readonly requestTime: number;
  readonly upConnect: number;
  readonly upHeader: number;
  readonly upResponse: number;
  /** Where the request path is: `$request_uri`, else `$uri`, else `$request` (then `uriInRequest`). */
  readonly uri: number;
  readonly uriInRequest: boolean;
}

function uriField(format: CompiledLogFormat): { uri: number; uriInRequest: boolean } {
  for (const name of ['request_uri', 'uri'])
    if (format.indexOf(name) >= 0) return { uri: format.indexOf(name), uriInRequest: false };
  return { uri: format.indexOf('request'), uriInRequest: true };
}

function plan(format: CompiledLogFormat): FieldPlan {
  const body = format.indexOf('body_bytes_sent');
  return {
    format,
    bounds: new Int32Array(Math.max(2, format.fields.length * 2)),
    status: format.indexOf('status'),
    method: format.indexOf('request_method'),
    request: format.indexOf('request'),
    bytes: body >= 0 ? body : format.indexOf('bytes_sent'),
    requestTime: format.indexOf('request_time'),
    upConnect: format.indexOf('upstream_connect_time'),
    upHeader: format.indexOf('upstream_header_time'),
    upResponse: format.indexOf('upstream_response_time'),
    ...uriField(format),
  };
}

/** Settings of an access-log fold. */
export interface AccessFoldOptions {
  /** Histogram bounds in seconds for request and upstream times. */
  bounds: readonly number[];
  /** Unix ms the cumulative series start at. */
  startTime?: number;
  /** Count the most requested URIs over a recent window (bounded: `capacity` URIs per half-window). */
  topUris?: { capacity: number; windowMs: number };
}

/** Cumulative access-log metrics of one file; `consume` chunks of lines, `metrics()` to publish. */
export class AccessLogFold {
  #plans: FieldPlan[];
  #last = 0;
  /** Scratch for the URI's range in the line and its hash. */
  readonly #uri = new Int32Array(3);
  readonly startTime: number;
  /** Lines seen (matched or not). */
  lines = 0;
  malformed = 0;
  /** `responses[method * 5 + range]`. */
  readonly responses = new Float64Array((OTHER + 1) * 5);
  bytes = 0;
  readonly requestTime: Histogram;
  readonly upstreamConnect: Histogram;
  readonly upstreamHeader: Histogram;
  readonly upstreamResponse: Histogram;
  /** The most requested paths (no query string) lately, when asked for and some format logs the request. */
  readonly topUris: WindowedTopUris | undefined;

  constructor(formats: readonly CompiledLogFormat[], opts: AccessFoldOptions) {
    this.#plans = formats.map(plan);
    this.startTime = opts.startTime ?? Date.now();
    this.requestTime = new Histogram(opts.bounds);
    this.upstreamConnect = new Histogram(opts.bounds);
    this.upstreamHeader = new Histogram(opts.bounds);
    this.upstreamResponse = new Histogram(opts.bounds);
    this.topUris = opts.topUris ? new WindowedTopUris({ ...opts.topUris, now: this.startTime }) : undefined;
  }

  /** Whether some format of this log has the request path (`$request`, `$request_uri` or `$uri`). */
  get logsUri(): boolean {
    return this.#plans.some((p) => p.uri >= 0);
  }

  /** How the formats escaped values (the first one's), to unescape URIs for display. */
  get escape(): CompiledLogFormat['escape'] {
    return this.#plans[0]?.format.escape ?? 'default';
  }

  /** Replaces the formats (config change); counts are kept. */
  setFormats(formats: readonly CompiledLogFormat[]): void {
    this.#plans = formats.map(plan);
    this.#last = 0;
  }

  /** Folds every line of `text` (lines end with `\n`; a last line without one is taken too). */
  consume(text: string): void {
    const len = text.length;
    let pos = 0;
    while (pos < len) {
      let nl = text.indexOf('\n', pos);
      if (nl < 0) nl = len;
      let end = nl;
      if (end > pos && text.charCodeAt(end - 1) === 13) end--;
      if (end > pos) this.line(text, pos, end);
      pos = nl + 1;
    }
  }

  /** Folds the line `text[start, end)`. */
  line(text: string, start: number, end: number): void {
    this.lines++;
    const plans = this.#plans;
    let p: FieldPlan | undefined = plans[this.#last];
    let range = p === undefined ? BAD : match(p, text, start, end);
    if (range === BAD) {
      for (let i = 0; i < plans.length && range === BAD; i++) {
        if (i === this.#last) continue;
        range = match(plans[i], text, start, end);
        if (range !== BAD) {
          p = plans[i];
          this.#last = i;
        }
      }
      if (range === BAD || p === undefined) {
        this.malformed++;
        return;
      }
    }
    const b = p.bounds;
    let method: number = OTHER;
    if (p.method >= 0) method = methodIndex(text, b[2 * p.method], b[2 * p.method + 1]);
    else if (p.request >= 0) {
      const s = b[2 * p.request];
      const e = b[2 * p.request + 1];
      let sp = text.indexOf(' ', s);
      if (sp < 0 || sp > e) sp = e;
      method = methodIndex(text, s, sp);
    }
    if (range >= 0) this.responses[method * 5 + range]++;
    const top = this.topUris;
    if (p.uri >= 0 && top?.take() && uriRange(text, b[2 * p.uri], b[2 * p.uri + 1], p.uriInRequest, this.#uri))
      top.addRange(text, this.#uri[0], this.#uri[1], this.#uri[2], range === 4);
    if (p.bytes >= 0) {
      const v = parseNumber(text, b[2 * p.bytes], b[2 * p.bytes + 1]);
      if (v === v) this.bytes += v;
    }
    if (p.requestTime >= 0) {
      const v = parseNumber(text, b[2 * p.requestTime], b[2 * p.requestTime + 1]);
      if (v === v) this.requestTime.observe(v);
    }
    if (p.upConnect >= 0) observeList(this.upstreamConnect, text, b[2 * p.upConnect], b[2 * p.upConnect + 1]);
    if (p.upHeader >= 0) observeList(this.upstreamHeader, text, b[2 * p.upHeader], b[2 * p.upHeader + 1]);
    if (p.upResponse >= 0) observeList(this.upstreamResponse, text, b[2 * p.upResponse], b[2 * p.upResponse + 1]);
  }

  /** Which metrics the formats can feed (a histogram is only published when some format logs its field). */
  #has(key: 'status' | 'bytes' | 'requestTime' | 'upConnect' | 'upHeader' | 'upResponse'): boolean {
    return this.#plans.some((p) => p[key] >= 0);
  }

  metrics(): Metric[] {
    const start = this.startTime;
    const out: Metric[] = [];
    if (this.#has('status')) {
      const points: NumberPoint[] = [];
      for (let m = 0; m <= OTHER; m++)
        for (let r = 0; r < 5; r++) {
          const v = this.responses[m * 5 + r];
          if (v > 0)
            points.push({
              attributes: { status_range: RANGES[r], 'http.request.method': METHOD_NAMES[m] },
              value: v,
              startTime: start,
            });
        }
      out.push(
        counter(
          {
            name: 'nginx.http.responses',
            unit: '{response}',
            description:
              'Responses logged in the access log, by status_range (1xx..5xx) and http.request.method (_OTHER for unknown methods).',
          },
          points,
        ),
      );
    }
    if (this.#has('bytes'))
      out.push(
        counter(
          {
            name: 'nginx.http.response.bytes',
            unit: 'By',
            description: 'Bytes sent to clients: $body_bytes_sent, or $bytes_sent when the format has only that.',
          },
          [{ attributes: {}, value: this.bytes, startTime: start }],
        ),
      );
    const hist = (name: string, what: string, h: Histogram) =>
      histogram({ name, unit: 's', description: what }, [h.point(start)]);
    if (this.#has('requestTime'))
      out.push(hist('nginx.http.request.time', 'Request processing time ($request_time).', this.requestTime));
    if (this.#has('upConnect'))
      out.push(
        hist(
          'nginx.upstream.connect.time',
          'Time to connect to an upstream, one observation per upstream tried ($upstream_connect_time).',
          this.upstreamConnect,
        ),
      );
    if (this.#has('upHeader'))
      out.push(
        hist(
          'nginx.upstream.header.time',
          'Time to the upstream response header, per upstream tried ($upstream_header_time).',
          this.upstreamHeader,
        ),
      );
    if (this.#has('upResponse'))
      out.push(
        hist(
          'nginx.upstream.response.time',
          'Time to the full upstream response, per upstream tried ($upstream_response_time).',
          this.upstreamResponse,
        ),
      );
    out.push(...lineMetrics(this.lines, this.malformed, start));
    return out;
  }
}

/** The line counters every log (access or error) publishes. */
export function lineMetrics(lines: number, malformed: number, start: number): Metric[] {
  return [
    counter({ name: 'nginx.log.lines', unit: '{line}', description: 'Lines read from the log.' }, [
      { attributes: {}, value: lines, startTime: start },
    ]),
    counter(
      {
        name: 'nginx.log.lines.malformed',
        unit: '{line}',
        description: 'Lines that did not match the log format (not counted in any other metric).',
      },
      [{ attributes: {}, value: malformed, startTime: start }],
    ),
  ];
}

/** `match` result for a line the format does not fit. */
const BAD = -2;

/**
 * Scans `text[start, end)` with `p`'s format; returns the status range index (0 = 1xx .. 4 = 5xx),
 * -1 when the format has no `$status`, or BAD when the line does not fit (a status that is not
 * 1xx..5xx does not fit either, so another format of the same file gets its chance).
 */
function match(p: FieldPlan, text: string, start: number, end: number): number {
  if (!p.format.scan(text, p.bounds, start, end)) return BAD;
  if (p.status < 0) return -1;
  const s = p.bounds[2 * p.status];
  if (p.bounds[2 * p.status + 1] - s !== 3) return BAD;
  const d0 = text.charCodeAt(s) - 48;
  const d1 = text.charCodeAt(s + 1) - 48;
  const d2 = text.charCodeAt(s + 2) - 48;
  if (d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return BAD;
  return d0 - 1;
}

function methodIndex(text: string, s: number, e: number): number {
  const len = e - s;
  if (len < 3 || len > 7) return OTHER;
  for (let i = 0; i < OTHER; i++) {
    const m = KNOWN_METHODS[i];
    if (m.length === len && text.startsWith(m, s)) return i;
  }
  return OTHER;
}

/** A decimal number in `text[s, e)` (digits with an optional fraction), NaN for `-`, empty or junk. */
export function parseNumber(text: string, s: number, e: number): number {
  if (e <= s) return NaN;
  let v = 0;
  let i = s;
  for (; i < e; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) break;
    v = v * 10 + d;
  }
  if (i === s) return NaN;
  if (i < e) {
    if (text.charCodeAt(i) !== 46) return NaN;
    let scale = 0.1;
    for (i++; i < e; i++) {
      const d = text.charCodeAt(i) - 48;
      if (d < 0 || d > 9) return NaN;
      v += d * scale;
      scale *= 0.1;
    }
    // Round away binary noise from the digit-by-digit sum (nginx logs milliseconds).
    v = Math.round(v * 1e6) / 1e6;
  }
  return v;
}

/** Observes each number of an nginx time list (`0.001, 0.002 : 0.003`); `-` entries are skipped. */
function observeList(h: Histogram, text: string, s: number, e: number): void {
  let i = s;
  while (i < e) {
    // skip separators
    let c = text.charCodeAt(i);
    while (i < e && (c === 32 || c === 44 || c === 58)) c = text.charCodeAt(++i);
    if (i >= e) return;
    let j = i;
    while (j < e) {
      c = text.charCodeAt(j);
      if (c === 32 || c === 44 || c === 58) break;
      j++;
    }
    const v = parseNumber(text, i, j);
    if (v === v) h.observe(v);
    i = j;
  }
}
