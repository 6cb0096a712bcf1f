/**
 * Types shared by the NGINX discovery, config and metrics plugins, and carried on the bus.
 * The parser's output has crossplane's JSON shape so existing tooling reads it.
 */

/** One directive in crossplane's `parsed[]` shape. */
export interface ConfigDirective {
  directive: string;
  line: number;
  args: string[];
  /** Indexes into `config[]` of the files an `include` pulled in. */
  includes?: number[];
  block?: ConfigDirective[];
  /** Only for `#` comments when comments are requested (directive is then `#`). */
  comment?: string;
}

export interface ConfigFileError {
  line: number | null;
  error: string;
}

export interface ConfigFile {
  file: string;
  status: 'ok' | 'failed';
  errors: ConfigFileError[];
  parsed: ConfigDirective[];
}

export interface ConfigPayloadError extends ConfigFileError {
  file: string;
}

/** crossplane `parse` output. */
export interface ConfigPayload {
  status: 'ok' | 'failed';
  errors: ConfigPayloadError[];
  config: ConfigFile[];
}

export type NginxHealth = 'HEALTHY' | 'DEGRADED' | 'UNHEALTHY';

export interface NginxWorker {
  pid: number;
  /** Process start time in clock ticks since boot (from /proc/PID/stat): identifies a generation. */
  startTicks: number;
}

export interface NginxInstance {
  /** Stable id: sha256 of binary path, config path and prefix (hex, 16 chars). */
  id: string;
  pid: number;
  binary: string;
  version: string;
  plus: boolean;
  prefix: string;
  /** Absolute path of the main config file. */
  confPath: string;
  /** `-g` directives from the master's command line, if any. */
  globalDirectives?: string;
  configureArgs: string[];
  modules: string[];
  workers: NginxWorker[];
  health: NginxHealth;
  /** Why the health is not HEALTHY. */
  healthReason?: string;
}

export interface NginxInstanceEvent {
  instance: NginxInstance;
  /** For `nginx.instance.health`: the health before the change. */
  previousHealth?: NginxHealth;
}

export interface ServerInfo {
  file: string;
  line: number;
  listen: string[];
  serverNames: string[];
  ssl: boolean;
  locations: { path: string; modifier?: string; file: string; line: number }[];
}

export interface UpstreamInfo {
  name: string;
  file: string;
  line: number;
  servers: { address: string; params: string[] }[];
}

export interface LogTarget {
  /** Destination as written, made absolute for files. */
  path: string;
  file: string;
  line: number;
  /** False for `syslog:`, `/dev/stdout`, `/dev/stderr`, `off`: named in status, never tailed. */
  tailable: boolean;
  reason?: string;
}

export interface AccessLogInfo extends LogTarget {
  /** Name of the log_format (`combined` when none is given). */
  formatName: string;
  /** The format string with its parts joined. */
  format: string;
}

export interface ErrorLogInfo extends LogTarget {
  level: string;
}

export interface StatusEndpoint {
  /** URLs to try, best first (listen address + server_name + location). */
  urls: string[];
  file: string;
  line: number;
}

export interface CertificateInfo {
  path: string;
  file: string;
  line: number;
  subject?: string;
  issuer?: string;
  /** Unix ms. */
  notAfter?: number;
  error?: string;
}

export interface ConfigAnalysis {
  servers: ServerInfo[];
  upstreams: UpstreamInfo[];
  accessLogs: AccessLogInfo[];
  errorLogs: ErrorLogInfo[];
  logFormats: Record<string, string>;
  stubStatus: StatusEndpoint[];
  plusApi: (StatusEndpoint & { write: boolean })[];
  certificates: CertificateInfo[];
}

export interface ConfigFileInfo {
  path: string;
  sha256: string;
  size: number;
}

export interface NginxConfigSnapshot {
  instanceId: string;
  confPath: string;
  prefix: string;
  /** sha256 over the files in stable (sorted path) order. */
  version: string;
  files: ConfigFileInfo[];
  payload: ConfigPayload;
  analysis: ConfigAnalysis;
}

export interface NginxConfigChanged extends NginxConfigSnapshot {
  previousVersion?: string;
  added: string[];
  removed: string[];
  changed: string[];
}

export interface NginxTestMessage {
  level: string;
  text: string;
  file?: string;
  line?: number;
}

export interface NginxConfigValidated {
  instanceId: string;
  version: string;
  ok: boolean;
  exitCode: number | null;
  messages: NginxTestMessage[];
  /**
   * Set when nginx -t could not judge the config here (its binary cannot run, or a file it must open
   * is not accessible to the agent's user): then `ok` is false, and this, not the config, is why.
   */
  untested?: string;
}

export interface ApplyStep {
  step: string;
  ok: boolean;
  detail?: string;
  durationMs: number;
}

export interface NginxConfigApplied {
  instanceId: string;
  ok: boolean;
  rolledBack: boolean;
  steps: ApplyStep[];
  version?: string;
}

export interface NginxErrorLogEvent {
  instanceId: string;
  file: string;
  level: string;
  message: string;
  /** Unix ms parsed from the line, or read time. */
  time: number;
}

/** One URI's counts in `nginx.access.top`. */
export interface AccessTopUri {
  /** The request path without the query string, as logged (unescaped). */
  uri: string;
  requests: number;
  errors5xx: number;
}

/**
 * The most requested URIs of one access log over its recent window (published by nginx-logs on
 * each poll that read lines, and when the window moves on). Counts come from a bounded
 * space-saving counter: exact while a log sees few distinct URIs, upper bounds beyond.
 */
export interface AccessTop {
  /** The nginx instance (`static` for the logs of the nginx_logs config). */
  instanceId: string;
  logPath: string;
  /** The window the counts cover, at most (between half of it and all of it). */
  windowSeconds: number;
  /** Requests counted in the window, every URI (the denominator of a URI's share). */
  requests: number;
  /** Most requested first, at most the counter's capacity. */
  uris: AccessTopUri[];
}

export interface CertificateExpiring {
  instanceId: string;
  path: string;
  subject?: string;
  notAfter: number;
  secondsLeft: number;
}
