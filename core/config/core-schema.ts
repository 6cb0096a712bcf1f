/**
 * The agent's own config sections. Plugin sections are added from each built-in's schema
 * (see rootSchema in load.ts). Defaults live here, next to the keys, and in config/agent.yaml.
 */
import { bool, describeValue, duration, int, list, object, oneOf, record, string, type Schema } from './schema.js';

/** NGINX Agent v3's label rule: applies to keys and values of `agent.labels`. */
export const LABEL_PATTERN = /^[a-zA-Z0-9]([a-zA-Z0-9._-]{0,254}[a-zA-Z0-9])?$/;
const LABEL_HELP =
  'letters, digits, ".", "_" and "-", starting and ending with a letter or digit, at most 256 characters';

export const coreShape = {
  log: object(
    {
      level: oneOf(['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const, {
        default: 'info',
        description: 'Log level.',
      }),
      format: oneOf(['auto', 'json', 'pretty'] as const, {
        default: 'auto',
        description:
          'auto: human-readable when stdout is a terminal, JSON otherwise (what systemd and Docker collect).',
      }),
      file: string({ default: '', description: 'Also write JSON logs to this file ("" = stdout only).' }),
    },
    { description: 'Logging (pino).' },
  ),
  api: object(
    {
      enabled: bool({ default: true, description: 'Serve the local HTTP API (/health, /metrics, /v1/...).' }),
      host: string({
        default: '127.0.0.1',
        description: 'Address the API binds to. Keep it on loopback unless a token is set.',
      }),
      port: int({
        default: 8039,
        min: 0,
        max: 65535,
        description: 'API port (0 picks a free port, printed at start).',
      }),
      token: string({ default: '', description: 'Bearer token required on every endpoint but /health ("" = none).' }),
      token_file: string({ default: '', description: 'File holding the bearer token (wins over token).' }),
      dashboard: trueFalseOrAuto(
        'Serve the dashboard page at / (its data endpoints need the token when one is set). auto: on only when api.host is a loopback address.',
      ),
    },
    { description: 'Local HTTP API.' },
  ),
  bus: object(
    {
      queue_size: int({
        default: 10_000,
        min: 1,
        max: 10_000_000,
        description: 'Messages each subscriber may have queued.',
      }),
      overflow: oneOf(['drop_oldest', 'drop_newest'] as const, {
        default: 'drop_oldest',
        description:
          'When a queue is full: drop the oldest queued message (default) or refuse the new one. Drops are counted in agent_bus_dropped_total.',
      }),
    },
    { description: 'Message bus.' },
  ),
  prometheus: object(
    {
      exporter_compat: bool({
        default: false,
        description:
          "Also serve nginx-prometheus-exporter's exact families on /metrics (nginx_up, nginx_connections_*, nginx_http_requests_total) so its Grafana dashboard works unchanged. Its two connection counters lack _total, which promtool's linter flags.",
      }),
    },
    { description: 'Prometheus exposition on /metrics.' },
  ),
  agent: object(
    {
      shutdown_timeout: duration({
        default: '5s',
        min: '0s',
        max: '10m',
        description: 'How long shutdown waits for queues to drain and plugins to close.',
      }),
      labels: record(string({ pattern: LABEL_PATTERN, patternHelp: LABEL_HELP }), {
        default: {},
        keyPattern: LABEL_PATTERN,
        keyHelp: LABEL_HELP,
        description: 'Labels added as resource attributes to everything exported.',
      }),
      state_dir: string({
        default: '',
        description:
          'Directory for what must survive a restart of the agent (the position reached in each log). "" = /var/lib/nginx-agent when writable (the systemd unit and the image create it), else $XDG_STATE_HOME/nginx-agent or ~/.local/state/nginx-agent.',
      }),
    },
    { description: 'Agent-wide settings.' },
  ),
  events: object(
    {
      buffer_size: int({
        default: 10_000,
        min: 1,
        max: 1_000_000,
        description: "Events kept in memory for GET /v1/events, the stream's Last-Event-ID resume and `agent events`.",
      }),
      log_repeat_interval: duration({
        default: '10m',
        min: '0s',
        max: '24h',
        description:
          'Repeats of an event with the same key (and state) within this interval are folded into one log line with a count.',
      }),
      queue_size: int({
        default: 10_000,
        min: 1,
        max: 1_000_000,
        description:
          'Events each sink (log, Alertmanager, OTLP) may have queued; beyond it events are dropped and counted in agent_events_dropped_total{sink}.',
      }),
      stream_queue_size: int({
        default: 10_000,
        min: 1,
        max: 1_000_000,
        description:
          'Events one /v1/events/stream client may have unsent; a client that falls further behind is disconnected with a final event saying why.',
      }),
      alertmanager: object(
        {
          url: string({
            default: '',
            description:
              'Prometheus Alertmanager base URL (http://host:9093); firing conditions are POSTed to <url>/api/v2/alerts ("" = off).',
          }),
          min_severity: oneOf(['info', 'warning', 'error', 'critical'] as const, {
            default: 'warning',
            description: 'Least severe condition sent to Alertmanager.',
          }),
          resend_interval: duration({
            default: '1m',
            min: '1s',
            max: '1h',
            description:
              'Firing alerts are re-sent this often; each carries endsAt = now + 4 x this, so Alertmanager resolves an alert the agent stopped sending.',
          }),
          timeout: duration({ default: '5s', min: '100ms', max: '1m', description: 'Timeout of one POST.' }),
        },
        { description: 'Prometheus Alertmanager sink (API v2).' },
      ),
    },
    {
      description:
        'The event pipeline: ring buffer, log, /v1/events and its stream, Alertmanager (see README "Events and alerts").',
    },
  ),
  wasm: object(
    {
      enabled: bool({
        default: true,
        description: 'Load Extism Wasm plugins from the directories below (see wasm-plugins/README.md).',
      }),
      dirs: list(string(), {
        default: [],
        description:
          "Directories of Wasm plugins; each folder directly inside one (with a plugin.yaml) is a plugin. [] = the checkout's wasm-plugins folder when it exists. --plugins-dir DIR (repeatable) sets it.",
      }),
      watch: bool({
        default: true,
        description:
          'Hot reload: load a changed .wasm or plugin.yaml beside the running version and swap it in; a bad new version is refused.',
      }),
      reload_debounce: duration({
        default: '200ms',
        min: '0s',
        max: '1m',
        description: 'Quiet time after the last file event in a plugin folder before it is reloaded.',
      }),
      batch_size: int({
        default: 256,
        min: 1,
        max: 100_000,
        description:
          'Messages per call of a plugin: a batch is sent when it is full or batch_wait after its first message.',
      }),
      batch_wait: duration({
        default: '10ms',
        min: '0s',
        max: '10s',
        description: 'Longest a message waits for its batch to fill.',
      }),
      max_batches_in_flight: int({
        default: 4,
        min: 1,
        max: 1000,
        description:
          "Batches per plugin waiting in the worker; beyond it the plugin's bus queue holds messages (bus.overflow applies, drops counted).",
      }),
      timeout_ms: int({
        default: 1000,
        min: 1,
        max: 600_000,
        description:
          'Default limit of one call (plugin.yaml timeout_ms wins); past it the worker is restarted and the call counted as a timeout.',
      }),
      memory_mb: int({
        default: 64,
        min: 1,
        max: 2048,
        description:
          "Default cap on a plugin's linear memory (plugin.yaml memory_mb wins); a plugin that ends a call above it is stopped.",
      }),
      failures_before_quarantine: int({
        default: 3,
        min: 1,
        max: 1000,
        description: 'Failed calls in a row (traps, errors, timeouts) that put a plugin in quarantine.',
      }),
      quarantine_backoff: duration({
        default: '5s',
        min: '0s',
        max: '1h',
        description: 'First quarantine length; it doubles with each quarantine until a call succeeds.',
      }),
      quarantine_backoff_max: duration({ default: '5m', min: '0s', max: '24h', description: 'Longest quarantine.' }),
      max_publishes_per_call: int({
        default: 10_000,
        min: 1,
        max: 1_000_000,
        description: 'Messages one call may publish; the rest are refused and counted.',
      }),
    },
    { description: 'Extism WebAssembly plugins: sandboxed, in one worker thread, hot-reloaded.' },
  ),
};

/** `true`, `false`, or `auto` (the default): for switches whose default depends on other keys. */
function trueFalseOrAuto(description: string): Schema<boolean | 'auto'> {
  return {
    kind: 'true, false or auto',
    description,
    default: 'auto',
    fromEnv: (t) => (/^(true|1|yes|on)$/i.test(t) ? true : /^(false|0|no|off)$/i.test(t) ? false : t),
    parse(value, path, issues) {
      if (value === undefined || value === null || value === 'auto') return 'auto';
      if (typeof value === 'boolean') return value;
      issues.push({ path, message: `must be true, false or auto, got ${describeValue(value)}` });
      return 'auto';
    },
  };
}

/** Whether `api.dashboard` is on: `auto` means on when the API listens on loopback only. */
export function dashboardEnabled(setting: boolean | 'auto', host: string): boolean {
  if (setting !== 'auto') return setting;
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
