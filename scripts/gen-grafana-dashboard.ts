/**
 * Writes examples/grafana/nginx-agent.json: a Grafana dashboard on the agent's own metric names,
 * with a Prometheus datasource variable and `nginx_instance_id` / `instance` variables.
 * Edit the panels here and re-run: node --import tsx scripts/gen-grafana-dashboard.ts
 * scripts/e2e/grafana.test.ts checks every panel's expression against a real Prometheus.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const OUT = join(dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'grafana', 'nginx-agent.json');
const DS = { type: 'prometheus', uid: '${datasource}' };
const NGINX = 'nginx_instance_id=~"$nginx_instance_id", instance=~"$instance"';
const AGENT = 'instance=~"$instance"';
const RATE = '$__rate_interval';

interface Target {
  expr: string;
  legend: string;
}
interface PanelSpec {
  title: string;
  description: string;
  unit: string;
  targets: Target[];
  type?: 'timeseries' | 'stat' | 'heatmap';
  width?: number;
  stack?: boolean;
}
interface Row {
  title: string;
  panels: PanelSpec[];
}

const quantiles = (metric: string, filter: string, by = ''): Target[] =>
  [0.5, 0.95, 0.99].map((q) => ({
    expr: `histogram_quantile(${q}, sum by (le${by ? `, ${by}` : ''}) (rate(${metric}_bucket{${filter}}[${RATE}])))`,
    legend: `p${q * 100}${by ? ` {{${by}}}` : ''}`,
  }));

const ROWS: Row[] = [
  {
    title: 'nginx traffic',
    panels: [
      {
        title: 'nginx up',
        description: 'nginx_up: 1 when stub_status (or the Plus API) answered at the last read.',
        unit: 'none',
        type: 'stat',
        width: 4,
        targets: [{ expr: `nginx_up{${NGINX}}`, legend: '{{nginx_instance_id}}' }],
      },
      {
        title: 'Requests/s',
        description: 'Requests served per second (stub_status), per nginx instance.',
        unit: 'reqps',
        width: 10,
        targets: [
          {
            expr: `sum by (nginx_instance_id) (rate(nginx_http_requests_total{${NGINX}}[${RATE}]))`,
            legend: '{{nginx_instance_id}}',
          },
        ],
      },
      {
        title: 'Status mix',
        description: 'Responses per second by status class, from the access logs.',
        unit: 'reqps',
        width: 10,
        stack: true,
        targets: [
          {
            expr: `sum by (status_range) (rate(nginx_http_responses_total{${NGINX}}[${RATE}]))`,
            legend: '{{status_range}}',
          },
        ],
      },
      {
        title: '5xx share',
        description: 'Share of responses with a 5xx status.',
        unit: 'percentunit',
        width: 8,
        targets: [
          {
            expr: `sum(rate(nginx_http_responses_total{status_range="5xx", ${NGINX}}[${RATE}])) / sum(rate(nginx_http_responses_total{${NGINX}}[${RATE}]))`,
            legend: '5xx',
          },
        ],
      },
      {
        title: 'Responses by method',
        description: 'Responses per second by HTTP method.',
        unit: 'reqps',
        width: 8,
        targets: [
          {
            expr: `sum by (http_request_method) (rate(nginx_http_responses_total{${NGINX}}[${RATE}]))`,
            legend: '{{http_request_method}}',
          },
        ],
      },
      {
        title: 'Response bytes/s',
        description: 'Body bytes sent per second, from the access logs.',
        unit: 'Bps',
        width: 8,
        targets: [
          {
            expr: `sum by (nginx_instance_id) (rate(nginx_http_response_bytes_total{${NGINX}}[${RATE}]))`,
            legend: '{{nginx_instance_id}}',
          },
        ],
      },
    ],
  },
  {
    title: 'Latency',
    panels: [
      {
        title: 'Request time p50 / p95 / p99',
        description: '$request_time quantiles from the access-log histogram.',
        unit: 's',
        targets: quantiles('nginx_http_request_time_seconds', NGINX),
      },
      {
        title: 'Request time distribution',
        description: 'Requests per histogram bucket of $request_time.',
        unit: 's',
        type: 'heatmap',
        targets: [
          {
            expr: `sum by (le) (increase(nginx_http_request_time_seconds_bucket{${NGINX}}[${RATE}]))`,
            legend: '{{le}}',
          },
        ],
      },
    ],
  },
  {
    title: 'Connections',
    panels: [
      {
        title: 'Connections by state',
        description: 'Client connections now: active, reading, writing, waiting.',
        unit: 'short',
        targets: [
          {
            expr: `sum by (outcome) (nginx_http_connection_count_current{${NGINX}})`,
            legend: '{{outcome}}',
          },
        ],
      },
      {
        title: 'Connections accepted / handled per second',
        description: 'A gap between accepted and handled means dropped connections (worker_connections reached).',
        unit: 'cps',
        targets: [
          {
            expr: `sum by (outcome) (rate(nginx_http_connections_total{${NGINX}}[${RATE}]))`,
            legend: '{{outcome}}',
          },
        ],
      },
    ],
  },
  {
    title: 'Upstreams',
    panels: [
      {
        title: 'Upstream response time',
        description: '$upstream_response_time quantiles (present when nginx proxies).',
        unit: 's',
        width: 8,
        targets: quantiles('nginx_upstream_response_time_seconds', NGINX),
      },
      {
        title: 'Upstream connect time',
        description: '$upstream_connect_time quantiles.',
        unit: 's',
        width: 8,
        targets: quantiles('nginx_upstream_connect_time_seconds', NGINX),
      },
      {
        title: 'Upstream errors',
        description: 'Upstream failures from the error log, by reason.',
        unit: 'short',
        width: 8,
        targets: [
          {
            expr: `sum by (reason) (rate(nginx_upstream_errors_total{${NGINX}}[${RATE}]))`,
            legend: '{{reason}}',
          },
        ],
      },
    ],
  },
  {
    title: 'nginx processes and logs',
    panels: [
      {
        title: 'Worker CPU',
        description: 'CPU seconds per second used by the workers, by mode.',
        unit: 'percentunit',
        width: 6,
        targets: [
          {
            expr: `sum by (cpu_mode) (rate(nginx_worker_cpu_time_seconds_total{${NGINX}}[${RATE}]))`,
            legend: '{{cpu_mode}}',
          },
        ],
      },
      {
        title: 'Worker memory',
        description: 'Resident memory of the workers.',
        unit: 'bytes',
        width: 6,
        targets: [
          {
            expr: `sum by (nginx_instance_id) (nginx_worker_memory_usage_bytes{${NGINX}})`,
            legend: '{{nginx_instance_id}}',
          },
        ],
      },
      {
        title: 'Error log entries',
        description: 'error_log lines per second by level.',
        unit: 'short',
        width: 6,
        targets: [
          {
            expr: `sum by (level) (rate(nginx_error_log_entries_total{${NGINX}}[${RATE}]))`,
            legend: '{{level}}',
          },
        ],
      },
      {
        title: 'Access log lines',
        description: 'Access-log lines read per second, and malformed ones.',
        unit: 'short',
        width: 6,
        targets: [
          { expr: `sum(rate(nginx_log_lines_total{${NGINX}}[${RATE}]))`, legend: 'lines' },
          { expr: `sum(rate(nginx_log_lines_malformed_total{${NGINX}}[${RATE}]))`, legend: 'malformed' },
        ],
      },
    ],
  },
  {
    title: 'Host',
    panels: [
      {
        title: 'CPU',
        description: 'CPU time share by state (idle left out).',
        unit: 'percentunit',
        width: 6,
        stack: true,
        targets: [
          { expr: `sum by (state) (system_cpu_utilization_ratio{state!="idle", ${AGENT}})`, legend: '{{state}}' },
        ],
      },
      {
        title: 'Memory',
        description: 'Memory use by state.',
        unit: 'bytes',
        width: 6,
        stack: true,
        targets: [{ expr: `sum by (state) (system_memory_usage_bytes{${AGENT}})`, legend: '{{state}}' }],
      },
      {
        title: 'Filesystem use',
        description: 'Used share of each mounted filesystem.',
        unit: 'percentunit',
        width: 6,
        targets: [
          {
            expr: `sum by (mountpoint) (system_filesystem_usage_bytes{state="used", ${AGENT}}) / sum by (mountpoint) (system_filesystem_usage_bytes{${AGENT}})`,
            legend: '{{mountpoint}}',
          },
        ],
      },
      {
        title: 'Load average',
        description: '1, 5 and 15 minute load averages.',
        unit: 'short',
        width: 6,
        targets: [
          { expr: `system_cpu_load_average_1m{${AGENT}}`, legend: '1m' },
          { expr: `system_cpu_load_average_5m{${AGENT}}`, legend: '5m' },
          { expr: `system_cpu_load_average_15m{${AGENT}}`, legend: '15m' },
        ],
      },
      {
        title: 'Disk I/O',
        description: 'Bytes read and written per second, all disks.',
        unit: 'Bps',
        width: 12,
        targets: [
          { expr: `sum by (direction) (rate(system_disk_io_bytes_total{${AGENT}}[${RATE}]))`, legend: '{{direction}}' },
        ],
      },
      {
        title: 'Network',
        description: 'Bytes received and sent per second, loopback left out.',
        unit: 'Bps',
        width: 12,
        targets: [
          {
            expr: `sum by (direction) (rate(system_network_io_bytes_total{device!="lo", ${AGENT}}[${RATE}]))`,
            legend: '{{direction}}',
          },
        ],
      },
    ],
  },
  {
    title: 'Agent',
    panels: [
      {
        title: 'Agent CPU',
        description: 'CPU seconds per second used by the agent process.',
        unit: 'percentunit',
        width: 6,
        stack: true,
        targets: [
          { expr: `sum by (state) (rate(process_cpu_time_seconds_total{${AGENT}}[${RATE}]))`, legend: '{{state}}' },
        ],
      },
      {
        title: 'Agent memory',
        description: 'Resident memory and V8 heap in use.',
        unit: 'bytes',
        width: 6,
        targets: [
          { expr: `process_memory_usage_bytes{${AGENT}}`, legend: 'rss' },
          { expr: `process_runtime_nodejs_memory_heap_used_bytes{${AGENT}}`, legend: 'heap used' },
        ],
      },
      {
        title: 'Event-loop delay p99',
        description: 'A busy agent shows here first.',
        unit: 's',
        width: 6,
        targets: [{ expr: `nodejs_eventloop_delay_p99_seconds{${AGENT}}`, legend: 'p99' }],
      },
      {
        title: 'API requests',
        description: 'Local API requests per second by status class.',
        unit: 'reqps',
        width: 6,
        targets: [
          {
            expr: `sum by (status_class) (rate(agent_api_requests_total{${AGENT}}[${RATE}]))`,
            legend: '{{status_class}}',
          },
        ],
      },
      {
        title: 'Bus messages',
        description: 'Messages published per second, and dropped by full subscriber queues.',
        unit: 'short',
        width: 12,
        targets: [
          { expr: `sum(rate(agent_bus_published_total{${AGENT}}[${RATE}]))`, legend: 'published' },
          {
            expr: `sum by (subscriber) (rate(agent_bus_dropped_total{${AGENT}}[${RATE}]))`,
            legend: 'dropped {{subscriber}}',
          },
        ],
      },
      {
        title: 'Events',
        description: 'Events recorded per second, conditions firing now (GET /v1/alerts), and events sinks dropped.',
        unit: 'short',
        width: 12,
        targets: [
          { expr: `sum(rate(agent_events_total{${AGENT}}[${RATE}]))`, legend: 'events/s' },
          { expr: `sum(agent_events_firing{${AGENT}})`, legend: 'firing' },
          {
            expr: `sum by (sink) (rate(agent_events_dropped_total{${AGENT}}[${RATE}]))`,
            legend: 'dropped {{sink}}',
          },
        ],
      },
      {
        title: 'Bus queue depth',
        description: 'Messages waiting per subscriber.',
        unit: 'short',
        width: 12,
        targets: [{ expr: `agent_bus_queue_depth{${AGENT}}`, legend: '{{subscriber}}' }],
      },
    ],
  },
  {
    title: 'Plugins',
    panels: [
      {
        title: 'Plugin states',
        description: 'Each plugin with the state it is in (running, degraded, failed, quarantined...).',
        unit: 'none',
        width: 8,
        targets: [{ expr: `agent_plugin_state{${AGENT}} == 1`, legend: '{{plugin}}: {{state}}' }],
      },
      {
        title: 'nginx-status reads',
        description: 'stub_status / Plus API reads per second by outcome.',
        unit: 'short',
        width: 8,
        targets: [
          {
            expr: `sum by (outcome) (rate(agent_nginx_status_scrapes_total{${AGENT}}[${RATE}]))`,
            legend: '{{outcome}}',
          },
        ],
      },
      {
        title: 'Wasm plugin calls',
        description: 'Calls per second into each Wasm plugin, and failed ones.',
        unit: 'short',
        width: 8,
        targets: [
          { expr: `sum by (plugin) (rate(agent_wasm_plugin_calls_total{${AGENT}}[${RATE}]))`, legend: '{{plugin}}' },
          {
            expr: `sum by (plugin) (rate(agent_wasm_plugin_errors_total{${AGENT}}[${RATE}]))`,
            legend: 'errors {{plugin}}',
          },
        ],
      },
      {
        title: 'Wasm call duration p95',
        description: 'Time of one call into a Wasm plugin.',
        unit: 's',
        width: 12,
        targets: [
          {
            expr: `histogram_quantile(0.95, sum by (le, plugin) (rate(agent_wasm_plugin_call_duration_seconds_bucket{${AGENT}}[${RATE}])))`,
            legend: '{{plugin}}',
          },
        ],
      },
      {
        title: 'Wasm messages',
        description: 'Messages delivered to each Wasm plugin per second.',
        unit: 'short',
        width: 12,
        targets: [
          {
            expr: `sum by (plugin) (rate(agent_wasm_plugin_messages_total{${AGENT}}[${RATE}]))`,
            legend: '{{plugin}}',
          },
        ],
      },
    ],
  },
];

function build(): object {
  const panels: object[] = [];
  let id = 1;
  let y = 0;
  for (const row of ROWS) {
    panels.push({
      type: 'row',
      title: row.title,
      id: id++,
      collapsed: false,
      gridPos: { h: 1, w: 24, x: 0, y },
      panels: [],
    });
    y++;
    let x = 0;
    for (const p of row.panels) {
      const w = p.width ?? 12;
      if (x + w > 24) {
        x = 0;
        y += 8;
      }
      panels.push({
        id: id++,
        type: p.type ?? 'timeseries',
        title: p.title,
        description: p.description,
        datasource: DS,
        gridPos: { h: 8, w, x, y },
        fieldConfig: {
          defaults: {
            unit: p.unit,
            ...(p.type === 'timeseries' || !p.type
              ? {
                  custom: {
                    lineWidth: 1,
                    fillOpacity: p.stack ? 20 : 5,
                    stacking: { mode: p.stack ? 'normal' : 'none' },
                  },
                }
              : {}),
          },
          overrides: [],
        },
        options:
          p.type === 'stat'
            ? { reduceOptions: { calcs: ['lastNotNull'] }, colorMode: 'background' }
            : p.type === 'heatmap'
              ? { calculate: false, yAxis: { unit: p.unit } }
              : { legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi' } },
        targets: p.targets.map((t, i) => ({
          refId: String.fromCharCode(65 + i),
          datasource: DS,
          expr: t.expr,
          legendFormat: t.legend,
          ...(p.type === 'heatmap' ? { format: 'heatmap' } : {}),
        })),
      });
      x += w;
    }
    y += 8;
  }
  return {
    __inputs: [],
    title: 'NGINX Agent',
    uid: 'nginx-agent-ts',
    description: "nginx, host and agent metrics on the agent's own metric names (docs/metrics.md).",
    tags: ['nginx', 'nginx-agent'],
    timezone: 'browser',
    schemaVersion: 39,
    version: 1,
    editable: true,
    refresh: '30s',
    time: { from: 'now-1h', to: 'now' },
    templating: {
      list: [
        {
          name: 'datasource',
          label: 'Prometheus',
          type: 'datasource',
          query: 'prometheus',
          current: {},
          hide: 0,
          refresh: 1,
        },
        {
          name: 'instance',
          label: 'agent',
          type: 'query',
          datasource: DS,
          query: { query: 'label_values(agent_bus_published_total, instance)', refId: 'instance' },
          definition: 'label_values(agent_bus_published_total, instance)',
          includeAll: true,
          multi: true,
          allValue: '.*',
          current: { text: 'All', value: '$__all' },
          refresh: 2,
          sort: 1,
        },
        {
          name: 'nginx_instance_id',
          label: 'nginx instance',
          type: 'query',
          datasource: DS,
          query: {
            query: 'label_values(nginx_up{instance=~"$instance"}, nginx_instance_id)',
            refId: 'nginx_instance_id',
          },
          definition: 'label_values(nginx_up{instance=~"$instance"}, nginx_instance_id)',
          includeAll: true,
          multi: true,
          allValue: '.*',
          current: { text: 'All', value: '$__all' },
          refresh: 2,
          sort: 1,
        },
      ],
    },
    annotations: { list: [] },
    panels,
  };
}

writeFileSync(OUT, `${JSON.stringify(build(), null, 2)}\n`);
process.stdout.write(`wrote ${OUT}\n`);
