/**
 * The agent's side of the fleet: one NATS connection that
 * - writes this agent's inventory entry into the `nginx_agent_inventory` bucket on every change and
 *   at each heartbeat,
 * - publishes every event to the `NGINX_AGENT_EVENTS` stream with a message id (a retry after a
 *   reconnect is deduplicated by JetStream), from a bounded outbox that holds them while NATS is
 *   unreachable,
 * - answers commands on `<prefix>.cmd.<agent id>.<verb>` through the local API's route table.
 *
 * Nothing here can stop the agent: NATS down, slow or refusing only changes `state`, is logged and
 * counted, and is retried with backoff. Loaded with import() only when `fleet.enabled` is true.
 */
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { connect, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { ApiResponse } from '../api/types.js';
import type { AgentEvent, EventLogReader } from '../events/types.js';
import { counter, gauge, type Metric } from '../metrics/model.js';
import type { JsonObject } from '../topics.js';
import { CommandError, commandCall, parsePayload, type CommandReply } from './commands.js';
import { connectionOptions, reconnectBackoff, type FleetConnectionSettings } from './connection.js';
import { Outbox } from './outbox.js';
import { ensureEventsStream, inventoryBucket } from './streams.js';
import {
  agentInboxPrefix,
  eventSubject,
  inventorySubject,
  subjectSafe,
  type InventoryEntry,
  type InventoryInstance,
} from './subjects.js';

export interface FleetSettings extends FleetConnectionSettings {
  name: string;
  subject_prefix: string;
  heartbeat_interval: number;
  outbox_size: number;
}

/** What the fleet client needs from the agent (a simulated agent in the benchmark gives the same). */
export interface FleetHost {
  agentId: string;
  hostname: string;
  version: string;
  startedAt: number;
  labels: Readonly<Record<string, string>>;
  /** The local API's handlers, run in-process (RouteTable.call). */
  api: { call(method: string, path: string, body?: string): Promise<ApiResponse> };
  /** The events pipeline; absent: no events are published. */
  events?: EventLogReader;
  /** Called after each command with its record; the agent publishes it on the bus as `fleet.command`. */
  onCommand?(record: JsonObject): void;
  logger: Logger;
}

export type FleetState = 'connecting' | 'connected' | 'reconnecting' | 'stopped' | 'misconfigured';

/** Events published per round trip while catching up. */
const PUBLISH_WINDOW = 64;
const PUBLISH_TIMEOUT_MS = 5000;

export class FleetClient {
  readonly #settings: FleetSettings;
  readonly #host: FleetHost;
  readonly #log: Logger;
  readonly #outbox: Outbox<AgentEvent>;
  readonly #name: string;
  #state: FleetState = 'connecting';
  #nc: NatsConnection | undefined;
  #js: JetStreamClient | undefined;
  #sub: Subscription | undefined;
  #unsubscribeEvents: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopping = false;
  #pumping = false;
  #writingInventory = false;
  #lastInventory = '';
  #lastInventoryWrite = 0;
  #lastError: string | undefined;
  #connectedSince: number | undefined;
  #reconnects = 0;
  #published = 0;
  #inventoryWrites = 0;
  #streamsReady = false;
  readonly #commands = new Map<string, number>();
  readonly #startedAt = Date.now();

  constructor(settings: FleetSettings, host: FleetHost) {
    this.#settings = settings;
    this.#host = host;
    this.#log = host.logger;
    this.#outbox = new Outbox(settings.outbox_size);
    this.#name = settings.name || host.hostname;
  }

  get state(): FleetState {
    return this.#state;
  }
  get name(): string {
    return this.#name;
  }

  /** Starts in the background and returns at once: the agent never waits for NATS. */
  start(): void {
    this.#unsubscribeEvents = this.#host.events?.subscribe((e) => this.#enqueue(e));
    void this.#run();
  }

  /** `/health` and `/v1/status`: the connection and the outbox. */
  status(): JsonObject {
    return {
      state: this.#state,
      name: this.#name,
      agent_id: this.#host.agentId,
      server: this.#state === 'connected' ? (this.#nc?.getServer() ?? null) : null,
      connected_since: this.#connectedSince ? new Date(this.#connectedSince).toISOString() : null,
      reconnects: this.#reconnects,
      outbox: this.#outbox.size,
      events_published: this.#published,
      events_dropped: this.#outbox.dropped,
      ...(this.#lastError ? { last_error: this.#lastError } : {}),
    };
  }

  metrics(): Metric[] {
    const startTime = this.#startedAt;
    return [
      gauge(
        { name: 'agent.fleet.connected', unit: '{connection}', description: '1 while connected to a NATS server.' },
        [{ attributes: {}, value: this.#state === 'connected' ? 1 : 0 }],
      ),
      counter(
        {
          name: 'agent.fleet.reconnects',
          unit: '{reconnect}',
          description: 'Reconnections to NATS after a lost connection.',
        },
        [{ attributes: {}, value: this.#reconnects, startTime }],
      ),
      counter(
        {
          name: 'agent.fleet.events.published',
          unit: '{event}',
          description: 'Events stored in the NGINX_AGENT_EVENTS stream (acknowledged by JetStream).',
        },
        [{ attributes: {}, value: this.#published, startTime }],
      ),
      counter(
        {
          name: 'agent.fleet.events.dropped',
          unit: '{event}',
          description: 'Events dropped because the outbox was full while NATS was unreachable (see fleet.outbox_size).',
        },
        [{ attributes: {}, value: this.#outbox.dropped, startTime }],
      ),
      gauge({ name: 'agent.fleet.outbox.depth', unit: '{event}', description: 'Events waiting to be published.' }, [
        { attributes: {}, value: this.#outbox.size },
      ]),
      counter(
        {
          name: 'agent.fleet.inventory.writes',
          unit: '{write}',
          description: 'Writes of this agent into the nginx_agent_inventory bucket.',
        },
        [{ attributes: {}, value: this.#inventoryWrites, startTime }],
      ),
      counter(
        {
          name: 'agent.fleet.commands',
          unit: '{command}',
          description: 'Fleet commands answered, by verb and outcome.',
        },
        [...this.#commands].map(([key, value]) => {
          const [verb, outcome] = key.split('\0');
          return { attributes: { verb, outcome }, value, startTime };
        }),
      ),
    ];
  }

  /** Marks the entry stopped, publishes what it can within `timeoutMs`, and closes the connection. */
  async stop(timeoutMs = 2000): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#unsubscribeEvents?.();
    clearInterval(this.#timer);
    const nc = this.#nc;
    if (nc && this.#state === 'connected') {
      const end = Date.now() + timeoutMs;
      await withTimeout(this.#flushOutbox(end), timeoutMs).catch(() => undefined);
      await withTimeout(this.#writeInventory('stopped'), Math.max(100, end - Date.now())).catch(() => undefined);
    }
    this.#state = 'stopped';
    this.#sub?.unsubscribe();
    if (nc) await withTimeout(nc.close(), 1000).catch(() => undefined);
  }

  #enqueue(event: AgentEvent): void {
    const dropped = this.#outbox.push(event);
    if (dropped && this.#outbox.dropped === dropped)
      this.#log.warn(
        { outbox_size: this.#settings.outbox_size },
        `fleet outbox full (${this.#settings.outbox_size} events while NATS is unreachable): dropping the oldest; further drops are counted in agent_fleet_events_dropped_total`,
      );
    if (this.#state === 'connected') void this.#pump();
  }

  async #run(): Promise<void> {
    let options;
    try {
      options = connectionOptions(this.#settings, {
        name: `nginx-agent ${this.#name}`,
        inboxPrefix: agentInboxPrefix(this.#host.agentId),
      });
    } catch (err) {
      this.#state = 'misconfigured';
      this.#lastError = (err as Error).message;
      this.#log.error(`fleet disabled until the config is fixed: ${this.#lastError}`);
      return;
    }
    const backoff = reconnectBackoff(5000);
    let attempt = 0;
    while (!this.#stopping) {
      try {
        // First connection: retried here (so stop() can interrupt it); later ones by the client.
        this.#nc = await connect({ ...options, waitOnFirstConnect: false });
        break;
      } catch (err) {
        this.#lastError = (err as Error).message;
        if (attempt++ === 0)
          this.#log.warn(
            { servers: this.#settings.servers },
            `fleet: cannot connect to NATS (${this.#lastError}); retrying with backoff, the agent runs on`,
          );
        await sleep(backoff());
      }
    }
    const nc = this.#nc;
    if (!nc) return;
    if (this.#stopping) {
      await nc.close().catch(() => undefined);
      return;
    }
    try {
      this.#js = jetstream(nc, { timeout: PUBLISH_TIMEOUT_MS });
      this.#connected(nc);
      void this.#watchStatus(nc).catch((err: Error) => this.#noteError(`connection status: ${err.message}`));
      this.#sub = nc.subscribe(`${this.#settings.subject_prefix}.cmd.${subjectSafe(this.#host.agentId)}.>`, {
        callback: (err, msg) => {
          if (err) this.#noteError(`command subscription: ${err.message}`);
          else void this.#command(msg).catch((e: Error) => this.#noteError(`command ${msg.subject}: ${e.message}`));
        },
      });
      const checkEvery = Math.min(1000, this.#settings.heartbeat_interval);
      this.#timer = setInterval(() => void this.#writeInventory(), checkEvery);
      this.#timer.unref();
    } catch (err) {
      // A connection closed between connect and here: logged; nothing of it reaches the agent.
      this.#noteError(`setting up the fleet connection: ${(err as Error).message}`);
    }
    void nc.closed().then((err) => {
      if (!this.#stopping) {
        this.#state = 'stopped';
        this.#noteError(`NATS connection closed${err ? `: ${err.message}` : ''}`);
      }
    });
  }

  #connected(nc: NatsConnection): void {
    this.#state = 'connected';
    this.#connectedSince = Date.now();
    this.#lastError = undefined;
    this.#log.info({ server: nc.getServer() }, `fleet: connected to NATS ${nc.getServer()} as ${this.#name}`);
    void this.#afterConnect();
  }

  async #afterConnect(): Promise<void> {
    await this.#ensureStreams();
    this.#lastInventory = '';
    await this.#writeInventory();
    void this.#pump();
  }

  async #ensureStreams(): Promise<void> {
    if (this.#streamsReady || !this.#nc) return;
    try {
      await ensureEventsStream(this.#nc, this.#settings.subject_prefix);
      await inventoryBucket(this.#nc);
      this.#streamsReady = true;
    } catch (err) {
      this.#log.info(
        `fleet: cannot check or create the stream and bucket (${(err as Error).message}); expecting the operator to create them`,
      );
    }
  }

  async #watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (this.#stopping) return;
      if (s.type === 'disconnect') {
        this.#state = 'reconnecting';
        this.#log.warn(`fleet: lost the connection to NATS ${s.server}; reconnecting with backoff`);
      } else if (s.type === 'reconnect') {
        this.#reconnects++;
        this.#connected(nc);
      } else if (s.type === 'error') {
        this.#noteError(s.error.message);
      }
    }
  }

  #noteError(message: string): void {
    if (message !== this.#lastError) this.#log.warn(`fleet: ${message}`);
    this.#lastError = message;
  }

  /** Publishes the outbox in windows until it is empty or the connection is gone. */
  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#outbox.size && this.#state === 'connected') {
        if (!(await this.#publishWindow())) await sleep(1000);
      }
    } finally {
      this.#pumping = false;
    }
  }

  async #flushOutbox(end: number): Promise<void> {
    while (this.#outbox.size && this.#state === 'connected' && Date.now() < end) {
      if (this.#pumping) await sleep(20);
      else if (!(await this.#publishWindow())) return;
    }
  }

  /** One window of events; false when some failed (they go back to the head of the outbox). */
  async #publishWindow(): Promise<boolean> {
    const js = this.#js;
    if (!js) return false;
    const batch = this.#outbox.take(PUBLISH_WINDOW);
    const results = await Promise.allSettled(
      batch.map((e) =>
        js.publish(eventSubject(this.#settings.subject_prefix, this.#host.agentId, e.kind), JSON.stringify(e), {
          msgID: `${this.#host.agentId}:${this.#host.startedAt}:${e.id}`,
          timeout: PUBLISH_TIMEOUT_MS,
        }),
      ),
    );
    const failed = batch.filter((_, i) => results[i].status === 'rejected');
    this.#published += batch.length - failed.length;
    if (!failed.length) return true;
    const reason = (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason as Error;
    this.#noteError(`publishing events: ${reason.message} (kept in the outbox and retried)`);
    this.#outbox.putBack(failed);
    if (/no responders|stream not found/i.test(reason.message)) {
      this.#streamsReady = false;
      await this.#ensureStreams();
    }
    return false;
  }

  async #inventoryEntry(state: InventoryEntry['state']): Promise<Omit<InventoryEntry, 'last_seen'>> {
    const [nginx, plugins] = await Promise.all([
      this.#host.api.call('GET', '/v1/nginx'),
      this.#host.api.call('GET', '/v1/plugins'),
    ]);
    return {
      id: this.#host.agentId,
      name: this.#name,
      host: this.#host.hostname,
      version: this.#host.version,
      labels: { ...this.#host.labels },
      started: new Date(this.#host.startedAt).toISOString(),
      heartbeat_interval_ms: this.#settings.heartbeat_interval,
      state,
      nginx: nginx.status === 200 ? instancesOf(nginx.body) : [],
      plugins: plugins.status === 200 ? pluginsOf(plugins.body) : [],
    };
  }

  /** Writes the entry when it changed or a heartbeat is due. */
  async #writeInventory(state: InventoryEntry['state'] = 'online'): Promise<void> {
    const js = this.#js;
    if (!js || this.#state !== 'connected' || (this.#writingInventory && state === 'online')) return;
    this.#writingInventory = true;
    try {
      const entry = await this.#inventoryEntry(state);
      const text = JSON.stringify(entry);
      const due = Date.now() - this.#lastInventoryWrite >= this.#settings.heartbeat_interval;
      if (text === this.#lastInventory && !due && state === 'online') return;
      const value = JSON.stringify({ ...entry, last_seen: new Date().toISOString() });
      await js.publish(inventorySubject(this.#host.agentId), value, { timeout: PUBLISH_TIMEOUT_MS });
      this.#lastInventory = text;
      this.#lastInventoryWrite = Date.now();
      this.#inventoryWrites++;
    } catch (err) {
      this.#noteError(`writing the inventory: ${(err as Error).message}`);
      if (/no responders|stream not found/i.test((err as Error).message)) {
        this.#streamsReady = false;
        await this.#ensureStreams();
      }
    } finally {
      this.#writingInventory = false;
    }
  }

  async #command(msg: Msg): Promise<void> {
    const started = performance.now();
    const head = `${this.#settings.subject_prefix}.cmd.${subjectSafe(this.#host.agentId)}.`;
    const verb = msg.subject.slice(head.length);
    let reply: CommandReply;
    try {
      const call = commandCall(verb, parsePayload(msg.data));
      let res = await this.#host.api.call(call.method, call.path, call.body);
      if (verb === 'events.recent' && res.status === 404 && this.#host.events) res = this.#recentEvents(call.path);
      reply = { ok: res.status < 400, status: res.status, body: res.body };
    } catch (err) {
      reply =
        err instanceof CommandError
          ? { ok: false, status: 400, body: { error: err.message } }
          : { ok: false, status: 500, body: { error: `internal error: ${(err as Error).message}` } };
    }
    let text = JSON.stringify(reply);
    const max = msg.reply ? (this.#nc?.info?.max_payload ?? 1024 * 1024) : 0;
    if (max && Buffer.byteLength(text) > max) {
      reply = {
        ok: false,
        status: 413,
        body: {
          error: `the answer (${Buffer.byteLength(text)} bytes) is larger than the server's max_payload (${max})`,
        },
      };
      text = JSON.stringify(reply);
    }
    if (msg.reply) {
      try {
        msg.respond(text);
      } catch (err) {
        this.#noteError(`answering ${verb}: ${(err as Error).message}`);
      }
    }
    const outcome = reply.ok ? 'ok' : 'error';
    const key = `${verb}\0${outcome}`;
    this.#commands.set(key, (this.#commands.get(key) ?? 0) + 1);
    const error = reply.ok ? undefined : String((reply.body as { error?: unknown })?.error ?? `status ${reply.status}`);
    const durationMs = Math.round(performance.now() - started);
    const record: JsonObject = {
      verb,
      outcome,
      status: reply.status,
      duration_ms: durationMs,
      ...(error ? { error } : {}),
    };
    if (reply.ok) this.#log.info(record, `fleet command ${verb}: ok (${durationMs} ms)`);
    else this.#log.warn(record, `fleet command ${verb}: ${reply.status} ${error}`);
    this.#host.onCommand?.(record);
  }

  /** `events.recent` when the agent has no /v1/events route: the same reader the route would use. */
  #recentEvents(path: string): ApiResponse {
    const query = new URL(path, 'http://in-process').searchParams;
    const since = query.get('since');
    const limit = query.get('limit');
    const events = this.#host.events!.recent({
      ...(since ? { since: Number(since) } : {}),
      ...(limit ? { limit: Number(limit) } : {}),
    });
    return { status: 200, body: { events } };
  }
}

function instancesOf(body: unknown): InventoryInstance[] {
  const list = (body as { instances?: Record<string, unknown>[] })?.instances;
  if (!Array.isArray(list)) return [];
  return list.map((i) => {
    const test = i.lastTest as { ok?: boolean; exitCode?: number | null; messages?: unknown } | null;
    return {
      id: String(i.id),
      version: String(i.version ?? ''),
      binary: String(i.binary ?? ''),
      config_path: String(i.confPath ?? ''),
      config_version: (i.configVersion as string | null) ?? null,
      up: typeof i.pid === 'number' && i.pid > 0,
      last_test: test
        ? { ok: Boolean(test.ok), exit_code: test.exitCode ?? null, messages: test.messages ?? [] }
        : null,
    };
  });
}

function pluginsOf(body: unknown): InventoryEntry['plugins'] {
  const list = (body as { plugins?: Record<string, unknown>[] })?.plugins;
  if (!Array.isArray(list)) return [];
  return list.map((p) => ({ name: String(p.name), kind: String(p.kind ?? ''), state: String(p.state ?? '') }));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms).unref()),
  ]);
}
