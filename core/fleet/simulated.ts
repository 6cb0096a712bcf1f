/**
 * A simulated agent for tests and the benchmark: the real FleetClient in front of a small route
 * table (status, nginx list, plugins) and an event log fed by hand. Many fit in one process.
 */
import type { Logger } from 'pino';
import { RouteTable } from '../api/router.js';
import type { AgentEvent, EventFilter, EventLogReader } from '../events/types.js';
import type { FleetHost } from './client.js';

/** An EventLogReader whose events are added by `emit` (what the events pipeline does for real). */
export class HandFedEvents implements EventLogReader {
  readonly #events: AgentEvent[] = [];
  readonly #listeners = new Set<(e: AgentEvent) => void>();

  get lastId(): number {
    return this.#events.at(-1)?.id ?? 0;
  }

  emit(kind: string, summary = kind, attributes: AgentEvent['attributes'] = {}): AgentEvent {
    const event: AgentEvent = {
      id: this.lastId + 1,
      time: new Date().toISOString(),
      severity: 'info',
      source: 'core',
      kind,
      key: kind,
      summary,
      attributes,
    };
    this.#events.push(event);
    if (this.#events.length > 1000) this.#events.shift();
    for (const l of this.#listeners) l(event);
    return event;
  }

  recent(filter: EventFilter = {}): AgentEvent[] {
    const matching = this.#events.filter((e) => e.id > (filter.since ?? 0));
    return filter.limit !== undefined ? matching.slice(-filter.limit) : matching;
  }

  firing(): AgentEvent[] {
    return [];
  }

  subscribe(listener: (event: AgentEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

export interface SimulatedAgent {
  host: FleetHost;
  events: HandFedEvents;
  routes: RouteTable;
  /** Records passed to onCommand. */
  commands: Record<string, unknown>[];
}

export function simulatedAgent(opts: {
  agentId: string;
  hostname?: string;
  labels?: Record<string, string>;
  logger: Logger;
}): SimulatedAgent {
  const routes = new RouteTable();
  const events = new HandFedEvents();
  const commands: Record<string, unknown>[] = [];
  const startedAt = Date.now();
  routes.route('GET', '/v1/status', () => ({
    status: 200,
    body: { state: 'running', instance_id: opts.agentId, hostname: opts.hostname ?? opts.agentId },
  }));
  routes.route('GET', '/v1/plugins', () => ({
    status: 200,
    body: { plugins: [{ name: 'nginx-config', kind: 'builtin', state: 'running' }] },
  }));
  routes.route('GET', '/v1/nginx', () => ({
    status: 200,
    body: {
      instances: [
        {
          id: `nginx-${opts.agentId}`,
          pid: 1,
          binary: '/usr/sbin/nginx',
          version: '1.22.1',
          confPath: '/etc/nginx/nginx.conf',
          configVersion: 'v1',
          lastTest: { ok: true, exitCode: 0, messages: [] },
        },
      ],
    },
  }));
  return {
    routes,
    events,
    commands,
    host: {
      agentId: opts.agentId,
      hostname: opts.hostname ?? opts.agentId,
      version: '0.0.0-sim',
      startedAt,
      labels: opts.labels ?? {},
      api: routes,
      events,
      onCommand: (r) => commands.push(r),
      logger: opts.logger,
    },
  };
}
