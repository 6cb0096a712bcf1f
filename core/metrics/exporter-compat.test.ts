import assert from 'node:assert/strict';
import { test } from 'node:test';
import { counter, gauge } from './model.js';
import { MetricStore } from './store.js';
import { exporterCompatFamilies, renderWithExporterCompat } from './exporter-compat.js';

function store(): MetricStore {
  const s = new MetricStore();
  s.apply({
    source: 'nginx-status:a',
    time: Date.now(),
    resource: { 'nginx.instance.id': 'a' },
    metrics: [
      counter({ name: 'nginx.http.requests', unit: '{request}', description: 'Requests.' }, [
        { attributes: {}, value: 7 },
      ]),
      counter({ name: 'nginx.http.connections', unit: '{connection}', description: 'Connections.' }, [
        { attributes: { outcome: 'accepted' }, value: 5 },
        { attributes: { outcome: 'handled' }, value: 4 },
      ]),
      gauge({ name: 'nginx.http.connection.count', unit: '{connection}', description: 'Connections now.' }, [
        { attributes: { outcome: 'active' }, value: 3 },
        { attributes: { outcome: 'reading' }, value: 0 },
        { attributes: { outcome: 'writing' }, value: 1 },
        { attributes: { outcome: 'waiting' }, value: 2 },
      ]),
      gauge({ name: 'nginx.up', unit: '{up}', description: 'Up.' }, [{ attributes: {}, value: 1 }]),
    ],
  });
  return s;
}

test('the exporter families are derived from the agent metrics, outcome folded into the name', () => {
  const fams = new Map(exporterCompatFamilies(store().snapshot()).map((f) => [f.name, f]));
  assert.deepEqual([...fams.keys()].sort(), [
    'nginx_connections_accepted',
    'nginx_connections_active',
    'nginx_connections_handled',
    'nginx_connections_reading',
    'nginx_connections_waiting',
    'nginx_connections_writing',
    'nginx_http_requests_total',
    'nginx_up',
  ]);
  assert.deepEqual(fams.get('nginx_connections_accepted'), {
    name: 'nginx_connections_accepted',
    type: 'counter',
    help: 'Accepted client connections',
    lines: ['nginx_connections_accepted{nginx_instance_id="a"} 5'],
  });
  assert.equal(fams.get('nginx_connections_waiting')!.lines[0], 'nginx_connections_waiting{nginx_instance_id="a"} 2');
  assert.equal(fams.get('nginx_connections_active')!.type, 'gauge');
});

test('with no nginx known, nginx_up is 0 as the exporter serves it, and nothing else is made up', () => {
  const fams = exporterCompatFamilies(new MetricStore().snapshot());
  assert.deepEqual(fams, [
    { name: 'nginx_up', type: 'gauge', help: 'Status of the last metric scrape', lines: ['nginx_up 0'] },
  ]);
});

test('a family the agent serves natively is served once', () => {
  const text = renderWithExporterCompat(store().snapshot());
  assert.equal(text.match(/^# TYPE nginx_http_requests_total /gm)?.length, 1);
  assert.equal(text.match(/^# TYPE nginx_up /gm)?.length, 1);
  assert.match(text, /^nginx_http_requests_total\{nginx_instance_id="a"\} 7$/m);
  assert.match(text, /^# TYPE nginx_connections_handled counter$/m);
  // The agent's own names stay.
  assert.match(text, /^nginx_http_connections_total\{nginx_instance_id="a",outcome="accepted"\} 5$/m);
});
