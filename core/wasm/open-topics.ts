/**
 * The topics a Wasm plugin may publish on. Its own module so the plugin worker imports it without
 * the manifest parser (the YAML library alone made the worker's first load ~80 ms slower).
 */
import { OPEN_TOPIC_PREFIXES } from '../topics.js';

/** True when a pattern only ever matches topics a Wasm plugin may publish (`alert.*`, `lint.*`, `event.*`). */
export function isOpenPattern(pattern: string): boolean {
  return OPEN_TOPIC_PREFIXES.some((p) => pattern.startsWith(p) && pattern.length > p.length);
}

/** True when `topic` is an open topic (`alert.x`, `lint.x`, `event.x`). */
export function isOpenTopic(topic: string): boolean {
  return /^[A-Za-z0-9_.-]+$/.test(topic) && isOpenPattern(topic);
}
