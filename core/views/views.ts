/**
 * The agent's views: the bounded history behind `GET /v1/series`, the at-a-glance `GET /v1/summary`
 * (read by `agent status`, `agent top` and the dashboard), and the dashboard page itself at `/`.
 */
import type { ApiRequest, ApiResponse, ApiRouter } from '../api/types.js';
import { ApiError } from '../api/types.js';
import type { Bus, Subscription } from '../bus/bus.js';
import type { EventLogReader } from '../events/types.js';
import type { MetricStoreReader } from '../metrics/store.js';
import type { PluginReport } from '../plugin/host.js';
import type { AgentInfo } from '../plugin/types.js';
import type { JobScheduler, ScheduledJob } from '../scheduler.js';
import { DashboardAssets } from './assets.js';
import { HistoryStore } from './history.js';
import { NGINX_VIEW_TOPICS, NginxViewState } from './nginx-state.js';
import { INSTANCE_ATTR, SAMPLED_METRICS, SERIES, SeriesSampler } from './sampler.js';
import type { Summary, SummaryInstance } from './summary-types.js';
import { TOP_URIS_TOPIC, TopUrisState } from './top-uris.js';

/** One hour of history. */
export const HISTORY_WINDOW_MS = 3_600_000;
/** Upper bound on series held (10 nginx instances use about 130). */
export const HISTORY_MAX_SERIES = 2_000;
const MINUTE_MS = 60_000;
/** An nginx instance that went away stays in the summary (as `gone`) this long. */
const GONE_KEPT_MS = 5 * MINUTE_MS;
const DAY_MS = 86_400_000;

export interface ViewsSettings {
  bus: Bus;
  store: MetricStoreReader;
  info: AgentInfo;
  plugins: () => PluginReport[];
  state: () => string;
  /** Sampling interval of the history (the collection interval). */
  intervalMs: number;
  /** The agent's scheduler: a sample shares the wake-up of the collections on the same interval. */
  scheduler?: JobScheduler;
  /** Serve the dashboard page at `/`. */
  dashboard: boolean;
  /** The events pipeline, when there is one. */
  events?: () => EventLogReader | undefined;
}

export class Views {
  readonly history: HistoryStore;
  readonly nginx = new NginxViewState();
  readonly topUris = new TopUrisState();
  readonly #sampler = new SeriesSampler(MINUTE_MS);
  readonly #settings: ViewsSettings;
  #timer: NodeJS.Timeout | undefined;
  #job: ScheduledJob | undefined;
  #subscription: Subscription | undefined;
  #assets: DashboardAssets | undefined;

  constructor(settings: ViewsSettings) {
    this.#settings = settings;
    this.history = new HistoryStore({
      intervalMs: settings.intervalMs,
      windowMs: HISTORY_WINDOW_MS,
      maxSeries: HISTORY_MAX_SERIES,
    });
    this.#subscription = settings.bus.subscribe(
      'views',
      [...NGINX_VIEW_TOPICS, TOP_URIS_TOPIC],
      (msg) => {
        if (msg.topic === 'nginx.access.top') this.topUris.handle(msg.data, msg.time);
        else this.nginx.handle(msg);
      },
      { queueSize: 1000 },
    );
  }

  start(): void {
    this.#stopSampling();
    const { scheduler, intervalMs } = this.#settings;
    if (scheduler) {
      this.#job = scheduler.every('views-history', intervalMs, () => this.sample());
      return;
    }
    this.#timer = setInterval(() => this.sample(), intervalMs);
    this.#timer.unref();
  }

  #stopSampling(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#job?.cancel();
    this.#job = undefined;
  }

  stop(): void {
    this.#stopSampling();
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
  }

  /** Takes one sample of the metric store into the history (the timer calls it every interval). */
  sample(now = Date.now()): void {
    this.history.record(now, this.#sampler.sample(this.#settings.store.publishedSnapshot(SAMPLED_METRICS), now));
    this.nginx.prune(now, GONE_KEPT_MS);
  }

  routes(api: ApiRouter): void {
    api.route('GET', '/v1/series', (req) => this.#series(req));
    api.route('GET', '/v1/summary', () => ({ status: 200, body: this.summary() }));
    if (!this.#settings.dashboard) return;
    this.#assets = new DashboardAssets();
    const assets = this.#assets;
    api.route('GET', '/', () => assets.response('index.html'));
    api.route('GET', '/dashboard/:file', (req) => assets.response(req.params.file));
  }

  #series(req: ApiRequest): ApiResponse {
    const name = req.query.get('name');
    if (!name)
      throw new ApiError(400, `query parameter "name" is required; series held: ${this.history.names().join(', ')}`, {
        names: this.history.names(),
      });
    const since = parseSince(req.query.get('since'));
    const match: Record<string, string> = {};
    const instance = req.query.get('instance');
    if (instance) match[INSTANCE_ATTR] = instance;
    return { status: 200, body: this.history.query(name, since, match) };
  }

  summary(now = Date.now()): Summary {
    const minuteAgo = now - MINUTE_MS;
    const h = this.history;
    const instances: SummaryInstance[] = this.nginx.instances().map((v) => {
      const attrs = { [INSTANCE_ATTR]: v.id };
      const up = h.latest(SERIES.up, attrs);
      const rates = h.values(SERIES.requestRate, attrs, minuteAgo);
      const mix: Record<string, number> = {};
      let total = 0;
      for (const s of h.query(SERIES.responseRate, minuteAgo, attrs).series) {
        const values = s.values.filter((x): x is number => x !== null);
        const sum = values.reduce((a, b) => a + b, 0);
        mix[s.attributes.status_range] = (mix[s.attributes.status_range] ?? 0) + sum;
        total += sum;
      }
      const quantiles = this.#sampler.quantilesOver(v.id);
      const connections: Record<string, number> = {};
      for (const c of h.latestAll(SERIES.connections))
        if (c.attributes[INSTANCE_ATTR] === v.id) connections[c.attributes.state] = c.value;
      const findings = [...v.parseErrors, ...(v.lastTest?.findings ?? []), ...v.lint];
      return {
        id: v.id,
        up: up === undefined ? null : up > 0,
        health: v.gone ? 'gone' : (v.instance?.health ?? 'unknown'),
        ...(v.instance?.healthReason ? { health_reason: v.instance.healthReason } : {}),
        version: v.instance?.version || null,
        pid: v.instance?.pid || null,
        conf_path: v.confPath ?? v.instance?.confPath ?? null,
        requests_per_second: rates.length ? round(rates.reduce((a, b) => a + b, 0) / rates.length, 3) : null,
        status_mix:
          total > 0 ? Object.fromEntries(Object.entries(mix).map(([k, x]) => [k, round(x / total, 4)])) : null,
        request_time_p50_seconds: quantiles ? round(quantiles.p50, 6) : null,
        request_time_p95_seconds: quantiles ? round(quantiles.p95, 6) : null,
        connections: Object.keys(connections).length ? connections : null,
        top_uris: this.topUris.forInstance(v.id, now),
        config: {
          version: v.configVersion ?? null,
          status: v.configStatus ?? null,
          files: v.files,
          last_test: v.lastTest ? { ok: v.lastTest.ok, version: v.lastTest.version } : null,
          findings,
        },
        certificates: [...v.certificates]
          .sort((a, b) => a.notAfter - b.notAfter)
          .map((c) => ({
            path: c.path,
            ...(c.subject ? { subject: c.subject } : {}),
            expires_at: new Date(c.notAfter).toISOString(),
            days_left: Math.floor((c.notAfter - now) / DAY_MS),
          })),
      };
    });
    const fullest = h
      .latestAll(SERIES.filesystem)
      .sort((a, b) => b.value - a.value)
      .at(0);
    const rx = h.latest(SERIES.networkIo, { direction: 'receive' });
    const tx = h.latest(SERIES.networkIo, { direction: 'transmit' });
    const events = this.#settings.events?.();
    const stats = h.stats();
    return {
      agent: {
        version: this.#settings.info.version,
        state: this.#settings.state(),
        hostname: this.#settings.info.hostname,
        started_at: new Date(this.#settings.info.startedAt).toISOString(),
        uptime_seconds: Math.round((now - this.#settings.info.startedAt) / 1000),
      },
      nginx: instances,
      host: {
        cpu_utilization: roundOrNull(h.latest(SERIES.cpu, {}), 4),
        memory_utilization: roundOrNull(h.latest(SERIES.memory, {}), 4),
        filesystem: fullest
          ? { mountpoint: fullest.attributes.mountpoint, utilization: round(fullest.value, 4) }
          : null,
        network_bytes_per_second:
          rx !== undefined || tx !== undefined ? { receive: round(rx ?? 0, 1), transmit: round(tx ?? 0, 1) } : null,
      },
      plugins: this.#settings
        .plugins()
        .map((p) => ({ name: p.name, state: p.state, ...(p.reason ? { reason: p.reason } : {}) })),
      events: events
        ? events
            .recent({ severity: 'warning', limit: 5 })
            .reverse()
            .map((e) => ({
              id: e.id,
              time: e.time,
              severity: e.severity,
              source: e.source,
              kind: e.kind,
              summary: e.summary,
              ...(e.state ? { state: e.state } : {}),
            }))
        : [],
      events_available: events !== undefined,
      history: {
        interval_ms: h.intervalMs,
        points_per_series: stats.capacity,
        series: stats.series,
        ring_bytes: stats.ringBytes,
      },
    };
  }
}

/** `since`: Unix ms, an RFC 3339 time, or a duration back from now (`15m`, `1h`, `30s`). */
export function parseSince(raw: string | null, now = Date.now()): number {
  if (raw === null || raw === '') return 0;
  if (/^\d+$/.test(raw)) return Number(raw);
  const ago = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(raw);
  if (ago) {
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[ago[2] as 'ms' | 's' | 'm' | 'h'];
    return now - Number(ago[1]) * unit;
  }
  const t = Date.parse(raw);
  if (Number.isNaN(t))
    throw new ApiError(
      400,
      `query parameter "since" must be Unix milliseconds, an RFC 3339 time or a duration such as 15m; got ${JSON.stringify(raw)}`,
    );
  return t;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function roundOrNull(x: number | undefined, digits: number): number | null {
  return x === undefined ? null : round(x, digits);
}
