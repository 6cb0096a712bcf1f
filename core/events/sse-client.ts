/**
 * A small Server-Sent Events reader for `GET /v1/events/stream` (used by `agent events --follow`
 * and the tests): parses frames into `{ id, event, data }` and comments.
 */
import { request } from 'node:http';

export interface SseFrame {
  id?: string;
  /** `message` unless the frame names another (`disconnect`). */
  event: string;
  data: string;
}

export interface SseHandlers {
  onFrame(frame: SseFrame): void;
  onComment?(text: string): void;
}

/** Incremental parser: feed it text as it arrives. */
export class SseParser {
  #buffer = '';
  #frame: { id?: string; event?: string; data: string[] } = { data: [] };
  readonly #handlers: SseHandlers;

  constructor(handlers: SseHandlers) {
    this.#handlers = handlers;
  }

  push(text: string): void {
    if (!text.includes('\n')) {
      this.#buffer += text;
      return;
    }
    const lines = (this.#buffer + text).split('\n');
    this.#buffer = lines.pop() ?? '';
    for (const line of lines) this.#line(line.endsWith('\r') ? line.slice(0, -1) : line);
  }

  #line(line: string): void {
    if (line === '') {
      const f = this.#frame;
      this.#frame = { data: [] };
      if (f.data.length || f.event)
        this.#handlers.onFrame({
          ...(f.id !== undefined ? { id: f.id } : {}),
          event: f.event ?? 'message',
          data: f.data.join('\n'),
        });
      return;
    }
    if (line.startsWith(':')) {
      this.#handlers.onComment?.(line.slice(1).trim());
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'data') this.#frame.data.push(value);
    else if (field === 'id') this.#frame.id = value;
    else if (field === 'event') this.#frame.event = value;
  }
}

export interface OpenStreamOptions extends SseHandlers {
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/**
 * Opens the stream; resolves with the HTTP status once the headers arrive (rejects on a connection
 * error). `ended` resolves when the server closes the stream or the signal aborts.
 */
export function openEventStream(
  url: string,
  opts: OpenStreamOptions,
): Promise<{ status: number; body?: string; ended: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { Accept: 'text/event-stream', ...opts.headers }, signal: opts.signal });
    req.on('error', (err) => {
      if ((err as NodeJS.ErrnoException).name === 'AbortError') return;
      reject(err);
    });
    req.on('response', (res) => {
      res.setEncoding('utf8');
      if (res.statusCode !== 200) {
        let body = '';
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ended: Promise.resolve() }));
        return;
      }
      const parser = new SseParser(opts);
      const ended = new Promise<void>((done) => {
        res.on('data', (d: string) => parser.push(d));
        res.on('end', done);
        res.on('close', done);
        res.on('error', () => done());
      });
      resolve({ status: 200, ended });
    });
    req.end();
  });
}
