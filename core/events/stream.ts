/**
 * `GET /v1/events/stream`: events as Server-Sent Events. The same filters as `/v1/events`; a
 * `Last-Event-ID` header (or `since`) replays what the ring still holds after that id, then live
 * events follow. A comment every 15 s keeps proxies from closing an idle stream.
 *
 * Each client has a bounded queue: events are written while the socket accepts them; when it does
 * not (a slow reader), they wait in the client's queue, and a client whose queue passes
 * `events.stream_queue_size` is disconnected with a final `disconnect` event saying why. Nothing
 * buffers without limit, and a slow client never holds up the bus or the other clients.
 */
import type { ServerResponse } from 'node:http';
import { ApiError, type ApiRequest, type ApiResponse } from '../api/types.js';
import { compileFilter, type EventMatcher, filterFromQuery } from './filter.js';
import type { EventLog, SinkReport } from './log.js';
import type { AgentEvent } from './types.js';

export interface EventStreamOptions {
  log: EventLog;
  /** Events one client may have waiting (`events.stream_queue_size`). */
  queueSize: number;
  heartbeatMs?: number;
  /**
   * How long a disconnected slow client may take to read the final event (behind what the kernel
   * already buffers for it) before its connection is cut. Default 30 s.
   */
  closeGraceMs?: number;
}

interface Client {
  res: ServerResponse;
  match: EventMatcher;
  /** Frames waiting for the socket to drain. */
  pending: string[];
  blocked: boolean;
  closed: boolean;
}

export class EventStream {
  readonly #opts: EventStreamOptions;
  readonly #clients = new Set<Client>();
  readonly #heartbeat: NodeJS.Timeout;
  #served = 0;
  #slowDisconnects = 0;
  #dropped = 0;
  #unsubscribe: (() => void) | undefined;
  /** Clients with frames to write at the next turn. */
  readonly #ready = new Set<Client>();
  #tick: NodeJS.Immediate | undefined;

  constructor(opts: EventStreamOptions) {
    this.#opts = opts;
    this.#heartbeat = setInterval(() => this.#beat(), opts.heartbeatMs ?? 15_000);
    this.#heartbeat.unref();
  }

  get clients(): number {
    return this.#clients.size;
  }

  report(): SinkReport {
    return {
      state: 'ok',
      queued: [...this.#clients].reduce((n, c) => n + c.pending.length, 0),
      capacity: this.#opts.queueSize,
      dropped: this.#dropped,
      details: { clients: this.#clients.size, served: this.#served, slow_disconnects: this.#slowDisconnects },
    };
  }

  /** The route handler: validates the filters, then hands the response to the stream. */
  handle(req: ApiRequest): ApiResponse {
    const filter = filterFromQuery(req.query, this.#opts.log.capacity);
    const lastEventId = req.headers['last-event-id'];
    if (typeof lastEventId === 'string' && lastEventId.trim() !== '') {
      const id = lastEventId.trim();
      if (!/^\d+$/.test(id))
        throw new ApiError(400, `Last-Event-ID: ${JSON.stringify(id)} is not an event id (a non-negative integer)`);
      filter.since = Number(id);
    }
    return {
      status: 200,
      body: '',
      contentType: 'text/event-stream; charset=utf-8',
      headers: { 'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no', Connection: 'keep-alive' },
      stream: (res) => this.#attach(res, filter),
    };
  }

  /** Ends every stream with a final event (the agent stops). */
  close(reason = 'the agent is stopping'): void {
    clearInterval(this.#heartbeat);
    if (this.#tick) clearImmediate(this.#tick);
    this.#tick = undefined;
    for (const c of [...this.#clients]) this.#disconnect(c, reason);
  }

  #attach(res: ServerResponse, filter: ReturnType<typeof filterFromQuery>): void {
    this.#served++;
    const log = this.#opts.log;
    const client: Client = {
      res,
      match: compileFilter({ kinds: filter.kinds, severity: filter.severity }),
      pending: [],
      blocked: false,
      closed: false,
    };
    res.socket?.setNoDelay(true);
    res.on('close', () => this.#forget(client));
    res.on('drain', () => this.#flush(client));
    this.#write(client, `retry: 2000\n: connected; last event id ${log.lastId}\n\n`);
    if (filter.since !== undefined || filter.limit !== undefined) {
      let since = filter.since ?? 0;
      if (since > log.lastId) {
        // Ids start at 1 in every agent process: an id from before a restart means all of this one's.
        this.#write(
          client,
          `: event ${since} is from an earlier agent process (last id now ${log.lastId}); replaying from the start\n\n`,
        );
        since = 0;
      }
      const oldest = log.oldestId;
      if (filter.since !== undefined && oldest > since + 1)
        this.#write(client, `: events ${since + 1} to ${oldest - 1} are no longer in the buffer\n\n`);
      for (const e of log.recent({ ...filter, since })) if (client.match(e)) this.#write(client, frameOf(e));
    }
    // Replay and joining the live clients happen in one turn: no event can fall between them.
    if (client.closed) return;
    this.#clients.add(client);
    this.#unsubscribe ??= log.subscribe((e) => this.#fanOut(e));
  }

  /** One live event to every client it matches; the frame is built once. */
  #fanOut(event: AgentEvent): void {
    let frame: string | undefined;
    for (const client of this.#clients) {
      if (!client.match(event)) continue;
      frame ??= frameOf(event);
      this.#write(client, frame);
    }
  }

  /**
   * Queues a frame for the client. Frames are handed to the socket in one write per client per turn
   * of the event loop (a burst costs one write, not one per event), and only while the socket takes
   * them; the rest wait in the client's queue, bounded by `queueSize`.
   */
  #write(client: Client, frame: string): void {
    if (client.closed) return;
    client.pending.push(frame);
    if (client.pending.length > this.#opts.queueSize) {
      this.#disconnect(
        client,
        `client too slow: more than ${this.#opts.queueSize} events waiting (events.stream_queue_size); reconnect with Last-Event-ID to resume`,
      );
      return;
    }
    if (client.blocked) return;
    this.#ready.add(client);
    this.#tick ??= setImmediate(() => {
      this.#tick = undefined;
      const ready = [...this.#ready];
      this.#ready.clear();
      for (const c of ready) this.#flush(c);
    });
  }

  #flush(client: Client): void {
    client.blocked = false;
    if (client.closed || client.pending.length === 0) return;
    const chunk = client.pending.length === 1 ? client.pending[0] : client.pending.join('');
    client.pending.length = 0;
    if (!client.res.write(chunk)) client.blocked = true;
  }

  #disconnect(client: Client, reason: string): void {
    if (client.closed) return;
    const slow = reason.startsWith('client too slow');
    if (slow) this.#slowDisconnects++;
    else if (!client.blocked) this.#flush(client);
    this.#dropped += client.pending.length;
    client.pending = [];
    this.#forget(client);
    const res = client.res;
    res.end(`event: disconnect\ndata: ${JSON.stringify({ reason, last_event_id: this.#opts.log.lastId })}\n\n`);
    // A reader that does not take even the final event is cut off.
    setTimeout(() => res.destroy(), this.#opts.closeGraceMs ?? 30_000).unref();
  }

  #forget(client: Client): void {
    if (client.closed) return;
    client.closed = true;
    this.#clients.delete(client);
    this.#ready.delete(client);
    if (this.#clients.size === 0) {
      this.#unsubscribe?.();
      this.#unsubscribe = undefined;
    }
  }

  #beat(): void {
    for (const c of this.#clients) if (!c.blocked && c.pending.length === 0) this.#write(c, ': heartbeat\n\n');
  }
}

function frameOf(event: AgentEvent): string {
  return `id: ${event.id}\ndata: ${JSON.stringify(event)}\n\n`;
}
