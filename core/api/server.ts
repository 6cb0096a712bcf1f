/**
 * The local HTTP API: `/health`, `/metrics`, `/v1/status`, and the routes plugins add.
 * Bound to 127.0.0.1 by default. With a token, every endpoint but `/health` needs
 * `Authorization: Bearer <token>` and answers 401 without it.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { errorResponse, RouteTable } from './router.js';
import { ApiError, type ApiHandler, type ApiResponse, type ApiRouter } from './types.js';

export interface ApiServerOptions {
  host: string;
  port: number;
  /** '' = no authentication. */
  token: string;
  logger: Logger;
  /** Largest accepted request body. */
  maxBodyBytes?: number;
  /** The route table to serve (shared with in-process callers such as the fleet); a new one when absent. */
  routes?: RouteTable;
}

export class ApiServer implements ApiRouter {
  readonly #routes: RouteTable;
  readonly #server: Server;
  readonly #opts: ApiServerOptions;
  readonly #token: Buffer | null;
  /** Requests served, by status class; read by the agent's self-metrics. */
  readonly requests = new Map<string, number>();

  constructor(opts: ApiServerOptions) {
    this.#opts = opts;
    this.#routes = opts.routes ?? new RouteTable();
    this.#token = opts.token ? Buffer.from(opts.token) : null;
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.keepAliveTimeout = 5_000;
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

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let response: ApiResponse;
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      if (url.pathname !== '/health' && !this.#authorized(req)) {
        res.setHeader('WWW-Authenticate', 'Bearer');
        throw new ApiError(401, 'missing or wrong bearer token: send "Authorization: Bearer <api.token>"');
      }
      const body = await readBody(req, this.#opts.maxBodyBytes ?? 16 * 1024 * 1024);
      response = await this.#routes.dispatch({
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body,
      });
    } catch (err) {
      if (err instanceof ApiError) response = errorResponse(err);
      else {
        this.#opts.logger.error({ err, path: url.pathname }, 'API handler failed');
        response = { status: 500, body: { error: `internal error: ${(err as Error).message}` } };
      }
    }
    const cls = `${Math.floor(response.status / 100)}xx`;
    this.requests.set(cls, (this.requests.get(cls) ?? 0) + 1);
    send(res, response);
  }
}

function send(res: ServerResponse, r: ApiResponse): void {
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

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new ApiError(413, `request body larger than ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
