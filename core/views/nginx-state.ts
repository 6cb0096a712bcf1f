/**
 * What the views know about each nginx instance, kept from the bus: discovery (pid, version, health),
 * the latest config analysis (version, files, parse errors, certificates), the last `nginx -t`, and
 * the latest lint findings (`lint.*` messages that carry an `instance_id` and a `findings` list).
 */
import type { Message } from '../topics.js';
import type { NginxInstance } from '../nginx/types.js';
import type { SummaryFinding } from './summary-types.js';

/** A finding about an instance's config, in the shape `GET /v1/summary` lists it. */
export type ConfigFinding = SummaryFinding;

export interface CertificateView {
  path: string;
  subject?: string;
  /** Unix ms. */
  notAfter: number;
}

export interface InstanceView {
  id: string;
  instance?: NginxInstance;
  gone: boolean;
  /** Unix ms when discovery reported the master gone. */
  goneAt?: number;
  configVersion?: string;
  configStatus?: 'ok' | 'failed';
  confPath?: string;
  files: string[];
  parseErrors: ConfigFinding[];
  lastTest?: { ok: boolean; version: string; findings: ConfigFinding[] };
  lint: ConfigFinding[];
  certificates: CertificateView[];
}

/** The topics `NginxViewState.handle` reads. */
export const NGINX_VIEW_TOPICS = ['nginx.instance.*', 'nginx.config.changed', 'nginx.config.validated', 'lint.*'];

export class NginxViewState {
  readonly #instances = new Map<string, InstanceView>();

  instances(): InstanceView[] {
    return [...this.#instances.values()].sort((a, b) =>
      (a.confPath ?? a.id) < (b.confPath ?? b.id) ? -1 : (a.confPath ?? a.id) > (b.confPath ?? b.id) ? 1 : 0,
    );
  }

  get(id: string): InstanceView | undefined {
    return this.#instances.get(id);
  }

  #view(id: string): InstanceView {
    let v = this.#instances.get(id);
    if (!v) {
      v = { id, gone: false, files: [], parseErrors: [], lint: [], certificates: [] };
      this.#instances.set(id, v);
    }
    return v;
  }

  /** Forgets instances gone for longer than `afterMs`. */
  prune(now: number, afterMs: number): void {
    for (const [id, v] of this.#instances)
      if (v.goneAt !== undefined && now - v.goneAt > afterMs) this.#instances.delete(id);
  }

  handle(msg: Message): void {
    switch (msg.topic) {
      case 'nginx.instance.added':
      case 'nginx.instance.reloaded':
      case 'nginx.instance.health': {
        const inst = msg.data?.instance;
        if (!inst?.id) return;
        const v = this.#view(inst.id);
        v.instance = inst;
        v.gone = false;
        v.goneAt = undefined;
        v.confPath ??= inst.confPath;
        return;
      }
      case 'nginx.instance.removed': {
        const inst = msg.data?.instance;
        if (!inst?.id || !this.#instances.has(inst.id)) return;
        const v = this.#view(inst.id);
        v.gone = true;
        v.goneAt = msg.time;
        return;
      }
      case 'nginx.config.changed': {
        const d = msg.data;
        if (!d?.instanceId) return;
        const v = this.#view(d.instanceId);
        v.configVersion = d.version;
        v.configStatus = d.payload?.status;
        v.confPath = d.confPath;
        v.files = (d.files ?? []).map((f) => f.path);
        v.parseErrors = (d.payload?.errors ?? []).map((e) => ({
          source: 'parse',
          severity: 'error',
          file: e.file ?? null,
          line: e.line ?? null,
          message: e.error,
        }));
        v.certificates = (d.analysis?.certificates ?? [])
          .filter((c) => typeof c.notAfter === 'number')
          .map((c) => ({ path: c.path, ...(c.subject ? { subject: c.subject } : {}), notAfter: c.notAfter as number }));
        return;
      }
      case 'nginx.config.validated': {
        const d = msg.data;
        if (!d?.instanceId) return;
        this.#view(d.instanceId).lastTest = {
          ok: d.ok,
          version: d.version,
          // nginx -t's "syntax is ok" / "test is successful" notices are not findings.
          findings: (d.messages ?? [])
            .filter((m) => m.level !== 'notice' && m.level !== 'info')
            .map((m) => ({
              source: 'nginx -t',
              severity: m.level,
              file: m.file ?? null,
              line: m.line ?? null,
              message: m.text,
            })),
        };
        return;
      }
      default: {
        if (!msg.topic.startsWith('lint.')) return;
        const d = msg.data as Record<string, unknown>;
        // config-lint writes instance_id; accept the camelCase of the core payloads too.
        const raw = d?.instance_id ?? d?.instanceId;
        const id = typeof raw === 'string' ? raw : undefined;
        if (!id || !Array.isArray(d.findings)) return;
        this.#view(id).lint = d.findings.slice(0, 1000).map((f) => {
          const finding = (f ?? {}) as Record<string, unknown>;
          return {
            source: msg.topic,
            severity: typeof finding.severity === 'string' ? finding.severity : 'warning',
            file: typeof finding.file === 'string' ? finding.file : null,
            line: typeof finding.line === 'number' ? finding.line : null,
            message: typeof finding.message === 'string' ? finding.message : JSON.stringify(finding),
            ...(typeof finding.rule === 'string' ? { rule: finding.rule } : {}),
          };
        });
      }
    }
  }
}
