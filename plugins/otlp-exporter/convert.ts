/**
 * Agent metric snapshot -> OTLP export requests, through the OpenTelemetry project's own serializers
 * (`@opentelemetry/otlp-transformer`) fed with the SDK's data shapes. Temporality is cumulative:
 * counters become monotonic cumulative Sums, gauges Gauges, histograms explicit-bucket Histograms.
 */
import { ValueType, type HrTime } from '@opentelemetry/api';
import { JsonMetricsSerializer, ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  type MetricData,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import type { HistogramPoint, NumberPoint } from '../../core/metrics/model.js';
import type { StoredMetric } from '../../core/metrics/store.js';
import type { AgentInfo } from '../../core/plugin/types.js';

export type OtlpProtocol = 'http/protobuf' | 'http/json';

/** The instrumentation scope every exported metric is under. */
export const SCOPE_NAME = 'nginx-agent';

/** Resource attributes on everything exported: host, service (agent) identity, and `agent.labels`. */
export function resourceAttributes(agent: AgentInfo): Record<string, string> {
  return {
    ...(agent.labels ?? {}),
    'host.name': agent.hostname,
    'service.name': 'nginx-agent',
    'service.version': agent.version,
    'service.instance.id': agent.instanceId ?? `${agent.hostname}:${agent.startedAt}`,
  };
}

function hr(ms: number): HrTime {
  const s = Math.floor(ms / 1000);
  return [s, Math.round((ms - s * 1000) * 1e6)];
}

/**
 * Splits the snapshot into groups of at most `maxPoints` data points (a metric with more points
 * than that is split across groups) and converts each group to the SDK's ResourceMetrics.
 */
export function toResourceMetrics(
  metrics: readonly StoredMetric[],
  opts: { resource: Record<string, string>; scopeVersion: string; now: number; startTime: number; maxPoints: number },
): { request: ResourceMetrics; points: number }[] {
  const resource = resourceFromAttributes(opts.resource);
  const end = hr(opts.now);
  const groups: { data: MetricData[]; points: number }[] = [];
  let cur: { data: MetricData[]; points: number } = { data: [], points: 0 };
  const flush = () => {
    if (cur.points > 0) groups.push(cur);
    cur = { data: [], points: 0 };
  };
  for (const m of metrics) {
    let i = 0;
    while (i < m.points.length) {
      const room = opts.maxPoints - cur.points;
      const slice = m.points.slice(i, i + room);
      i += slice.length;
      cur.data.push(metricData(m, slice, end, opts.startTime));
      cur.points += slice.length;
      if (cur.points >= opts.maxPoints) flush();
    }
  }
  flush();
  return groups.map((g) => ({
    points: g.points,
    request: { resource, scopeMetrics: [{ scope: { name: SCOPE_NAME, version: opts.scopeVersion }, metrics: g.data }] },
  }));
}

function metricData(
  m: StoredMetric,
  points: readonly (NumberPoint | HistogramPoint)[],
  end: HrTime,
  agentStart: number,
): MetricData {
  const descriptor = { name: m.name, description: m.description, unit: m.unit, valueType: ValueType.DOUBLE };
  const start = (p: { startTime?: number }) => hr(p.startTime ?? agentStart);
  if (m.type === 'histogram') {
    return {
      descriptor,
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.HISTOGRAM,
      dataPoints: (points as HistogramPoint[]).map((p) => ({
        startTime: start(p),
        endTime: end,
        attributes: { ...p.attributes },
        value: { count: p.count, sum: p.sum, buckets: { boundaries: [...p.bounds], counts: [...p.buckets] } },
      })),
    };
  }
  const dataPoints = (points as NumberPoint[]).map((p) => ({
    startTime: m.type === 'counter' ? start(p) : end,
    endTime: end,
    attributes: { ...p.attributes },
    value: p.value,
  }));
  if (m.type === 'counter') {
    return {
      descriptor,
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.SUM,
      isMonotonic: true,
      dataPoints,
    };
  }
  return {
    descriptor,
    aggregationTemporality: AggregationTemporality.CUMULATIVE,
    dataPointType: DataPointType.GAUGE,
    dataPoints,
  };
}

/** The request body in the configured protocol, and its content type. */
export function serialize(rm: ResourceMetrics, protocol: OtlpProtocol): { body: Uint8Array; contentType: string } {
  const ser = protocol === 'http/json' ? JsonMetricsSerializer : ProtobufMetricsSerializer;
  const body = ser.serializeRequest(rm);
  if (!body) throw new Error(`the OTLP ${protocol} serializer returned nothing`);
  return { body, contentType: protocol === 'http/json' ? 'application/json' : 'application/x-protobuf' };
}
