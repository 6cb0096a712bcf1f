/**
 * Test receiver: an OTLP/HTTP endpoint on 127.0.0.1 that decodes every request with the official
 * OTLP .proto definitions (as shipped in an OpenTelemetry npm package) through protobufjs, so the
 * exporter's encoding is checked against the spec, not against itself.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);
/** The official opentelemetry-proto files, as packaged by @opentelemetry/otlp-grpc-exporter-base 0.38. */
export const PROTO_ROOT = join(
  dirname(require.resolve('@opentelemetry/otlp-grpc-exporter-base/package.json')),
  'build',
  'protos',
);

let requestType: protobuf.Type | undefined;
/** `opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest` from the .proto files. */
export function exportRequestType(): protobuf.Type {
  if (!requestType) {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => join(PROTO_ROOT, target);
    root.loadSync('opentelemetry/proto/collector/metrics/v1/metrics_service.proto');
    requestType = root.lookupType('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest');
  }
  return requestType;
}

let logsRequestType: protobuf.Type | undefined;
/** `opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest` from the .proto files. */
export function exportLogsRequestType(): protobuf.Type {
  if (!logsRequestType) {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => join(PROTO_ROOT, target);
    root.loadSync('opentelemetry/proto/collector/logs/v1/logs_service.proto');
    logsRequestType = root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest');
  }
  return logsRequestType;
}

export interface AnyValue {
  stringValue?: string;
  intValue?: number;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: AnyValue[] };
  kvlistValue?: { values?: { key: string; value: AnyValue }[] };
}
export interface DecodedLogRecord {
  timeUnixNano?: number;
  observedTimeUnixNano?: number;
  severityNumber?: number;
  severityText?: string;
  body?: AnyValue;
  attributes?: { key: string; value: AnyValue }[];
  eventName?: string;
}
export interface DecodedLogsRequest {
  resourceLogs: {
    resource: { attributes: KeyValue[] };
    scopeLogs: { scope: { name: string; version?: string }; logRecords: DecodedLogRecord[] }[];
  }[];
}

/** Decodes an OTLP logs protobuf body into a plain object. */
export function decodeLogsProtobuf(body: Buffer): DecodedLogsRequest {
  const t = exportLogsRequestType();
  return t.toObject(t.decode(body), {
    longs: Number,
    enums: Number,
    defaults: false,
    arrays: true,
  }) as DecodedLogsRequest;
}

/** Decodes an OTLP protobuf body into a plain object (camelCase fields, 64-bit integers as numbers). */
export function decodeProtobuf(body: Buffer): DecodedRequest {
  const t = exportRequestType();
  return t.toObject(t.decode(body), { longs: Number, enums: Number, defaults: false, arrays: true }) as DecodedRequest;
}

export interface KeyValue {
  key: string;
  value: { stringValue?: string; intValue?: number; doubleValue?: number; boolValue?: boolean };
}
export interface DecodedPoint {
  attributes?: KeyValue[];
  startTimeUnixNano?: number;
  timeUnixNano?: number;
  asDouble?: number;
  asInt?: number;
  count?: number;
  sum?: number;
  bucketCounts?: number[];
  explicitBounds?: number[];
}
export interface DecodedMetric {
  name: string;
  description?: string;
  unit?: string;
  sum?: { dataPoints: DecodedPoint[]; aggregationTemporality: number; isMonotonic?: boolean };
  gauge?: { dataPoints: DecodedPoint[] };
  histogram?: { dataPoints: DecodedPoint[]; aggregationTemporality: number };
}
export interface DecodedRequest {
  resourceMetrics: {
    resource: { attributes: KeyValue[] };
    scopeMetrics: { scope: { name: string; version?: string }; metrics: DecodedMetric[] }[];
  }[];
}

export interface ReceivedRequest {
  at: number;
  headers: IncomingHttpHeaders;
  /** The body as it came over the wire. */
  raw: Buffer;
  decoded: DecodedRequest;
}

/** What to answer a request with; default 200 and an empty body. */
export type Responder = (n: number) => { status: number; headers?: Record<string, string> };

export class OtlpReceiver {
  readonly requests: ReceivedRequest[] = [];
  /** Requests to /v1/logs, decoded with the logs protos. */
  readonly logRequests: { at: number; headers: IncomingHttpHeaders; decoded: DecodedLogsRequest }[] = [];
  /** Every request, including those answered with an error. */
  attempts = 0;
  respond: Responder = () => ({ status: 200 });
  private constructor(
    readonly server: Server,
    readonly port: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/v1/metrics`;
  }

  /** Listens on `port` (0: a free one). */
  static async start(port = 0): Promise<OtlpReceiver> {
    let self: OtlpReceiver | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const r = self!;
        const n = r.attempts++;
        const answer = r.respond(n);
        if (answer.status >= 200 && answer.status < 300) {
          const raw = Buffer.concat(chunks);
          const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
          const json = String(req.headers['content-type']).startsWith('application/json');
          if (req.url === '/v1/logs') {
            const decoded = json ? (JSON.parse(body.toString('utf8')) as DecodedLogsRequest) : decodeLogsProtobuf(body);
            r.logRequests.push({ at: Date.now(), headers: req.headers, decoded });
            res.writeHead(answer.status, { 'Content-Type': String(req.headers['content-type']) });
            res.end();
            return;
          }
          const decoded = String(req.headers['content-type']).startsWith('application/json')
            ? (JSON.parse(body.toString('utf8')) as DecodedRequest)
            : decodeProtobuf(body);
          r.requests.push({ at: Date.now(), headers: req.headers, raw, decoded });
        }
        res.writeHead(answer.status, {
          'Content-Type': String(req.headers['content-type'] ?? 'application/x-protobuf'),
          ...answer.headers,
        });
        res.end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    self = new OtlpReceiver(server, typeof addr === 'object' && addr ? addr.port : port);
    return self;
  }

  /** Every metric received so far, by name (the latest wins). */
  metrics(): Map<string, DecodedMetric> {
    const out = new Map<string, DecodedMetric>();
    for (const r of this.requests)
      for (const rm of r.decoded.resourceMetrics)
        for (const sm of rm.scopeMetrics) for (const m of sm.metrics) out.set(m.name, m);
    return out;
  }

  /** Every log record received so far, with its resource attributes. */
  logRecords(): (DecodedLogRecord & { resource: Record<string, unknown> })[] {
    return this.logRequests.flatMap((r) =>
      r.decoded.resourceLogs.flatMap((rl) =>
        rl.scopeLogs.flatMap((sl) => sl.logRecords.map((l) => ({ ...l, resource: attrs(rl.resource.attributes) }))),
      ),
    );
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** Resource or point attributes as a plain object. */
export function attrs(kvs: KeyValue[] | undefined): Record<string, string | number | boolean | undefined> {
  return Object.fromEntries(
    (kvs ?? []).map((kv) => [
      kv.key,
      kv.value.stringValue ?? kv.value.intValue ?? kv.value.doubleValue ?? kv.value.boolValue,
    ]),
  );
}
