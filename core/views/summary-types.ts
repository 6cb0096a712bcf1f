/**
 * The shape of `GET /v1/summary`: what `agent status`, `agent top` and the dashboard show at a glance.
 * Types only, so the CLI reads it without loading the daemon's modules.
 */

export interface SummaryEvent {
  id: number;
  time: string;
  severity: string;
  source: string;
  kind: string;
  summary: string;
  state?: string;
}

export interface SummaryFinding {
  /** Where it comes from: the parser, `nginx -t`, or the lint topic (`lint.nginx.config`). */
  source: string;
  severity: string;
  file: string | null;
  line: number | null;
  message: string;
  rule?: string;
}

/** The most requested URIs of an instance lately, from its access logs (paths without query string). */
export interface SummaryTopUris {
  /** The window the counts cover, at most. */
  window_seconds: number;
  /** Requests in the window across the instance's access logs (every URI). */
  requests: number;
  /** The access logs counted. */
  logs: string[];
  /** Most requested first; counts are upper bounds once a log sees more than 64 distinct URIs. */
  uris: { uri: string; requests: number; share: number; errors_5xx: number }[];
}

export interface SummaryInstance {
  id: string;
  /** nginx.up: true, false, or null when not read yet. */
  up: boolean | null;
  /** Discovery's health (HEALTHY, DEGRADED, UNHEALTHY), or `gone` after the master exited. */
  health: string;
  health_reason?: string;
  version: string | null;
  pid: number | null;
  conf_path: string | null;
  /** Requests per second, averaged over the last minute. */
  requests_per_second: number | null;
  /** Share of responses (0..1) by status class over the last minute, from the access logs. */
  status_mix: Record<string, number> | null;
  request_time_p50_seconds: number | null;
  request_time_p95_seconds: number | null;
  /** Connections now, by state (active, reading, writing, waiting). */
  connections: Record<string, number> | null;
  /** Top URIs over the last minute, or null when no access log with the request in its format is read. */
  top_uris: SummaryTopUris | null;
  config: {
    version: string | null;
    status: string | null;
    files: string[];
    last_test: { ok: boolean; version: string } | null;
    /** Parse errors, `nginx -t` messages and lint findings, by file and line. */
    findings: SummaryFinding[];
  };
  /** Certificates, soonest expiry first. */
  certificates: { path: string; subject?: string; expires_at: string; days_left: number }[];
}

export interface Summary {
  agent: {
    version: string;
    state: string;
    hostname: string;
    started_at: string;
    uptime_seconds: number;
  };
  nginx: SummaryInstance[];
  host: {
    cpu_utilization: number | null;
    memory_utilization: number | null;
    /** The fullest mount. */
    filesystem: { mountpoint: string; utilization: number } | null;
    network_bytes_per_second: { receive: number; transmit: number } | null;
  };
  plugins: { name: string; state: string; reason?: string }[];
  /** The newest warning-or-worse events, newest first (empty until the events pipeline runs). */
  events: SummaryEvent[];
  /** Whether the events pipeline is there (GET /v1/events). */
  events_available: boolean;
  history: { interval_ms: number; points_per_series: number; series: number; ring_bytes: number };
}
