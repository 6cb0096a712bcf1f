/**
 * Fleet commands as local API calls: each verb and its payload become the method, path and body of
 * the route that answers the same request over HTTP, so a command gets the same checks
 * (`apply_enabled`, `allowed_directories`) and the same JSON. No NATS here.
 */
import { VERBS, type Verb } from './subjects.js';

export interface ApiCall {
  method: 'GET' | 'PUT';
  path: string;
  body: string;
}

/** The reply of a command: the local API's status and body. */
export interface CommandReply {
  ok: boolean;
  status: number;
  body: unknown;
}

/** A bad verb or payload: answered with status 400 and this message. */
export class CommandError extends Error {}

function isVerb(verb: string): verb is Verb {
  return (VERBS as readonly string[]).includes(verb);
}

/** Parses a request payload: empty means `{}`; anything else must be a JSON object. */
export function parsePayload(data: Uint8Array): Record<string, unknown> {
  const text = new TextDecoder().decode(data).trim();
  if (!text) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new CommandError(`payload is not valid JSON: ${(e as Error).message}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw new CommandError('payload must be a JSON object (or empty)');
  return value as Record<string, unknown>;
}

function only(verb: string, payload: Record<string, unknown>, keys: string[]): void {
  const extra = Object.keys(payload).filter((k) => !keys.includes(k));
  if (extra.length)
    throw new CommandError(
      `${verb}: unknown key(s) ${extra.map((k) => JSON.stringify(k)).join(', ')}; accepted: ${keys.join(', ') || 'none'}`,
    );
}

function instanceOf(verb: string, payload: Record<string, unknown>): string {
  const instance = payload.instance;
  if (typeof instance !== 'string' || !instance)
    throw new CommandError(`${verb}: "instance" must be a non-empty string (an nginx instance id from nginx.list)`);
  return encodeURIComponent(instance);
}

function nonNegative(verb: string, key: string, value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0)
    throw new CommandError(`${verb}: "${key}" must be a non-negative integer, got ${JSON.stringify(value)}`);
  return value;
}

/** The API call for `verb` with `payload`; throws CommandError naming the problem. */
export function commandCall(verb: string, payload: Record<string, unknown>): ApiCall {
  if (!isVerb(verb)) throw new CommandError(`unknown verb ${JSON.stringify(verb)}; known verbs: ${VERBS.join(', ')}`);
  switch (verb) {
    case 'status':
      only(verb, payload, []);
      return { method: 'GET', path: '/v1/status', body: '' };
    case 'nginx.list':
      only(verb, payload, []);
      return { method: 'GET', path: '/v1/nginx', body: '' };
    case 'plugins.list':
      only(verb, payload, []);
      return { method: 'GET', path: '/v1/plugins', body: '' };
    case 'nginx.config.get':
      only(verb, payload, ['instance']);
      return { method: 'GET', path: `/v1/nginx/${instanceOf(verb, payload)}/config`, body: '' };
    case 'nginx.config.apply': {
      only(verb, payload, ['instance', 'files', 'dry_run']);
      const id = instanceOf(verb, payload);
      if (payload.dry_run !== undefined && typeof payload.dry_run !== 'boolean')
        throw new CommandError(`${verb}: "dry_run" must be true or false`);
      // The files are checked by the API handler itself (same 400 messages as over HTTP).
      return {
        method: 'PUT',
        path: `/v1/nginx/${id}/config${payload.dry_run ? '?dry_run=true' : ''}`,
        body: JSON.stringify({ files: payload.files }),
      };
    }
    case 'events.recent': {
      only(verb, payload, ['since', 'limit']);
      const query = new URLSearchParams();
      const since = nonNegative(verb, 'since', payload.since);
      const limit = nonNegative(verb, 'limit', payload.limit);
      if (since !== undefined) query.set('since', String(since));
      if (limit !== undefined) query.set('limit', String(limit));
      const q = query.toString();
      return { method: 'GET', path: `/v1/events${q ? `?${q}` : ''}`, body: '' };
    }
  }
}
