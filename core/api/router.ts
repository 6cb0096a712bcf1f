/** Route table shared by the HTTP server and the test harness: `:name` segments, exact method match. */
import { ApiError, type ApiHandler, type ApiRequest, type ApiResponse, type ApiRouter } from './types.js';

interface Route {
  method: string;
  pattern: string;
  parts: string[];
  handler: ApiHandler;
}

/** A handler threw something other than an ApiError: carries the route (`GET /v1/x/:id`) for the log line. */
export class RouteFailure extends Error {
  constructor(
    readonly route: string,
    cause: unknown,
  ) {
    super(`${route}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

export class RouteTable implements ApiRouter {
  readonly #routes: Route[] = [];

  route(method: 'GET' | 'PUT' | 'POST' | 'DELETE', pattern: string, handler: ApiHandler): void {
    const route = { method, pattern, parts: pattern.split('/').filter(Boolean), handler };
    const existing = this.#routes.findIndex((r) => r.method === method && r.pattern === pattern);
    if (existing >= 0) this.#routes[existing] = route;
    else this.#routes.push(route);
  }

  /**
   * Finds the route and runs it. Throws ApiError 404/405 when nothing matches and 400 when a path
   * parameter is not valid percent-encoding; an ApiError thrown by the handler is turned into
   * `{ status, body: { error, details? } }`; any other error is rethrown as a RouteFailure naming the route.
   */
  async dispatch(req: Omit<ApiRequest, 'params' | 'json'>): Promise<ApiResponse> {
    const segs = req.path.split('/').filter(Boolean);
    let methodMismatch = false;
    for (const r of this.#routes) {
      if (r.parts.length !== segs.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < segs.length && ok; i++) {
        if (r.parts[i].startsWith(':')) params[r.parts[i].slice(1)] = decodeSegment(segs[i]);
        else ok = r.parts[i] === segs[i];
      }
      if (!ok) continue;
      if (r.method !== req.method) {
        methodMismatch = true;
        continue;
      }
      const body = req.body;
      try {
        return await r.handler({
          ...req,
          params,
          json() {
            try {
              return JSON.parse(body);
            } catch (e) {
              throw new ApiError(400, `request body is not valid JSON: ${(e as Error).message}`);
            }
          },
        });
      } catch (err) {
        if (err instanceof ApiError) return errorResponse(err);
        throw new RouteFailure(`${r.method} ${r.pattern}`, err);
      }
    }
    if (methodMismatch) throw new ApiError(405, `method ${req.method} not allowed on ${req.path}`);
    throw new ApiError(404, `no such endpoint: ${req.method} ${req.path}`);
  }
  /**
   * Runs the handler of `method path` in-process, with the same checks and JSON as over HTTP (the
   * fleet answers its commands this way). `path` may carry a query string. Never throws an ApiError:
   * 404, 405 and handler errors come back as `{ status, body: { error } }`.
   */
  async call(method: string, path: string, body = ''): Promise<ApiResponse> {
    try {
      const target = parseTarget(path);
      return await this.dispatch({ method, path: target.path, query: target.query, headers: {}, body });
    } catch (err) {
      if (err instanceof ApiError) return errorResponse(err);
      return { status: 500, body: { error: `internal error: ${(err as Error).message}` } };
    }
  }
}

function decodeSegment(seg: string): string {
  try {
    return decodeURIComponent(seg);
  } catch {
    throw new ApiError(400, `bad percent-encoding in the path segment "${seg}": use %XX escapes of UTF-8 bytes`);
  }
}

export function errorResponse(err: ApiError): ApiResponse {
  return {
    status: err.status,
    body: { error: err.message, ...(err.details !== undefined ? { details: err.details } : {}) },
  };
}

/** The request target's path and query, without URL normalisation (an absolute-form target is reduced to its path). */
export function parseTarget(target: string): { path: string; query: URLSearchParams } {
  let rest = target;
  if (!rest.startsWith('/')) {
    if (!/^https?:\/\//i.test(rest))
      throw new ApiError(
        400,
        `bad request target ${JSON.stringify(target.slice(0, 200))}: expected a path such as /metrics`,
      );
    try {
      const url = new URL(rest);
      rest = `${url.pathname}${url.search}`;
    } catch {
      throw new ApiError(400, `bad request target ${JSON.stringify(target.slice(0, 200))}: not a valid URL`);
    }
  }
  const hash = rest.indexOf('#');
  if (hash >= 0) rest = rest.slice(0, hash);
  const q = rest.indexOf('?');
  return q < 0
    ? { path: rest, query: new URLSearchParams() }
    : { path: rest.slice(0, q), query: new URLSearchParams(rest.slice(q + 1)) };
}
