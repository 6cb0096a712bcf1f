/**
 * The agent's own config sections. Plugin sections are added from each built-in's schema
 * (see rootSchema in load.ts). Defaults live here, next to the keys, and in config/agent.yaml.
 */
import { bool, duration, int, object, oneOf, record, string } from './schema.js';

/** NGINX Agent v3's label rule: applies to keys and values of `agent.labels`. */
export const LABEL_PATTERN = /^[a-zA-Z0-9]([a-zA-Z0-9._-]{0,254}[a-zA-Z0-9])?$/;
const LABEL_HELP = 'letters, digits, ".", "_" and "-", starting and ending with a letter or digit, at most 256 characters';

export const coreShape = {
  log: object(
    {
      level: oneOf(['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const, { default: 'info', description: 'Log level.' }),
      format: oneOf(['auto', 'json', 'pretty'] as const, {
        default: 'auto',
        description: 'auto: human-readable when stdout is a terminal, JSON otherwise (what systemd and Docker collect).',
      }),
      file: string({ default: '', description: 'Also write JSON logs to this file ("" = stdout only).' }),
    },
    { description: 'Logging (pino).' },
  ),
  api: object(
    {
      enabled: bool({ default: true, description: 'Serve the local HTTP API (/health, /metrics, /v1/...).' }),
      host: string({ default: '127.0.0.1', description: 'Address the API binds to. Keep it on loopback unless a token is set.' }),
      port: int({ default: 8039, min: 0, max: 65535, description: 'API port (0 picks a free port, printed at start).' }),
      token: string({ default: '', description: 'Bearer token required on every endpoint but /health ("" = none).' }),
      token_file: string({ default: '', description: 'File holding the bearer token (wins over token).' }),
    },
    { description: 'Local HTTP API.' },
  ),
  bus: object(
    {
      queue_size: int({ default: 10_000, min: 1, max: 10_000_000, description: 'Messages each subscriber may have queued.' }),
      overflow: oneOf(['drop_oldest', 'drop_newest'] as const, {
        default: 'drop_oldest',
        description: 'When a queue is full: drop the oldest queued message (default) or refuse the new one. Drops are counted in agent_bus_dropped_total.',
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
      shutdown_timeout: duration({ default: '5s', min: '0s', max: '10m', description: 'How long shutdown waits for queues to drain and plugins to close.' }),
      labels: record(string({ pattern: LABEL_PATTERN, patternHelp: LABEL_HELP }), {
        default: {},
        keyPattern: LABEL_PATTERN,
        keyHelp: LABEL_HELP,
        description: 'Labels added as resource attributes to everything exported.',
      }),
    },
    { description: 'Agent-wide settings.' },
  ),
};
