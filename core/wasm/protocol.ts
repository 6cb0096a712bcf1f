/** Messages between the agent and the worker thread that runs every Wasm plugin (over its MessagePort). */

/** What the worker needs to instantiate one plugin. `id` is unique per loaded version (`name#generation`). */
export interface LoadSpec {
  id: string;
  name: string;
  /** The module, its memory maximum already set (see capMemory). */
  wasm: Uint8Array;
  config: Record<string, string>;
  publishes: string[];
  allowedHosts: string[];
  allowedPaths: Record<string, string>;
  useWasi: boolean;
  memoryBytes: number;
  /** At most this many messages accepted per call (both paths together); the rest are refused. */
  maxPublishesPerCall: number;
}

export type ToWorker =
  | { type: 'load'; seq: number; spec: LoadSpec }
  | { type: 'call'; seq: number; id: string; input: string }
  | { type: 'unload'; seq: number; id: string };

export interface Publish {
  topic: string;
  data: Record<string, unknown>;
}

export interface LoadReply {
  type: 'reply';
  seq: number;
  ok: boolean;
  error?: string;
  describe?: { version?: string; description?: string };
  memBytes?: number;
}

export interface CallReply {
  type: 'reply';
  seq: number;
  ok: boolean;
  /** Trap, Extism error or non-zero return, with the plugin's message. */
  error?: string;
  /** The plugin's linear memory ended the call above memory_mb. */
  memoryCap?: boolean;
  publishes: Publish[];
  /** Refused publishes: topic (or "" when unreadable) and why. */
  refused: { topic: string; reason: string }[];
  memBytes: number;
  /** Time inside the plugin, ms. */
  ms: number;
}

export type FromWorker =
  | LoadReply
  | CallReply
  | { type: 'log'; id: string; level: 'error' | 'warn' | 'info' | 'debug'; message: string }
  | { type: 'ready' };
