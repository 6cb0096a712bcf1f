/**
 * `nginx-config`: parses every nginx instance's configuration, watches its files, runs `nginx -t`
 * on each change, publishes the analysis and certificate expiry, and (when enabled) applies new
 * config files with rollback through the local API. See README.md.
 */
import { readFile } from 'node:fs/promises';
import { ApiError, type ApiRequest, type ApiResponse } from '../../core/api/types.js';
import { bool, duration, list, object, string, type Infer } from '../../core/config/schema.js';
import { counter, gauge } from '../../core/metrics/model.js';
import { analyseConfig } from '../../core/nginx/config/analyse.js';
import { parseNginxConfig } from '../../core/nginx/config/parse.js';
import { configVersion } from '../../core/nginx/config/version.js';
import type { NginxInstance } from '../../core/nginx/types.js';
import { defineBuiltin } from '../../core/plugin/builtin.js';
import type { Plugin, PluginContext, PluginStatus } from '../../core/plugin/types.js';
import type { ScheduledJob } from '../../core/scheduler.js';
import type { Message } from '../../core/topics.js';
import { BinaryInfoCache } from '../nginx-discovery/binary-info.js';
import { nginxInstanceId, NGINX_DEFAULT_PREFIX } from '../nginx-discovery/parse.js';
import { ConfigApplier, type ApplyFile } from './applier.js';
import { NginxTester } from './nginx-test.js';
import { OwnWrites } from './own-writes.js';
import { InstanceTracker, type ConfigTools, type TrackerSettings } from './tracker.js';

export const schema = object(
  {
    enabled: bool({
      default: true,
      description: 'Parse, watch and validate the config of every nginx instance found.',
    }),
    watch: bool({
      default: true,
      description:
        'Watch the config files and include directories and re-parse on a change (false: only when nginx starts or reloads).',
    }),
    debounce: duration({
      default: '1s',
      min: '10ms',
      max: '1m',
      description: 'Quiet time after the last file event before a burst of changes is re-parsed.',
    }),
    warnings_as_errors: bool({
      default: false,
      description: 'Treat `[warn]` messages of `nginx -t` as errors (the validation fails and an apply is refused).',
    }),
    test_timeout: duration({ default: '30s', min: '1s', max: '10m', description: 'Time limit of one `nginx -t` run.' }),
    cert_expiry_window: duration({
      default: '30d',
      min: '0s',
      max: '3650d',
      description:
        'A certificate expiring within this window publishes nginx.ssl.certificate.expiring (once per certificate).',
    }),
    cert_check_interval: duration({
      default: '1m',
      min: '1s',
      max: '24h',
      description: 'How often the nginx.ssl.certificate.expiry gauge is refreshed and the expiry window checked.',
    }),
    apply_enabled: bool({
      default: false,
      description:
        'Allow PUT /v1/nginx/{id}/config to write nginx config files and reload nginx. Off by default: the API then answers 403.',
    }),
    allowed_directories: list(string(), {
      default: ['/etc/nginx'],
      description:
        'Directories an apply may write into (symlinks and `..` are resolved first; nothing outside is written).',
    }),
    apply_confirm_period: duration({
      default: '2s',
      min: '100ms',
      max: '5m',
      description:
        'After the reload of an apply: how long a new worker generation must run without emerg/alert/crit in the error log before the apply counts; else it is rolled back.',
    }),
    proc_root: string({
      default: '/proc',
      description: 'Where the proc file system is mounted (to confirm a reload by the new workers).',
    }),
    static_instances: list(
      object({
        conf_path: string({
          default: '',
          file: 'readable',
          description: 'Absolute path of the main config file; it must exist and be readable at start.',
        }),
        prefix: string({ default: '', description: 'nginx prefix (-p); empty: the binary\u2019s --prefix.' }),
        binary: string({ default: '/usr/sbin/nginx', description: 'nginx binary used for `nginx -t`.' }),
        pid_file: string({
          default: '',
          description: 'pid file of the master; without it the config is parsed, watched and tested but not applied.',
        }),
      }),
      {
        default: [],
        description:
          'nginx instances to follow without discovery (YAML only), e.g. [{conf_path: /etc/nginx/nginx.conf, pid_file: /run/nginx.pid}]: for an agent that cannot see the nginx processes. A discovered instance with the same config replaces it.',
      },
    ),
  },
  { description: 'NGINX config: parse, watch, analyse, `nginx -t`, certificate expiry, and apply with rollback.' },
);

export type NginxConfigConfig = Infer<typeof schema>;
type StaticEntry = NginxConfigConfig['static_instances'][number];

type ErrorStage = 'parse' | 'analyse' | 'test' | 'watch' | 'apply' | 'static';
type ApplyOutcome = 'applied' | 'refused' | 'rolled_back' | 'path_refused' | 'failed';

const REAL_TOOLS: ConfigTools = {
  parse: (confPath, opts) => parseNginxConfig(confPath, opts),
  analyse: (payload, opts) => analyseConfig(payload, opts),
  version: (files) => configVersion(files),
};

/** How to enable apply, in the 403 answer and the README. */
export const APPLY_DISABLED =
  'config apply is disabled: set nginx_config.apply_enabled: true in the agent config (or NGINX_AGENT_NGINX_CONFIG_APPLY_ENABLED=true), list the directories it may write in nginx_config.allowed_directories, and reload the agent (SIGHUP)';

export class NginxConfigPlugin implements Plugin<NginxConfigConfig> {
  readonly name = 'nginx-config';
  #ctx!: PluginContext<NginxConfigConfig>;
  #cfg!: NginxConfigConfig;
  readonly #trackers = new Map<string, InstanceTracker>();
  /** Static entries by instance id, with their pid file. */
  #statics = new Map<string, { entry: StaticEntry; instance: NginxInstance }>();
  readonly #ownWrites = new OwnWrites();
  #tester!: NginxTester;
  #applier!: ConfigApplier;
  #job: ScheduledJob | undefined;
  readonly #pending = new Set<Promise<unknown>>();
  readonly #errors = new Map<ErrorStage, number>();
  readonly #applies = new Map<ApplyOutcome, number>();
  #lastError: string | undefined;
  #startedAt = Date.now();
  readonly #tools: ConfigTools;
  readonly #binaries = new BinaryInfoCache({ timeoutMs: 5000 });
  /** Static instances' binaries that cannot be run, warned about once each. */
  readonly #badBinaries = new Set<string>();

  /** `tools` replaces the parser/analyser (tests of the plugin use the real ones). */
  constructor(tools: ConfigTools = REAL_TOOLS) {
    this.#tools = tools;
  }

  subscriptions(): readonly string[] {
    return ['nginx.instance.added', 'nginx.instance.removed', 'nginx.instance.reloaded'];
  }

  init(ctx: PluginContext<NginxConfigConfig>): void {
    this.#ctx = ctx;
    this.#cfg = ctx.config;
    this.#startedAt = Date.now();
    this.#tester = new NginxTester({
      warningsAsErrors: this.#cfg.warnings_as_errors,
      timeoutMs: this.#cfg.test_timeout,
    });
    this.#applier = new ConfigApplier(this.#applierSettings());
    ctx.api.route('GET', '/v1/nginx', () => this.#list());
    ctx.api.route('GET', '/v1/nginx/:id/config', (req) => this.#getConfig(req));
    ctx.api.route('PUT', '/v1/nginx/:id/config', (req) => this.#putConfig(req));
    this.#startTimer();
    ctx.signal.addEventListener('abort', () => this.#job?.cancel(), { once: true });
    this.#track(this.#syncStatics());
    if (!this.#cfg.apply_enabled)
      ctx.logger.info(
        'config apply is disabled (nginx_config.apply_enabled: false): PUT /v1/nginx/{id}/config answers 403',
      );
  }

  #applierSettings() {
    return {
      allowedDirectories: this.#cfg.allowed_directories,
      confirmPeriodMs: this.#cfg.apply_confirm_period,
      procRoot: this.#cfg.proc_root,
      ownWrites: this.#ownWrites,
      tester: this.#tester,
    };
  }

  #trackerSettings(): TrackerSettings {
    return { debounceMs: this.#cfg.debounce, certExpiryWindowMs: this.#cfg.cert_expiry_window, watch: this.#cfg.watch };
  }

  #startTimer(): void {
    this.#job?.cancel();
    this.#job = this.#ctx.scheduler.every('nginx-config', this.#cfg.cert_check_interval, () => {
      for (const t of this.#trackers.values()) t.publishCertificates();
      this.#publishSelf();
    });
  }

  #track(p: Promise<unknown>): void {
    const q = p.catch((e) => this.#error('static', e as Error)).finally(() => this.#pending.delete(q));
    this.#pending.add(q);
  }

  #error(stage: ErrorStage, err: Error, instance?: NginxInstance): void {
    const n = (this.#errors.get(stage) ?? 0) + 1;
    this.#errors.set(stage, n);
    this.#lastError = `${stage}${instance ? ` (${instance.confPath})` : ''}: ${err.message}`;
    // Once per stage: every later one is only counted (agent_nginx_config_errors_total{stage}).
    if (n === 1)
      this.#ctx.logger.error(
        { err, stage, instance: instance?.id },
        `nginx config ${stage} failed${instance ? ` for ${instance.confPath}` : ''}: ${err.message} (further ${stage} errors are counted in agent_nginx_config_errors_total)`,
      );
  }

  #newTracker(instance: NginxInstance, isStatic: boolean): InstanceTracker {
    const t = new InstanceTracker(
      instance,
      {
        tools: this.#tools,
        tester: this.#tester,
        applier: this.#applier,
        ownWrites: this.#ownWrites,
        bus: this.#ctx.bus,
        onError: (stage, err, inst) => this.#error(stage, err, inst),
      },
      this.#trackerSettings(),
      { isStatic },
    );
    this.#trackers.set(instance.id, t);
    this.#track(t.refresh('initial'));
    return t;
  }

  /** Handles discovery events; the work (parse, -t) runs in the background so the queue keeps moving. */
  process(msg: Message): void {
    if (
      msg.topic !== 'nginx.instance.added' &&
      msg.topic !== 'nginx.instance.removed' &&
      msg.topic !== 'nginx.instance.reloaded'
    )
      return;
    const inst = msg.data?.instance;
    if (!inst?.id || !inst.confPath) {
      this.#error('parse', new Error(`${msg.topic} without an instance id and config path`));
      return;
    }
    if (msg.topic === 'nginx.instance.removed') {
      const t = this.#trackers.get(inst.id);
      if (!t) return;
      const st = this.#statics.get(inst.id);
      if (st) {
        t.setInstance(st.instance);
        return;
      }
      this.#trackers.delete(inst.id);
      this.#track(t.close());
      return;
    }
    // A static entry for the same config is replaced by the discovered instance.
    for (const [id, st] of this.#statics) {
      if (id !== inst.id && st.instance.confPath === inst.confPath && st.instance.prefix === inst.prefix) {
        const t = this.#trackers.get(id);
        this.#trackers.delete(id);
        if (t) this.#track(t.close());
      }
    }
    const t = this.#trackers.get(inst.id);
    if (!t) {
      this.#newTracker(inst, false);
      return;
    }
    t.setInstance(inst);
    this.#track(t.refresh(msg.topic === 'nginx.instance.added' ? 'initial' : 'reload'));
  }

  async #staticInstance(e: StaticEntry): Promise<NginxInstance> {
    if (!e.conf_path.startsWith('/'))
      throw new Error(
        `nginx_config.static_instances: conf_path must be an absolute path, got ${JSON.stringify(e.conf_path)}`,
      );
    const info = await this.#binaries.get(e.binary);
    if (info.error && !this.#badBinaries.has(e.binary)) {
      this.#badBinaries.add(e.binary);
      this.#ctx.logger.warn(
        { binary: e.binary, conf_path: e.conf_path, err: info.error },
        `nginx_config.static_instances: the nginx binary ${e.binary} cannot be run (${info.error}): nginx -t, reloads and the version are unavailable for ${e.conf_path}; set binary to the nginx that runs it`,
      );
    } else if (!info.error && this.#badBinaries.delete(e.binary))
      this.#ctx.logger.info({ binary: e.binary }, `the nginx binary ${e.binary} can be run again`);
    const prefix = (e.prefix || info.prefix || NGINX_DEFAULT_PREFIX).replace(/\/+$/, '') || '/';
    return {
      id: nginxInstanceId(e.binary, e.conf_path, prefix),
      pid: await readPid(e.pid_file),
      binary: e.binary,
      version: info.version,
      plus: info.plus,
      prefix,
      confPath: e.conf_path,
      configureArgs: info.configureArgs,
      modules: info.modules,
      workers: [],
      health: 'HEALTHY',
    };
  }

  async #syncStatics(): Promise<void> {
    const next = new Map<string, { entry: StaticEntry; instance: NginxInstance }>();
    for (const e of this.#cfg.static_instances) {
      try {
        const inst = await this.#staticInstance(e);
        next.set(inst.id, { entry: e, instance: inst });
      } catch (err) {
        this.#error('static', err as Error);
      }
    }
    for (const id of this.#statics.keys()) {
      const t = this.#trackers.get(id);
      if (!next.has(id) && t?.isStatic) {
        this.#trackers.delete(id);
        await t.close();
      }
    }
    this.#statics = next;
    for (const [id, st] of next) {
      const discovered = [...this.#trackers.values()].some(
        (t) => !t.isStatic && t.instance.confPath === st.instance.confPath && t.instance.prefix === st.instance.prefix,
      );
      if (!this.#trackers.has(id) && !discovered) this.#newTracker(st.instance, true);
    }
  }

  #publishSelf(): void {
    const start = this.#startedAt;
    const stages: ErrorStage[] = ['parse', 'analyse', 'test', 'watch', 'apply', 'static'];
    const outcomes: ApplyOutcome[] = ['applied', 'refused', 'rolled_back', 'path_refused', 'failed'];
    this.#ctx.bus.publish('metrics', {
      source: this.name,
      time: Date.now(),
      metrics: [
        counter(
          {
            name: 'agent.nginx.config.errors',
            unit: '{error}',
            description: 'Failures of the nginx-config plugin by stage: parse, analyse, test, watch, apply, static.',
          },
          stages.map((s) => ({ attributes: { stage: s }, value: this.#errors.get(s) ?? 0, startTime: start })),
        ),
        counter(
          {
            name: 'agent.nginx.config.applies',
            unit: '{apply}',
            description: 'Config applies by outcome: applied, refused (nginx -t), rolled_back, path_refused, failed.',
          },
          outcomes.map((o) => ({ attributes: { outcome: o }, value: this.#applies.get(o) ?? 0, startTime: start })),
        ),
        gauge(
          {
            name: 'agent.nginx.config.watched',
            unit: '{instance}',
            description: 'nginx instances whose config is followed.',
          },
          [{ attributes: {}, value: this.#trackers.size }],
        ),
      ],
    });
  }

  #list(): ApiResponse {
    const instances = [...this.#trackers.values()].map((t) => {
      const i = t.instance;
      return {
        id: i.id,
        pid: i.pid,
        binary: i.binary,
        version: i.version,
        prefix: i.prefix,
        confPath: i.confPath,
        source: t.isStatic ? 'static' : 'discovery',
        configVersion: t.snapshot?.version ?? null,
        // A config that parses but fails `nginx -t` (an unknown directive, say) is not "ok". An
        // `nginx -t` that could not run here (`untested`) is no verdict on the config: the parse stands.
        configStatus:
          t.lastTest && !t.lastTest.ok && !t.lastTest.untested && t.lastTest.version === t.snapshot?.version
            ? 'failed'
            : (t.snapshot?.payload.status ?? null),
        files: t.snapshot?.files.length ?? 0,
        lastTest: t.lastTest
          ? {
              ok: t.lastTest.ok,
              exitCode: t.lastTest.exitCode,
              version: t.lastTest.version,
              messages: t.lastTest.messages,
              ...(t.lastTest.untested ? { untested: t.lastTest.untested } : {}),
            }
          : null,
      };
    });
    return { status: 200, body: { instances } };
  }

  #tracker(id: string): InstanceTracker {
    const t = this.#trackers.get(id);
    if (!t)
      throw new ApiError(404, `no nginx instance with id ${JSON.stringify(id)}; GET /v1/nginx lists the known ones`);
    return t;
  }

  async #getConfig(req: ApiRequest): Promise<ApiResponse> {
    const t = this.#tracker(req.params.id);
    // The first parse may still run: wait for it (bounded) rather than answer with nothing.
    for (let i = 0; i < 200 && !t.snapshot; i++) await new Promise((r) => setTimeout(r, 25));
    const s = t.snapshot;
    if (!s)
      throw new ApiError(503, `the config of ${t.instance.confPath} has not been parsed yet; try again in a moment`);
    return {
      status: 200,
      body: {
        id: s.instanceId,
        confPath: s.confPath,
        prefix: s.prefix,
        version: s.version,
        files: s.files,
        payload: s.payload,
        analysis: s.analysis,
        lastTest: t.lastTest ?? null,
      },
    };
  }

  async #putConfig(req: ApiRequest): Promise<ApiResponse> {
    if (!this.#cfg.apply_enabled) throw new ApiError(403, APPLY_DISABLED);
    const t = this.#tracker(req.params.id);
    const files = parseApplyBody(req.json());
    const st = this.#statics.get(t.instance.id);
    if (t.isStatic && st?.entry.pid_file) t.setInstance({ ...t.instance, pid: await readPid(st.entry.pid_file) });
    const dryRun = req.query.get('dry_run') === 'true';
    let r;
    try {
      r = await t.apply(files, { dryRun });
    } catch (e) {
      this.#error('apply', e as Error, t.instance);
      throw e;
    }
    if (dryRun) return dryRunResponse(t.instance.id, r);
    const outcome: ApplyOutcome = r.ok
      ? 'applied'
      : r.status === 422
        ? 'refused'
        : r.status === 403
          ? 'path_refused'
          : r.rolledBack && r.status === 409
            ? 'rolled_back'
            : 'failed';
    this.#applies.set(outcome, (this.#applies.get(outcome) ?? 0) + 1);
    const log = this.#ctx.logger;
    const failed = r.steps.find((s) => !s.ok);
    if (r.ok)
      log.info(
        { instance: t.instance.id, files: r.written, version: r.version },
        `applied ${r.written.length} file(s) to ${t.instance.confPath} and reloaded nginx`,
      );
    else
      log.warn(
        { instance: t.instance.id, status: r.status, step: failed?.step },
        `config apply for ${t.instance.confPath} failed at ${failed?.step}: ${failed?.detail ?? ''}${r.rolledBack ? ' (rolled back)' : ''}`,
      );
    return {
      status: r.status,
      body: {
        instanceId: t.instance.id,
        ok: r.ok,
        rolledBack: r.rolledBack,
        ...(r.version ? { version: r.version } : {}),
        steps: r.steps,
        ...(r.test ? { test: { ok: r.test.ok, exitCode: r.test.exitCode, messages: r.test.messages } } : {}),
        ...(failed ? { error: `${failed.step}: ${failed.detail ?? 'failed'}` } : {}),
      },
    };
  }

  reconfigure(config: NginxConfigConfig): Promise<void> {
    const watchChanged = config.watch !== this.#cfg.watch;
    this.#cfg = config;
    this.#tester.update({ warningsAsErrors: config.warnings_as_errors, timeoutMs: config.test_timeout });
    this.#applier.update(this.#applierSettings());
    this.#startTimer();
    const run = async () => {
      for (const [id, t] of [...this.#trackers]) {
        if (!watchChanged) {
          t.update(this.#trackerSettings());
          continue;
        }
        await t.close();
        this.#trackers.delete(id);
        this.#newTracker(t.instance, t.isStatic);
      }
      await this.#syncStatics();
    };
    const p = run();
    this.#track(p);
    return p;
  }

  status(): PluginStatus {
    const details = {
      apply_enabled: this.#cfg.apply_enabled,
      instances: [...this.#trackers.values()].map((t) => ({
        id: t.instance.id,
        conf_path: t.instance.confPath,
        config_version: t.snapshot?.version ?? null,
        files: t.snapshot?.files.length ?? 0,
        last_test_ok: t.lastTest?.ok ?? null,
        watched_dirs: t.watchedDirs,
      })),
      errors: Object.fromEntries(this.#errors),
    };
    const trackers = [...this.#trackers.values()];
    const failing = trackers.filter(
      (t) => t.snapshot?.payload.status === 'failed' || (t.lastTest?.ok === false && !t.lastTest.untested),
    );
    if (failing.length)
      return {
        state: 'degraded',
        reason: `config of ${failing.map((t) => t.instance.confPath).join(', ')} does not parse or fails nginx -t`,
        details,
      };
    // Parsed, but nginx -t could not judge it here (a sidecar without the nginx binary, say): said as that.
    const untested = trackers.filter((t) => t.lastTest?.untested);
    if (untested.length)
      return {
        state: 'degraded',
        reason: untested.map((t) => `config of ${t.instance.confPath} untested: ${t.lastTest?.untested}`).join('; '),
        details,
      };
    if (this.#lastError && this.#trackers.size === 0) return { state: 'degraded', reason: this.#lastError, details };
    // `starting` while the first parse of an instance known is under way.
    const unparsed = this.#pending.size > 0 && [...this.#trackers.values()].some((t) => !t.snapshot);
    return { state: unparsed ? 'starting' : 'running', details };
  }

  /** Waits for background work (first parses, tests); for tests and close. */
  async idle(): Promise<void> {
    while (this.#pending.size) await Promise.all([...this.#pending]);
  }

  async close(): Promise<void> {
    this.#job?.cancel();
    this.#job = undefined;
    await this.idle();
    await Promise.all([...this.#trackers.values()].map((t) => t.close()));
    this.#trackers.clear();
  }
}

/** `?dry_run=true`: the files were written, tested with `nginx -t` and restored; nothing was reloaded. */
function dryRunResponse(instanceId: string, r: Awaited<ReturnType<InstanceTracker['apply']>>): ApiResponse {
  const failed = r.steps.find((s) => !s.ok);
  return {
    status: r.status,
    body: {
      instanceId,
      dryRun: true,
      ok: r.ok,
      steps: r.steps,
      ...(r.test ? { test: { ok: r.test.ok, exitCode: r.test.exitCode, messages: r.test.messages } } : {}),
      ...(failed ? { error: `${failed.step}: ${failed.detail ?? 'failed'}` } : {}),
    },
  };
}

/** Reads a pid file; 0 when absent or not a number. */
async function readPid(file: string): Promise<number> {
  if (!file) return 0;
  try {
    const n = Number((await readFile(file, 'utf8')).trim());
    return Number.isInteger(n) && n > 0 ? n : 0;
  } catch {
    return 0;
  }
}

/** Validates the PUT body `{"files":[{"path","content"}]}`; throws ApiError 400 naming the field. */
export function parseApplyBody(body: unknown): ApplyFile[] {
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw new ApiError(400, 'body must be a JSON object {"files":[{"path":"/etc/nginx/nginx.conf","content":"..."}]}');
  const extra = Object.keys(body).filter((k) => k !== 'files');
  if (extra.length)
    throw new ApiError(
      400,
      `unknown key(s) ${extra.map((k) => JSON.stringify(k)).join(', ')} in the body: only "files" is accepted`,
    );
  const files = (body as { files?: unknown }).files;
  if (!Array.isArray(files) || files.length === 0)
    throw new ApiError(400, 'files must be a non-empty list of {"path","content"}');
  return files.map((f, i) => {
    if (!f || typeof f !== 'object' || Array.isArray(f))
      throw new ApiError(400, `files[${i}] must be an object {"path","content"}`);
    const { path, content, ...rest } = f as Record<string, unknown>;
    if (Object.keys(rest).length)
      throw new ApiError(
        400,
        `files[${i}] has unknown key(s) ${Object.keys(rest).join(', ')}: only path and content are accepted`,
      );
    if (typeof path !== 'string' || path === '')
      throw new ApiError(400, `files[${i}].path must be a non-empty string (an absolute path)`);
    if (typeof content !== 'string') throw new ApiError(400, `files[${i}].content must be a string (the whole file)`);
    return { path, content };
  });
}

export const plugin = defineBuiltin({
  name: 'nginx-config',
  description:
    'Parses, watches and validates (nginx -t) each nginx config; certificate expiry; apply with rollback over the API.',
  schema,
  create: () => new NginxConfigPlugin(),
});
