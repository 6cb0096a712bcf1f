/** Event filters: compiled once, and parsed from a query string (`/v1/events`, `/v1/events/stream`). */
import { compilePattern } from '../bus/pattern.js';
import { ApiError } from '../api/types.js';
import { type AgentEvent, type EventFilter, SEVERITIES, type Severity, severityAtLeast } from './types.js';

export type EventMatcher = (event: AgentEvent) => boolean;

/** Kind patterns, minimum severity and `since`; `limit` is applied by the reader. */
export function compileFilter(filter: EventFilter = {}): EventMatcher {
  const kinds = (filter.kinds ?? []).filter((k) => k !== '').map(compilePattern);
  const minimum = filter.severity;
  const since = filter.since ?? 0;
  return (e) => {
    if (e.id <= since) return false;
    if (minimum && !severityAtLeast(e.severity, minimum)) return false;
    if (kinds.length === 0) return true;
    for (const k of kinds) if (k(e.kind)) return true;
    return false;
  };
}

export function isSeverity(text: string): text is Severity {
  return (SEVERITIES as readonly string[]).includes(text);
}

/**
 * `kind` (repeatable, or comma-separated patterns such as `alert.*`), `severity` (minimum),
 * `since` (an event id) and `limit`. A bad value is an ApiError 400 naming the parameter.
 */
export function filterFromQuery(query: URLSearchParams, maxLimit: number): EventFilter {
  const filter: EventFilter & { kinds?: string[] } = {};
  const kinds = query
    .getAll('kind')
    .flatMap((k) => k.split(','))
    .map((k) => k.trim())
    .filter(Boolean);
  for (const k of kinds) {
    try {
      compilePattern(k);
    } catch (e) {
      throw new ApiError(400, `kind: ${(e as Error).message}`);
    }
  }
  if (kinds.length) filter.kinds = kinds;
  const severity = query.get('severity');
  if (severity !== null && severity !== '') {
    if (!isSeverity(severity))
      throw new ApiError(400, `severity: ${JSON.stringify(severity)} is not one of ${SEVERITIES.join(', ')}`);
    filter.severity = severity;
  }
  const since = query.get('since');
  if (since !== null && since !== '') filter.since = nonNegativeInt('since', since, Number.MAX_SAFE_INTEGER);
  const limit = query.get('limit');
  if (limit !== null && limit !== '') filter.limit = nonNegativeInt('limit', limit, maxLimit);
  return filter;
}

function nonNegativeInt(name: string, text: string, max: number): number {
  if (!/^\d+$/.test(text)) throw new ApiError(400, `${name}: ${JSON.stringify(text)} is not a non-negative integer`);
  const n = Number(text);
  if (n > max) throw new ApiError(400, `${name}: ${n} is above the maximum ${max}`);
  return n;
}
