/**
 * Agent events -> OTLP log records, serialized by the OpenTelemetry project's own log serializers
 * (`@opentelemetry/otlp-transformer`): severity number and text, body = the summary, the event's
 * fields and attributes as record attributes, `eventName` = the kind, and the same resource as the
 * metrics.
 */
import type { HrTime } from '@opentelemetry/api';
import { JsonLogsSerializer, ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { AgentEvent, Severity } from '../../core/events/types.js';
import type { Json } from '../../core/topics.js';
import type { OtlpProtocol } from './convert.js';
import { SCOPE_NAME } from './convert.js';

type LogRecords = Parameters<typeof ProtobufLogsSerializer.serializeRequest>[0];
type LogRecord = LogRecords[number];
type AttributeValue = LogRecord['attributes'][string];

/** OpenTelemetry SeverityNumber per event severity (INFO, WARN, ERROR, FATAL). */
export const SEVERITY_NUMBER: Record<Severity, number> = { info: 9, warning: 13, error: 17, critical: 21 };

/** `http://host:4318/v1/metrics` -> `http://host:4318/v1/logs`; undefined when the path is not the OTLP default. */
export function logsEndpointOf(metricsEndpoint: string): string | undefined {
  return /\/v1\/metrics\/?$/.test(metricsEndpoint)
    ? metricsEndpoint.replace(/\/v1\/metrics\/?$/, '/v1/logs')
    : undefined;
}

function hr(ms: number): HrTime {
  const s = Math.floor(ms / 1000);
  return [s, Math.round((ms - s * 1000) * 1e6)];
}

function attributeValue(v: Json): AttributeValue {
  if (v === null) return undefined as unknown as AttributeValue;
  if (Array.isArray(v)) return v.map(attributeValue) as AttributeValue;
  if (typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, attributeValue(x)])) as AttributeValue;
  return v;
}

export function toLogRecords(
  events: readonly AgentEvent[],
  opts: { resource: Record<string, string>; scopeVersion: string; now: number },
): LogRecords {
  const resource = resourceFromAttributes(opts.resource);
  const scope = { name: SCOPE_NAME, version: opts.scopeVersion };
  const observed = hr(opts.now);
  return events.map((e) => {
    const attributes: Record<string, AttributeValue> = {};
    for (const [k, v] of Object.entries(e.attributes)) if (v !== null) attributes[k] = attributeValue(v);
    attributes['event.id'] = e.id;
    attributes['event.kind'] = e.kind;
    attributes['event.source'] = e.source;
    attributes['event.key'] = e.key;
    if (e.state) attributes['event.state'] = e.state;
    if (typeof e.attributes.instance_id === 'string') attributes['nginx.instance.id'] = e.attributes.instance_id;
    return {
      hrTime: hr(Date.parse(e.time)),
      hrTimeObserved: observed,
      severityNumber: SEVERITY_NUMBER[e.severity],
      severityText: e.severity,
      body: e.summary,
      eventName: e.kind,
      resource,
      instrumentationScope: scope,
      attributes,
      droppedAttributesCount: 0,
    } as LogRecord;
  });
}

export function serializeLogs(records: LogRecords, protocol: OtlpProtocol): { body: Uint8Array; contentType: string } {
  const ser = protocol === 'http/json' ? JsonLogsSerializer : ProtobufLogsSerializer;
  const body = ser.serializeRequest(records);
  if (!body) throw new Error(`the OTLP ${protocol} log serializer returned nothing`);
  return { body, contentType: protocol === 'http/json' ? 'application/json' : 'application/x-protobuf' };
}
