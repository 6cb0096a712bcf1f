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
      token_file: string({
        default: '',
        file: 'readable',
        description: 'File holding the bearer token (wins over token); it must exist and be readable at start.',
      }),
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
        default: '10s',
        min: '0s',
        max: '10m',
        description:
          'How long shutdown may take (drain the queues, close the plugins): past it, what is still running is logged and the agent exits 1. A second SIGTERM or SIGINT exits at once.',
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
          'Messages per call of a plugin: a batch is sent when it is full or batch_wait after its first message (at once when the plugin is quiet: nothing in flight, no batch within batch_wait).',
      }),
      batch_wait: duration({
        default: '10ms',
        min: '0s',
        max: '10s',
        description:
          'Longest a message waits for its batch to fill, and the least time between two calls of a plugin whose batches do not fill.',
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
  fleet: object(
    {
      enabled: bool({
        default: false,
        description: 'Join a fleet over NATS JetStream: inventory, events and commands (see core/fleet/README.md).',
      }),
      servers: list(string({ pattern: /^(nats|tls):\/\/\S+$/, patternHelp: 'a nats:// or tls:// URL' }), {
        default: ['nats://127.0.0.1:4222'],
        description: 'NATS server URLs; the client moves to the next one when one is down.',
      }),
      name: string({ default: '', description: 'Name of this agent in the fleet ("" = the host name).' }),
      user: string({ default: '', description: 'NATS user (with password_file).' }),
      password_file: string({ default: '', description: 'File holding the NATS password of user.' }),
      token_file: string({ default: '', description: 'File holding a NATS token.' }),
      creds_file: string({ default: '', description: 'NATS JWT credentials file (.creds).' }),
      nkey_seed_file: string({ default: '', description: 'File holding an NKey seed (SU...).' }),
      tls: object(
        {
          ca_file: string({ default: '', description: 'CA bundle to verify the server ("" = system CAs).' }),
          cert_file: string({ default: '', description: 'Client certificate (mutual TLS).' }),
          key_file: string({ default: '', description: 'Key of the client certificate.' }),
        },
        { description: 'TLS to the NATS servers (used when a file is set or a URL is tls://).' },
      ),
      subject_prefix: string({
        default: 'nginx_agent',
        pattern: /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/,
        patternHelp: 'NATS subject tokens (letters, digits, "_" and "-") separated by dots',
        description: 'First tokens of every subject: <prefix>.events.<id>.<kind>, <prefix>.cmd.<id>.<verb>.',
      }),
      heartbeat_interval: duration({
        default: '15s',
        min: '100ms',
        max: '1h',
        description: 'How often the inventory entry is rewritten; silent for 3 intervals, an agent shows as lost.',
      }),
      outbox_size: int({
        default: 10_000,
        min: 1,
        max: 10_000_000,
        description: 'Events kept while NATS is unreachable; past it the oldest are dropped (counted and logged).',
      }),
    },
    { description: 'Fleet: manage many agents from one place over NATS JetStream (off by default).' },
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
