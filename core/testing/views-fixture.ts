/**
 * Fixture nginx instances for the views (summary, history, dashboard) without running nginx: the bus
 * messages discovery and nginx-config publish, and the metric batches nginx-status, nginx-logs and
 * host-metrics publish, with traffic that grows on every `tick`. Used by core/views tests and
 * scripts/bench/history.ts.
 */
import type { Bus } from '../bus/bus.js';
import { counter, gauge, histogram, type MetricBatch } from '../metrics/model.js';
import type { NginxInstance } from '../nginx/types.js';
import { configChangedFixture, instanceFixture } from './nginx-fixtures.js';

const BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function fixtureInstance(index: number): NginxInstance {
  const id = `fixture${String(index).padStart(9, '0')}`;
  return instanceFixture({
    id,
    pid: 1000 + index,
    version: '1.26.3',
    prefix: `/srv/site${index}`,
    confPath: `/srv/site${index}/nginx.conf`,
    workers: [{ pid: 2000 + index, startTicks: 1 }],
  });
}

/** Announces `count` instances with their config (one certificate and one lint finding each). */
export function announceInstances(bus: Bus, count: number, now = Date.now()): NginxInstance[] {
  const out = [];
  for (let i = 0; i < count; i++) {
    const instance = fixtureInstance(i);
    out.push(instance);
    bus.publish('nginx.instance.added', { instance });
    const version = `${'ab'.repeat(30)}${String(i).padStart(4, '0')}`;
    bus.publish(
      'nginx.config.changed',
      configChangedFixture({
        instanceId: instance.id,
        confPath: instance.confPath,
        prefix: instance.prefix,
        version,
        files: [{ path: instance.confPath, sha256: version, size: 100 }],
        analysis: {
          certificates: [
            { path: `/srv/site${i}/cert.pem`, file: instance.confPath, line: 3, notAfter: now + (10 + i) * 86_400_000 },
          ],
        },
        added: [instance.confPath],
      }),
    );
    bus.publish('nginx.config.validated', { instanceId: instance.id, version, ok: true, exitCode: 0, messages: [] });
    // As config-lint publishes it (snake_case keys).
    bus.publish('lint.nginx.config', {
      instance_id: instance.id,
      version,
      conf_path: instance.confPath,
      findings: [
        {
          rule: 'server-tokens-on',
          severity: 'warning',
          message: 'server_tokens on',
          file: instance.confPath,
          line: 7,
        },
      ],
    });
  }
  return out;
}

/** The metric batches of one collection for `count` instances at tick `tick` (10 requests/s each). */
export function trafficBatches(count: number, tick: number, now = Date.now()): MetricBatch[] {
  const batches: MetricBatch[] = [];
  for (let i = 0; i < count; i++) {
    const id = fixtureInstance(i).id;
    const requests = tick * 50;
    const buckets = BOUNDS.map(() => 0).concat(0);
    buckets[0] = tick * 40;
    buckets[3] = tick * 9;
    buckets[6] = tick;
    batches.push({
      source: `nginx-status:${id}`,
      time: now,
      resource: { 'nginx.instance.id': id },
      metrics: [
        gauge({ name: 'nginx.up', unit: '{status}', description: '' }, [{ attributes: {}, value: 1 }]),
        counter({ name: 'nginx.http.requests', unit: '{request}', description: '' }, [
          { attributes: {}, value: requests, startTime: 0 },
        ]),
        gauge(
          { name: 'nginx.http.connection.count', unit: '{connection}', description: '' },
          ['active', 'reading', 'writing', 'waiting'].map((outcome, k) => ({ attributes: { outcome }, value: k + 1 })),
        ),
      ],
    });
    batches.push({
      source: `nginx-logs:${id}`,
      time: now,
      resource: { 'nginx.instance.id': id, 'log.file.path': `/srv/site${i}/access.log` },
      metrics: [
        counter(
          { name: 'nginx.http.responses', unit: '{response}', description: '' },
          ['2xx', '3xx', '4xx', '5xx'].map((status_range, k) => ({
            attributes: { status_range, 'http.request.method': 'GET' },
            value: Math.round(requests * [0.9, 0.05, 0.04, 0.01][k]),
            startTime: 0,
          })),
        ),
        histogram({ name: 'nginx.http.request.time', unit: 's', description: '' }, [
          { attributes: {}, count: requests, sum: requests * 0.01, bounds: BOUNDS, buckets, startTime: 0 },
        ]),
      ],
    });
  }
  batches.push({
    source: 'host-metrics',
    time: now,
    metrics: [
      gauge(
        { name: 'system.cpu.utilization', unit: '1', description: '' },
        [
          ['idle', 0.8],
          ['user', 0.15],
          ['system', 0.05],
        ].map(([state, value]) => ({ attributes: { state: state as string }, value: value as number })),
      ),
      gauge({ name: 'system.memory.utilization', unit: '1', description: '' }, [
        { attributes: { state: 'used' }, value: 0.42 },
      ]),
      gauge({ name: 'system.filesystem.usage', unit: 'By', description: '' }, [
        { attributes: { mountpoint: '/', state: 'used' }, value: 60 },
        { attributes: { mountpoint: '/', state: 'free' }, value: 40 },
      ]),
      counter({ name: 'system.network.io', unit: 'By', description: '' }, [
        { attributes: { device: 'eth0', direction: 'receive' }, value: tick * 10_000, startTime: 0 },
        { attributes: { device: 'eth0', direction: 'transmit' }, value: tick * 5_000, startTime: 0 },
      ]),
    ],
  });
  return batches;
}
