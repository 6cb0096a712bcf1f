/**
 * The local HTTP API: `/health`, `/metrics`, `/v1/status`, and the routes plugins add.
 * Bound to 127.0.0.1 by default. With a token, every endpoint but `/health` needs
 * `Authorization: Bearer <token>` and answers 401 without it.
 *
 * No request can end the process: the request target is parsed inside the error handling (a bad one
 * is a 400), a body over the limit is read to its end and discarded and answered 413, a malformed
 * request that node's parser rejects is answered 400/431 on the socket, and an exception in a handler
 * is logged once with its route and answered 500.
 */
import { timingSafeEqual } from 'node:crypto';
import { STATUS_CODES, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { errorResponse, parseTarget, RouteFailure, RouteTable } from './router.js';
import { ApiError, type ApiHandler, type ApiResponse, type ApiRouter } from './types.js';

export interface ApiServerOptions {
  host: string;
  port: number;
  /** '' = no authentication. */
  token: string;
  logger: Logger;
  /** Largest accepted request body (default 16 MiB); a larger one is answered 413. */
  maxBodyBytes?: number;
  /** The route table to serve (shared with in-process callers such as the fleet); a new one when absent. */
  routes?: RouteTable;
  /** Paths served without the token besides /health (the dashboard's page and scripts, which hold no data). */
  isPublic?: (path: string) => boolean;
}

const DEFAULT_MAX_BODY = 16 * 1024 * 1024;
/** Past the limit a body is read and discarded (so the client sees the 413); beyond this much more, the connection is closed. */
const MAX_DISCARD = 64 * 1024 * 1024;

export class ApiServer implements ApiRouter {
  readonly #routes: RouteTable;
  readonly #server: Server;
  readonly #opts: ApiServerOptions;
  readonly #token: Buffer | null;
  readonly #maxBody: number;
  /** Requests served, by status class; read by the agent's self-metrics. */
  readonly requests = new Map<string, number>();

  constructor(opts: ApiServerOptions) {
    this.#opts = opts;
    this.#routes = opts.routes ?? new RouteTable();
    this.#token = opts.token ? Buffer.from(opts.token) : null;
    this.#maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
    // A slow client gets 15 s for its headers and 60 s for the whole request, then a 408.
    this.#server = createServer({ headersTimeout: 15_000, requestTimeout: 60_000 }, (req, res) =>
      this.#serve(req, res),
    );
    this.#server.keepAliveTimeout = 5_000;
    // A client that half-closes after sending its request (`printf ... | nc`) still gets its answer; by
    // default node aborts the request on the client's FIN, so an answer that takes a tick (a gzip) is lost.
    (this.#server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    this.#server.on('checkContinue', (req, res) => this.#checkContinue(req, res));
    this.#server.on('clientError', (err, socket) => this.#clientError(err, socket));
    // Without a listener node drops a CONNECT request's connection unanswered.
    this.#server.on('connect', (req: IncomingMessage, socket: Duplex) => {
      socket.on('error', () => socket.destroy());
      this.#answerOnSocket(socket, 405, `method CONNECT not allowed on ${req.url}: this is not a proxy`);
    });
  }

  route(method: 'GET' | 'PUT' | 'POST' | 'DELETE', pattern: string, handler: ApiHandler): void {
    this.#routes.route(method, pattern, handler);
  }

  /** Runs `method path` through the same handlers in-process (no HTTP, no token): see RouteTable.call. */
  dispatch(method: string, path: string, body = ''): Promise<ApiResponse> {
    return this.#routes.call(method, path, body);
  }

  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        const hint = err.code === 'EADDRINUSE' ? ' (another agent running? set api.port or --api-port)' : '';
        reject(
          new Error(`API cannot listen on ${this.#opts.host}:${this.#opts.port}: ${err.message}${hint}`, {
            cause: err,
          }),
        );
      };
      this.#server.once('error', onError);
      this.#server.listen(this.#opts.port, this.#opts.host, () => {
        this.#server.off('error', onError);
        // Errors after listening (EMFILE on accept, say) are logged; they must not end the process.
        this.#server.on('error', (err) => this.#opts.logger.error({ err }, `API server error: ${err.message}`));
        const addr = this.#server.address();
        resolve({ host: this.#opts.host, port: typeof addr === 'object' && addr ? addr.port : this.#opts.port });
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeIdleConnections();
      setTimeout(() => this.#server.closeAllConnections(), 1000).unref();
    });
  }

  #authorized(req: IncomingMessage): boolean {
    if (!this.#token) return true;
    const h = req.headers.authorization ?? '';
    const m = /^Bearer (.+)$/.exec(h);
    if (!m) return false;
    const given = Buffer.from(m[1]);
    return given.length === this.#token.length && timingSafeEqual(given, this.#token);
  }

  #serve(req: IncomingMessage, res: ServerResponse): void {
    this.#handle(req, res).catch((err: unknown) => {
      // Only reached when answering itself failed (a bug in send): log it and drop this connection.
      this.#opts.logger.error({ err, url: req.url }, 'API could not answer a request');
      res.destroy();
    });
  }

  /** `Expect: 100-continue` with a body over the limit: answer 413 before the client sends it. */
  #checkContinue(req: IncomingMessage, res: ServerResponse): void {
    if (declaredLength(req) > this.#maxBody) {
      this.#count(413);
      res.shouldKeepAlive = false;
      send(res, errorResponse(tooLarge(this.#maxBody)));
      return;
    }
    res.writeContinue();
    this.#serve(req, res);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let response: ApiResponse;
    let path = '';
    try {
      const target = parseTarget(req.url ?? '/');
      path = target.path;
      const open = path === '/health' || this.#opts.isPublic?.(path) === true;
      if (!open && !this.#authorized(req)) {
        res.setHeader('WWW-Authenticate', 'Bearer');
        throw new ApiError(401, 'missing or wrong bearer token: send "Authorization: Bearer <api.token>"');
      }
      const body = await readBody(req, this.#maxBody);
      response = await this.#routes.dispatch({
        method: req.method ?? 'GET',
        path,
        query: target.query,
        headers: req.headers,
        body,
      });
    } catch (err) {
      response = this.#failure(err, req, path);
    }
    this.#count(response.status);
    // After a 413 the rest of an oversized body is not worth reading: close once answered.
    if (response.status === 413) res.shouldKeepAlive = false;
    send(res, response);
  }

  #failure(err: unknown, req: IncomingMessage, path: string): ApiResponse {
    if (err instanceof ApiError) return errorResponse(err);
    const route = err instanceof RouteFailure ? err.route : `${req.method} ${path}`;
    const cause = err instanceof RouteFailure ? err.cause : err;
    this.#opts.logger.error({ err: cause, route, path }, `API handler for ${route} failed; answered 500`);
    return { status: 500, body: { error: `internal error in ${route}: ${(cause as Error)?.message ?? cause}` } };
  }

  #count(status: number): void {
    const cls = `${Math.floor(status / 100)}xx`;
    this.requests.set(cls, (this.requests.get(cls) ?? 0) + 1);
  }

  /** A request node's HTTP parser refused (bad request line, header too large, timeout): a JSON error, then close. */
  #clientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const busy = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage?.headersSent;
    if (err.code === 'ECONNRESET' || !socket.writable || busy) {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    this.#answerOnSocket(socket, status, `${STATUS_CODES[status]}: ${err.message}`);
  }

  /** A JSON error written straight to the socket (no request/response objects exist), then close. */
  #answerOnSocket(socket: Duplex, status: number, message: string): void {
    this.#count(status);
    const body = `${JSON.stringify({ error: message })}\n`;
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
}

function send(res: ServerResponse, r: ApiResponse): void {
  if (r.stream) {
    res.writeHead(r.status, { 'Content-Type': r.contentType ?? 'text/plain; charset=utf-8', ...r.headers });
    res.flushHeaders();
    r.stream(res);
    return;
  }
  if (r.status === 304 || r.status === 204) {
    res.writeHead(r.status, { ...r.headers });
    res.end();
    return;
  }
  let payload: string | Buffer;
  let type = r.contentType;
  if (typeof r.body === 'string' || Buffer.isBuffer(r.body)) {
    payload = r.body;
    type ??= 'text/plain; charset=utf-8';
  } else {
    payload = `${JSON.stringify(r.body, null, 2)}\n`;
    type ??= 'application/json';
  }
  res.writeHead(r.status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(payload), ...r.headers });
  res.end(payload);
}

function declaredLength(req: IncomingMessage): number {
  const n = Number(req.headers['content-length'] ?? 0);
  return Number.isFinite(n) ? n : 0;
}

function tooLarge(limit: number): ApiError {
  return new ApiError(413, `request body larger than ${limit} bytes`);
}

/**
 * The body as UTF-8. Past `limit` the rest is read and discarded, then the promise rejects with a 413,
 * so the client (still sending) gets the answer rather than a reset; past MAX_DISCARD more it is cut off.
 */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = declaredLength(req) > limit;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) over = true;
      if (!over) chunks.push(c);
      else if (size > limit + MAX_DISCARD) {
        req.pause();
        reject(tooLarge(limit));
      }
    });
    req.on('end', () => (over ? reject(tooLarge(limit)) : resolve(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', () => reject(new ApiError(400, 'the request body could not be read (connection aborted)')));
  });
}
