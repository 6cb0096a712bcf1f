/**
 * `nginx-status`: reads every nginx instance's stub_status page (or, for NGINX Plus, its HTTP API)
 * on an interval and publishes `nginx.http.*` and `nginx.up`. Which URL to read comes from the
 * instance's parsed config (`nginx.config.changed`), unless the config section names one.
 * See README.md.
 */
import { bool, duration, object, string, type Infer } from '../../core/config/schema.js';
import { counter, gauge, type Metric } from '../../core/metrics/model.js';
import type { NginxInstance } from '../../core/nginx/types.js';
import { httpGet } from '../../core/http-get.js';
import { defineBuiltin } from '../../core/plugin/builtin.js';
import type { Plugin, PluginContext, PluginStatus } from '../../core/plugin/types.js';
import type { ScheduledJob } from '../../core/scheduler.js';
import type { Message } from '../../core/topics.js';
import { CounterTracker } from './counters.js';
import { plusMetrics, readPlusApi } from './plus.js';
import { D, parseStubStatus, stubStatusMetrics } from './stub-status.js';

const URL_PATTERN = /^https?:\/\/[^\s/]+(\/\S*)?$/;

export const schema = object(
  {
    enabled: bool({ default: true, description: 'Read stub_status (or the NGINX Plus API) of every nginx instance.' }),
    interval: duration({ default: '5s', min: '100ms', max: '1h', description: 'How often each instance is read.' }),
    timeout: duration({
      default: '3s',
      min: '100ms',
      max: '1m',
      description: 'Time limit of one HTTP request to nginx.',
    }),
    stub_status_url: string({
      default: '',
      pattern: URL_PATTERN,
      patternHelp: 'an http:// or https:// URL of a stub_status location, e.g. http://127.0.0.1/nginx_status',
      description:
        "stub_status URL to read instead of the one found in nginx's config ('' = find it in the config). With no nginx found in /proc, this URL is read on its own.",
    }),
    plus_api_url: string({
      default: '',
      pattern: URL_PATTERN,
      patternHelp: 'an http:// or https:// URL of an NGINX Plus `api` location, e.g. http://127.0.0.1:8080/api',
      description:
        "NGINX Plus API base URL to read instead of the `api` location found in the config ('' = find it in the config).",
    }),
    forget_after: duration({
      default: '5m',
      min: '0s',
      max: '7d',
      description:
        'After an instance is gone, nginx.up stays 0 this long (so alerts on nginx_up == 0 fire) before its series are dropped.',
    }),
  },
  { description: 'NGINX status metrics: stub_status, or the NGINX Plus HTTP API.' },
);

export type NginxStatusConfig = Infer<typeof schema>;

/** Target id used when `stub_status_url`/`plus_api_url` is read with no nginx discovered. */
export const CONFIGURED_TARGET = 'configured';

interface Target {
  id: string;
  instance?: NginxInstance;
  stubUrls: string[];
  plusUrls: string[];
  /** The stub_status URL that answered last: tried first. */
  workingUrl?: string;
  plusVersion?: number;
  counters: CounterTracker;
  mode?: 'stub_status' | 'plus';
  /** Unix ms when discovery reported the instance gone. */
  goneAt?: number;
  up?: boolean;
  lastError?: string;
  lastOk?: number;
  loggedError?: string;
  loggedNoUrl?: boolean;
  inflight?: Promise<void>;
  /** nginx's version from the `Server` header of its stub_status answers (`server_tokens on`, the default). */
  serverVersion?: string;
}

export class NginxStatusPlugin implements Plugin<NginxStatusConfig> {
  readonly name = 'nginx-status';
  #ctx!: PluginContext<NginxStatusConfig>;
  #config!: NginxStatusConfig;
  readonly #targets = new Map<string, Target>();
  #job: ScheduledJob | undefined;
  #running: Promise<void> | undefined;
  readonly #scrapes = { ok: 0, error: 0 };
  #startedAt = Date.now();

  subscriptions(): readonly string[] {
    return ['nginx.instance.*', 'nginx.config.changed'];
  }

  init(ctx: PluginContext<NginxStatusConfig>): void {
    this.#ctx = ctx;
    this.#config = ctx.config;
    this.#startedAt = Date.now();
    this.#startTimer();
    ctx.signal.addEventListener('abort', () => this.#job?.cancel(), { once: true });
  }

  #startTimer(): void {
    this.#job?.cancel();
    this.#job = this.#ctx.scheduler.every('nginx-status', this.#config.interval, () => this.scrapeAll());
  }

  reconfigure(config: NginxStatusConfig): void {
    this.#config = config;
    for (const t of this.#targets.values()) t.workingUrl = undefined;
    this.#startTimer();
  }

  #target(id: string): Target {
    let t = this.#targets.get(id);
    if (!t) {
      t = { id, stubUrls: [], plusUrls: [], counters: new CounterTracker(() => Date.now()) };
      this.#targets.set(id, t);
    }
    return t;
  }

  process(msg: Message): void {
    switch (msg.topic) {
      case 'nginx.instance.added':
      case 'nginx.instance.reloaded':
      case 'nginx.instance.health': {
        const i = msg.data.instance;
        const t = this.#target(i.id);
        const restarted = t.instance !== undefined && t.instance.pid !== i.pid;
        t.instance = i;
        t.goneAt = undefined;
        if (restarted) t.counters = new CounterTracker(() => Date.now());
        if (msg.topic === 'nginx.instance.added') {
          this.#dropConfigured();
          if (restarted || t.up === false) void this.#scrape(t);
        }
        return;
      }
      case 'nginx.instance.removed': {
        const t = this.#targets.get(msg.data.instance.id);
        if (t) t.goneAt = Date.now();
        return;
      }
      case 'nginx.config.changed': {
        const a = msg.data.analysis;
        const t = this.#target(msg.data.instanceId);
        t.stubUrls = urlsOf(a?.stubStatus);
        t.plusUrls = urlsOf(a?.plusApi);
        t.workingUrl = undefined;
        if (
          t.stubUrls.length === 0 &&
          t.plusUrls.length === 0 &&
          !this.#config.stub_status_url &&
          !this.#config.plus_api_url &&
          !t.loggedNoUrl
        ) {
          t.loggedNoUrl = true;
          this.#ctx.logger.info(
            { instance: t.id, confPath: msg.data.confPath },
            `no stub_status location in ${msg.data.confPath}: no nginx.http.* status metrics for ${t.id}. Add \`location = /nginx_status { stub_status; allow 127.0.0.1; deny all; }\` to a server, or set nginx_status.stub_status_url`,
          );
        }
        this.#dropConfigured();
        void this.#scrape(t);
        return;
      }
      default:
        return;
    }
  }

  #dropConfigured(): void {
    if (!this.#targets.has(CONFIGURED_TARGET)) return;
    this.#targets.delete(CONFIGURED_TARGET);
    this.#publish(CONFIGURED_TARGET, [], true);
  }

  /** Reads every target once (the timer's tick; tests call it to count scrapes exactly). */
  scrapeAll(): Promise<void> {
    this.#running ??= this.#scrapeAll().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #scrapeAll(): Promise<void> {
    if (this.#ctx.signal.aborted) return;
    const now = Date.now();
    const discovered = [...this.#targets.values()].filter((t) => t.id !== CONFIGURED_TARGET);
    if (discovered.length === 0 && (this.#config.stub_status_url || this.#config.plus_api_url))
      this.#target(CONFIGURED_TARGET);
    for (const t of [...this.#targets.values()]) {
      if (t.goneAt !== undefined && now - t.goneAt >= this.#config.forget_after) {
        this.#targets.delete(t.id);
        this.#publish(t.id, [], true);
      }
    }
    await Promise.all([...this.#targets.values()].map((t) => this.#scrape(t)));
    this.#publishSelf();
  }

  #scrape(t: Target): Promise<void> {
    t.inflight ??= this.#scrapeOne(t).finally(() => {
      t.inflight = undefined;
    });
    return t.inflight;
  }

  async #scrapeOne(t: Target): Promise<void> {
    const c = this.#config;
    const plusUrls = c.plus_api_url ? [c.plus_api_url] : t.plusUrls;
    const stubUrls = c.stub_status_url
      ? [c.stub_status_url]
      : t.workingUrl
        ? [t.workingUrl, ...t.stubUrls.filter((u) => u !== t.workingUrl)]
        : t.stubUrls;
    // An explicit plus_api_url is read whatever -V said; a found `api` location only on Plus.
    const plus = plusUrls.length > 0 && (c.plus_api_url !== '' || (t.instance?.plus ?? true));
    if (!plus && stubUrls.length === 0) return; // nothing to read yet (status() says what to add)
    const errors: string[] = [];
    const now = Date.now();
    if (plus) {
      for (const base of plusUrls) {
        try {
          const r = await readPlusApi(base, c.timeout, t.plusVersion);
          t.plusVersion = r.version;
          this.#ok(t, 'plus', plusMetrics(r.data, t.counters, now));
          if (r.errors.length && t.loggedError !== r.errors.join()) {
            t.loggedError = r.errors.join();
            this.#ctx.logger.warn(
              { instance: t.id, errors: r.errors },
              `NGINX Plus API ${base}: some endpoints failed (left out): ${r.errors.join('; ')}`,
            );
          }
          return;
        } catch (err) {
          t.plusVersion = undefined;
          errors.push((err as Error).message);
        }
      }
    }
    for (const url of stubUrls) {
      try {
        const res = await httpGet(url, { timeoutMs: c.timeout });
        const text = res.body;
        if (res.status !== 200) throw new Error(`GET ${url}: HTTP ${res.status}`);
        let s;
        try {
          s = parseStubStatus(text);
        } catch (err) {
          throw new Error(`GET ${url}: ${(err as Error).message}`);
        }
        t.workingUrl = url;
        this.#noteServerVersion(t, typeof res.headers.server === 'string' ? res.headers.server : null);
        this.#ok(t, 'stub_status', stubStatusMetrics(s, t.counters, now));
        return;
      } catch (err) {
        const e = err as Error & { code?: string };
        errors.push(
          e.name === 'TimeoutError'
            ? `GET ${url}: no answer within ${c.timeout} ms`
            : e.message.startsWith('GET ')
              ? e.message
              : `GET ${url}: ${e.code ?? e.message}`,
        );
      }
    }
    this.#fail(t, errors.join('; '));
  }

  /**
   * Where `nginx -V` cannot run (a sidecar without CAP_SYS_PTRACE), the instance has no version: the
   * `Server` header of stub_status gives it (said once, and in this plugin's status).
   */
  #noteServerVersion(t: Target, server: string | null): void {
    const version = server ? /^nginx\/(\S+)/.exec(server)?.[1] : undefined;
    if (!version || version === t.serverVersion) return;
    t.serverVersion = version;
    if (t.instance && !t.instance.version)
      this.#ctx.logger.info(
        { instance: t.id, version },
        `nginx ${t.id} is version ${version} (from the Server header of stub_status; nginx -V could not run)`,
      );
  }

  #ok(t: Target, mode: Target['mode'], metrics: Metric[]): void {
    this.#scrapes.ok++;
    t.counters.sweep();
    t.mode = mode;
    t.up = true;
    t.lastOk = Date.now();
    if (t.lastError !== undefined) this.#ctx.logger.info({ instance: t.id }, `nginx status of ${t.id} readable again`);
    t.lastError = undefined;
    t.loggedError = undefined;
    this.#publish(t.id, metrics);
  }

  #fail(t: Target, error: string): void {
    this.#scrapes.error++;
    if (t.loggedError !== error) {
      t.loggedError = error;
      this.#ctx.logger.warn(
        { instance: t.id, error },
        `cannot read nginx status of ${t.id}: ${error} (nginx.up is 0; counted in agent_nginx_status_scrapes_total{outcome="error"})`,
      );
    }
    t.lastError = error;
    // Counters of a status page that does not answer are not current: drop them, keep nginx.up 0.
    if (t.up !== false) this.#publish(t.id, [], true);
    t.up = false;
    this.#publish(t.id, [gauge(D.up, [{ attributes: {}, value: 0 }])]);
  }

  #publish(id: string, metrics: Metric[], final = false): void {
    if (this.#ctx.signal.aborted && !final) return;
    this.#ctx.bus.publish('metrics', {
      source: `nginx-status:${id}`,
      time: Date.now(),
      interval: this.#config.interval,
      ...(id === CONFIGURED_TARGET ? {} : { resource: { 'nginx.instance.id': id } }),
      metrics,
      ...(final ? { final: true } : {}),
    });
  }

  #publishSelf(): void {
    this.#ctx.bus.publish('metrics', {
      source: this.name,
      time: Date.now(),
      interval: this.#config.interval,
      metrics: [
        counter(
          {
            name: 'agent.nginx.status.scrapes',
            unit: '{scrape}',
            description: 'Reads of stub_status or the Plus API, by outcome (ok, error).',
          },
          [
            { attributes: { outcome: 'ok' }, value: this.#scrapes.ok, startTime: this.#startedAt },
            { attributes: { outcome: 'error' }, value: this.#scrapes.error, startTime: this.#startedAt },
          ],
        ),
      ],
    });
  }

  status(): PluginStatus {
    const targets = [...this.#targets.values()].map((t) => {
      const plusUrls = this.#config.plus_api_url ? [this.#config.plus_api_url] : t.plusUrls;
      const stubUrls = this.#config.stub_status_url ? [this.#config.stub_status_url] : t.stubUrls;
      const none = plusUrls.length === 0 && stubUrls.length === 0;
      return {
        instance: t.id,
        ...(t.mode ? { mode: t.mode } : {}),
        ...(t.workingUrl ? { url: t.workingUrl } : {}),
        ...(t.serverVersion ? { nginx_version: t.serverVersion } : {}),
        up: t.up ?? null,
        ...(t.lastOk ? { last_success: new Date(t.lastOk).toISOString() } : {}),
        ...(t.lastError ? { last_error: t.lastError } : {}),
        ...(t.goneAt ? { gone_since: new Date(t.goneAt).toISOString() } : {}),
        ...(none
          ? {
              hint: `no stub_status location known${t.instance ? ` in ${t.instance.confPath}` : ''}: add \`location = /nginx_status { stub_status; allow 127.0.0.1; deny all; }\` to a server, or set nginx_status.stub_status_url`,
            }
          : {}),
      };
    });
    const down = targets.filter((t) => t.up === false && !('gone_since' in t));
    const details = { targets, scrapes_ok: this.#scrapes.ok, scrapes_failed: this.#scrapes.error };
    if (down.length)
      return {
        state: 'degraded',
        reason: `cannot read the status of ${down.map((d) => d.instance).join(', ')}: ${down[0].last_error}`,
        details,
      };
    // `starting` while an instance with a known status URL has not been read once yet.
    const unread = targets.some((t) => t.up === null && !('hint' in t) && !('gone_since' in t));
    return { state: unread ? 'starting' : 'running', details };
  }

  async close(): Promise<void> {
    this.#job?.cancel();
    this.#job = undefined;
    await this.#running;
  }
}

/** The URLs of status endpoints, best first; malformed entries are skipped, not thrown on. */
function urlsOf(list: readonly { urls?: unknown }[] | undefined): string[] {
  if (!Array.isArray(list)) return [];
  return list.flatMap((s) =>
    Array.isArray(s?.urls)
      ? (s.urls as unknown[]).filter((u): u is string => typeof u === 'string' && /^https?:\/\//.test(u))
      : [],
  );
}

export const plugin = defineBuiltin({
  name: 'nginx-status',
  description: 'Reads stub_status (or the NGINX Plus API) of every nginx instance: connections, requests, nginx.up.',
  schema,
  create: () => new NginxStatusPlugin(),
});
