/** The local HTTP API as plugins see it: they add routes, the core serves them. */
import type { ServerResponse } from 'node:http';

export interface ApiRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  /** `:name` segments of the route pattern. */
  params: Record<string, string>;
  query: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
  /** Raw body (empty string for none); `json()` parses it or throws an ApiError 400. */
  body: string;
  json(): unknown;
}

export interface ApiResponse {
  status: number;
  /** Objects are sent as JSON; strings as text/plain unless `contentType` says otherwise. */
  body: unknown;
  contentType?: string;
  headers?: Record<string, string>;
  /**
   * A long-lived response (Server-Sent Events): called once the status and headers are sent, it
   * owns the raw response from then on (writes, ends it, watches `close`). `body` is then ignored.
   */
  stream?: (res: ServerResponse) => void;
}

export type ApiHandler = (req: ApiRequest) => ApiResponse | Promise<ApiResponse>;

export interface ApiRouter {
  /** Adds a route such as `GET /v1/nginx/:id/config`. A later route with the same method and pattern replaces the earlier one. */
  route(method: 'GET' | 'PUT' | 'POST' | 'DELETE', pattern: string, handler: ApiHandler): void;
}

/** Thrown by handlers to answer with a status and a message: `{ "error": message }`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}
