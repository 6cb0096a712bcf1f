import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { counter, gauge, histogram } from './model.js';
import { prometheusName, renderPrometheus } from './prometheus.js';
import { MetricStore } from './store.js';

test('Prometheus names are derived mechanically from OTel names and units', () => {
  assert.equal(prometheusName('nginx.http.requests', '{request}', 'counter'), 'nginx_http_requests_total');
  assert.equal(prometheusName('system.cpu.utilization', '1', 'gauge'), 'system_cpu_utilization_ratio');
  assert.equal(prometheusName('system.memory.usage', 'By', 'gauge'), 'system_memory_usage_bytes');
  assert.equal(prometheusName('system.network.io', 'By', 'counter'), 'system_network_io_bytes_total');
  assert.equal(prometheusName('nginx.http.request.time', 's', 'histogram'), 'nginx_http_request_time_seconds');
  assert.equal(prometheusName('system.cpu.load_average.1m', '{thread}', 'gauge'), 'system_cpu_load_average_1m');
  assert.equal(prometheusName('process.cpu.time', 's', 'counter'), 'process_cpu_time_seconds_total');
  assert.equal(prometheusName('nginx.up', '', 'gauge'), 'nginx_up');
  assert.equal(prometheusName('x.rate', 'By/s', 'gauge'), 'x_rate_bytes_per_second');
  // Histogram/summary suffixes are reserved: promtool rejects a gauge named *_count.
  assert.equal(
    prometheusName('nginx.http.connection.count', '{connection}', 'gauge'),
    'nginx_http_connection_count_current',
  );
  assert.equal(prometheusName('system.process.count', '{process}', 'gauge'), 'system_process_count_current');
  assert.equal(prometheusName('nginx.http.request.count', '{request}', 'counter'), 'nginx_http_request_count_total');
  assert.equal(prometheusName('a.seconds', 's', 'gauge'), 'a_seconds', 'no doubled unit');
  assert.equal(prometheusName('a.b_total', '1', 'counter'), 'a_b_total', 'no doubled _total');
});

test('exposition has HELP and TYPE per family, escaped labels, cumulative histogram buckets', () => {
  const store = new MetricStore();
  store.apply({
    source: 's1',
    time: 0,
    resource: { 'nginx.instance.id': 'abc' },
    metrics: [
      counter({ name: 'nginx.http.requests', unit: '{request}', description: 'Requests.' }, [
        { attributes: {}, value: 42 },
      ]),
      gauge({ name: 'g', unit: '1', description: 'line1\nline2' }, [{ attributes: { path: 'a"b\\c\nd' }, value: 0.5 }]),
      histogram({ name: 'nginx.http.request.time', unit: 's', description: 'Time.' }, [
        { attributes: { m: 'GET' }, count: 6, sum: 1.5, bounds: [0.1, 1], buckets: [3, 2, 1] },
      ]),
    ],
  });
  const text = renderPrometheus(store.snapshot());
  assert.match(
    text,
    /# HELP nginx_http_requests_total Requests\. \(nginx\.http\.requests, unit \{request\}\)\n# TYPE nginx_http_requests_total counter\nnginx_http_requests_total\{nginx_instance_id="abc"\} 42\n/,
  );
  assert.match(text, /# HELP g_ratio line1\\nline2/);
  assert.match(text, /g_ratio\{nginx_instance_id="abc",path="a\\"b\\\\c\\nd"\} 0\.5/);
  assert.match(text, /nginx_http_request_time_seconds_bucket\{m="GET",nginx_instance_id="abc",le="0\.1"\} 3\n/);
  assert.match(text, /nginx_http_request_time_seconds_bucket\{m="GET",nginx_instance_id="abc",le="1"\} 5\n/);
  assert.match(text, /nginx_http_request_time_seconds_bucket\{m="GET",nginx_instance_id="abc",le="\+Inf"\} 6\n/);
  assert.match(text, /nginx_http_request_time_seconds_sum\{m="GET",nginx_instance_id="abc"\} 1\.5\n/);
  assert.match(text, /nginx_http_request_time_seconds_count\{m="GET",nginx_instance_id="abc"\} 6\n/);
});

test('a histogram without labels gets {le=...} alone; label names are sanitised, plain ones kept as they are', () => {
  const text = renderPrometheus([
    {
      name: 'h',
      type: 'histogram',
      unit: 's',
      description: 'H.',
      points: [{ attributes: {}, count: 2, sum: 3, bounds: [1], buckets: [1, 1] }],
    },
    {
      name: 'g',
      type: 'gauge',
      unit: '',
      description: 'G.',
      points: [{ attributes: { 'a.b': '1', c__d: '2', '9x': '3', _ok_1: '4' }, value: 1 }],
    },
  ]);
  assert.match(text, /^h_seconds_bucket\{le="1"\} 1$/m);
  assert.match(text, /^h_seconds_bucket\{le="\+Inf"\} 2$/m);
  assert.match(text, /^h_seconds_sum 3$/m);
  assert.match(text, /^g\{_9x="3",_ok_1="4",a_b="1",c_d="2"\} 1$/m);
});

test("the store replaces a source's series per metric name and forgets a source on final", () => {
  const store = new MetricStore();
  const g = (v: number, dev: string) =>
    gauge({ name: 'm', unit: '', description: '' }, [{ attributes: { dev }, value: v }]);
  store.apply({ source: 'a', time: 0, metrics: [g(1, 'x')] });
  store.apply({ source: 'b', time: 0, metrics: [g(2, 'y')] });
  store.apply({ source: 'a', time: 1, metrics: [g(3, 'z')] });
  assert.deepEqual(
    store
      .snapshot()[0]
      .points.map((p) => p.attributes.dev)
      .sort(),
    ['y', 'z'],
  );
  store.apply({ source: 'b', time: 2, metrics: [], final: true });
  assert.deepEqual(
    store.snapshot()[0].points.map((p) => ('value' in p ? p.value : 0)),
    [3],
  );
  assert.deepEqual(store.sources(), ['a']);
});
