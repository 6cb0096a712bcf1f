/**
 * `nginx-discovery`: finds every nginx master and its workers in /proc, reads `nginx -V` once per
 * binary, and publishes `nginx.instance.*` events and per-instance worker metrics on an interval.
 * See README.md.
 */
import { bool, duration, list, object, string, type Infer } from '../../core/config/schema.js';
import { counter, gauge } from '../../core/metrics/model.js';
import type { NginxInstance } from '../../core/nginx/types.js';
import { defineBuiltin } from '../../core/plugin/builtin.js';
import type { Plugin, PluginContext, PluginStatus } from '../../core/plugin/types.js';
import type { ScheduledJob } from '../../core/scheduler.js';
import type { Message } from '../../core/topics.js';
import { BinaryInfoCache } from './binary-info.js';
import { NginxDiscovery } from './discovery.js';
import { parseWorkerProcesses } from './parse.js';
import { ProcReader } from './proc.js';

export const schema = object(
  {
    enabled: bool({ default: true, description: 'Find nginx instances in /proc and report their workers.' }),
    interval: duration({ default: '5s', min: '100ms', max: '1h', description: 'How often /proc is scanned.' }),
    proc_root: string({
      default: '/proc',
      description: 'Where the proc file system is mounted (a host /proc mounted into a container, e.g. /host/proc).',
    }),
    version_timeout: duration({
      default: '5s',
      min: '100ms',
      max: '1m',
      description: 'Time limit of one `nginx -V` run (once per binary).',
    }),
    conf_paths: list(string(), {
      default: [],
      description:
        'Config files for an nginx whose command line has no -c and whose binary cannot run here for nginx -V (a sidecar without CAP_SYS_PTRACE): the first readable one is used. [] = /etc/nginx/nginx.conf, /usr/local/nginx/conf/nginx.conf, /usr/local/etc/nginx/nginx.conf.',
    }),
    old_generation_grace: duration({
      default: '60s',
      min: '0s',
      max: '24h',
      description:
        'Workers of an older generation may run this long after a reload (draining long connections) before the instance is DEGRADED.',
    }),
  },
  { description: 'NGINX discovery: masters, workers, nginx -V, reloads and health from /proc.' },
);

export type NginxDiscoveryConfig = Infer<typeof schema>;

const NOT_FOUND_HINT =
  'start nginx, or run the agent where it can see the nginx processes: on the same host, or in a container that shares the PID namespace of nginx ' +
  '(docker run --pid=container:<nginx>, compose `pid: "service:nginx"`, Kubernetes `shareProcessNamespace: true`); ' +
  'with /proc mounted hidepid=2 the agent needs to run as root or in the proc gid group';

export class NginxDiscoveryPlugin implements Plugin<NginxDiscoveryConfig> {
  readonly name = 'nginx-discovery';
  #ctx!: PluginContext<NginxDiscoveryConfig>;
  #discovery!: NginxDiscovery;
  #binaries!: BinaryInfoCache;
  #job: ScheduledJob | undefined;
  #running: Promise<void> | undefined;
  #polls = 0;
  #errors = 0;
  #lastError: string | undefined;
  #loggedNone = false;
  #loggedBinaryErrors = new Set<string>();
  #startedAt = Date.now();

  subscriptions(): readonly string[] {
    return ['nginx.config.changed', 'agent.config.reloaded'];
  }

  init(ctx: PluginContext<NginxDiscoveryConfig>): void {
    this.#ctx = ctx;
    this.#startedAt = Date.now();
    this.#binaries = new BinaryInfoCache({ timeoutMs: ctx.config.version_timeout });
    this.#discovery = new NginxDiscovery({
      reader: new ProcReader(ctx.config.proc_root),
      binaries: this.#binaries,
      oldGenerationGraceMs: ctx.config.old_generation_grace,
      ...(ctx.config.conf_paths.length ? { confCandidates: ctx.config.conf_paths } : {}),
    });
    this.#job = ctx.scheduler.every('nginx-discovery', ctx.config.interval, () => this.poll());
    ctx.signal.addEventListener('abort', () => this.#job?.cancel(), { once: true });
    void this.poll();
  }

  /** Every nginx instance known now. */
  instances(): NginxInstance[] {
    return this.#discovery?.instances() ?? [];
  }

  /** One scan, its events and metrics published; overlapping calls share the running scan. */
  poll(): Promise<void> {
    this.#running ??= this.#poll().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #poll(): Promise<void> {
    if (this.#ctx.signal.aborted) return;
    const log = this.#ctx.logger;
    try {
      const { events, batches } = await this.#discovery.poll();
      this.#polls++;
      this.#lastError = undefined;
      if (this.#ctx.signal.aborted) return;
      for (const e of events) {
        this.#ctx.bus.publish(e.topic, e.data);
        const i = e.data.instance;
        if (e.topic === 'nginx.instance.added') {
          log.info(
            {
              instance: i.id,
              pid: i.pid,
              binary: i.binary,
              version: i.version,
              plus: i.plus,
              prefix: i.prefix,
              confPath: i.confPath,
            },
            `found nginx ${i.version || '(version unknown)'} master ${i.pid} with ${i.confPath}`,
          );
          if (i.health !== 'HEALTHY') {
            const change = healthChange(i, undefined);
            log[change.level]({ instance: i.id, pid: i.pid, health: i.health }, change.msg);
          }
          // A partial view (no nginx -V) is said once per binary, with what is missing and why.
          const degraded = this.#discovery.degradedReason(i.id);
          if (degraded && !this.#loggedBinaryErrors.has(i.binary)) {
            this.#loggedBinaryErrors.add(i.binary);
            log.warn({ instance: i.id, binary: i.binary, confPath: i.confPath }, `nginx master ${i.pid}: ${degraded}`);
          }
        } else if (e.topic === 'nginx.instance.removed')
          log.info({ instance: i.id, pid: i.pid }, `nginx master ${i.pid} (${i.confPath}) is gone`);
        else if (e.topic === 'nginx.instance.reloaded')
          log.info({ instance: i.id, pid: i.pid }, `nginx master ${i.pid} reloaded: a new generation of workers runs`);
        else {
          const change = healthChange(i, e.data.previousHealth);
          log[change.level](
            { instance: i.id, pid: i.pid, health: i.health, previous: e.data.previousHealth },
            change.msg,
          );
        }
      }
      for (const b of batches) this.#ctx.bus.publish('metrics', { ...b, interval: this.#ctx.config.interval });
      this.#publishSelf();
      const n = this.#discovery.instanceViews().length;
      if (this.#polls === 1 && n === 0 && !this.#loggedNone) {
        this.#loggedNone = true;
        log.warn(
          { proc_root: this.#ctx.config.proc_root, processes: this.#discovery.lastScan.processes },
          `no nginx found in ${this.#ctx.config.proc_root}: ${NOT_FOUND_HINT}. Discovery keeps looking every ${this.#ctx.config.interval / 1000} s`,
        );
      }
    } catch (err) {
      this.#errors++;
      this.#lastError = (err as Error).message;
      if (this.#errors === 1)
        log.error(
          { err },
          `cannot scan ${this.#ctx.config.proc_root} for nginx: ${this.#lastError} (counted in agent_nginx_discovery_errors_total)`,
        );
      this.#publishSelf();
    }
  }

  #publishSelf(): void {
    const start = this.#startedAt;
    const instances = this.#discovery.instanceViews();
    this.#ctx.bus.publish('metrics', {
      source: this.name,
      time: Date.now(),
      interval: this.#ctx.config.interval,
      metrics: [
        counter(
          { name: 'agent.nginx.discovery.scans', unit: '{scan}', description: 'Completed scans of /proc for nginx.' },
          [{ attributes: {}, value: this.#polls, startTime: start }],
        ),
        counter({ name: 'agent.nginx.discovery.errors', unit: '{error}', description: 'Scans of /proc that failed.' }, [
          { attributes: {}, value: this.#errors, startTime: start },
        ]),
        gauge(
          { name: 'agent.nginx.instances', unit: '{instance}', description: 'nginx instances found, by health.' },
          (['HEALTHY', 'DEGRADED', 'UNHEALTHY'] as const).map((h) => ({
            attributes: { health: h },
            value: instances.filter((i) => i.health === h).length,
          })),
        ),
      ],
    });
  }

  /**
   * Learns `worker_processes` from the parsed config, so fewer workers than configured is DEGRADED.
   * After an agent config reload, re-announces every known instance (`nginx.instance.added` again):
   * a plugin the reload restarted has missed the first announcement. Consumers treat an `added` for
   * an id they know as an update.
   */
  process(msg: Message): void {
    if (msg.topic === 'agent.config.reloaded') {
      if (!msg.data.ok || msg.data.changedSections.every((s) => s === 'nginx_discovery')) return;
      for (const instance of this.instances()) this.#ctx.bus.publish('nginx.instance.added', { instance });
      return;
    }
    if (msg.topic !== 'nginx.config.changed') return;
    const main = msg.data.payload?.config?.[0];
    const d = Array.isArray(main?.parsed) ? main.parsed.find((x) => x?.directive === 'worker_processes') : undefined;
    this.#discovery.setConfigWorkers(msg.data.instanceId, parseWorkerProcesses(d?.args?.[0]));
  }

  status(): PluginStatus {
    const instances = this.#discovery?.instanceViews() ?? [];
    const details = {
      proc_root: this.#ctx.config.proc_root,
      scans: this.#polls,
      version_runs: this.#binaries.runs,
      instances: instances.map((i) => ({
        id: i.id,
        pid: i.pid,
        version: i.version,
        plus: i.plus,
        conf_path: i.confPath,
        prefix: i.prefix,
        workers: i.workers.length,
        health: i.health,
        ...(i.healthReason ? { health_reason: i.healthReason } : {}),
      })),
      ...(this.#polls > 0 && instances.length === 0 ? { hint: `no nginx found: ${NOT_FOUND_HINT}` } : {}),
    };
    if (this.#lastError)
      return { state: 'degraded', reason: `cannot scan ${this.#ctx.config.proc_root}: ${this.#lastError}`, details };
    // `starting` until the first scan is done: /health says the agent is starting until then.
    return { state: this.#polls === 0 ? 'starting' : 'running', details };
  }

  async close(): Promise<void> {
    this.#job?.cancel();
    this.#job = undefined;
    await this.#running;
  }
}

export const plugin = defineBuiltin({
  name: 'nginx-discovery',
  description:
    'Finds nginx masters and workers in /proc, reads nginx -V, publishes nginx.instance.* and worker metrics.',
  schema,
  create: () => new NginxDiscoveryPlugin(),
});

/**
 * The log line for an instance's health: a degraded state is one `warn` when it starts (or gets
 * worse), and one `info` when the instance is healthy again.
 */
export function healthChange(
  i: Pick<NginxInstance, 'pid' | 'health' | 'healthReason'>,
  previous: NginxInstance['health'] | undefined,
): { level: 'warn' | 'info'; msg: string } {
  if (i.health === 'HEALTHY')
    return { level: 'info', msg: `nginx ${i.pid} is HEALTHY again${previous ? ` (was ${previous})` : ''}` };
  return { level: 'warn', msg: `nginx ${i.pid} is ${i.health}${i.healthReason ? `: ${i.healthReason}` : ''}` };
}
