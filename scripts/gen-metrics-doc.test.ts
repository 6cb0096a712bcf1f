import assert from 'node:assert/strict';
import { test } from 'node:test';
import { counter, histogram } from '../core/metrics/model.js';
import { renderPrometheus } from '../core/metrics/prometheus.js';
import { MetricStore } from '../core/metrics/store.js';
import { describeFamilies, renderDoc } from './gen-metrics-doc.js';

test('the metrics doc is read back from the exposition: OTel name, unit, type, attributes', () => {
  const s = new MetricStore();
  s.apply({
    source: 't',
    time: 0,
    resource: { 'nginx.instance.id': 'x' },
    metrics: [
      counter({ name: 'nginx.http.responses', unit: '{response}', description: 'Responses | by status.' }, [
        { attributes: { status_range: '2xx' }, value: 1 },
      ]),
      histogram({ name: 'nginx.http.request.time', unit: 's', description: 'Request time.' }, [
        { attributes: { method: 'GET' }, count: 1, sum: 0.1, bounds: [0.5], buckets: [1, 0] },
      ]),
    ],
  });
  const fams = describeFamilies(renderPrometheus(s.snapshot()));
  assert.deepEqual(fams, [
    {
      prom: 'nginx_http_request_time_seconds',
      type: 'histogram',
      otel: 'nginx.http.request.time',
      unit: 's',
      description: 'Request time.',
      attributes: ['method', 'nginx_instance_id'],
    },
    {
      prom: 'nginx_http_responses_total',
      type: 'counter',
      otel: 'nginx.http.responses',
      unit: '{response}',
      description: 'Responses | by status.',
      attributes: ['nginx_instance_id', 'status_range'],
    },
  ]);
  const doc = renderDoc(fams);
  assert.match(doc, /^## NGINX$/m);
  assert.match(
    doc,
    /^\| `nginx\.http\.responses` \| `nginx_http_responses_total` \| counter \| `\{response\}` \| `nginx_instance_id`, `status_range` \| Responses \\\| by status\. \|$/m,
  );
  assert.match(doc, /^\| `nginx_connections_accepted` \| counter \|/m);
});
