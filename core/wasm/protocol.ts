/** Messages between the agent and the worker thread that runs every Wasm plugin (over its MessagePort). */
import type { PluginAbi, PluginLogLevel } from './host-env.js';

/** Changed Extism vars: a value, or null when deleted. */
export type VarChanges = Record<string, Uint8Array | null>;

/** What the worker needs to instantiate one plugin. `id` is unique per loaded version (`name#generation`). */
export interface LoadSpec {
  id: string;
  name: string;
  /** `extism` (Extism PDKs, kernel in `extism:host/env`) or `wapc` (`__guest_call`). */
  abi: PluginAbi;
  /** The module, its memory maximum already set (see capMemory). */
  wasm: Uint8Array;
  config: Record<string, string>;
  publishes: string[];
  allowedHosts: string[];
  /** Absolute host directory → path in the guest. */
  allowedPaths: Record<string, string>;
  useWasi: boolean;
  /** Extism level (0 trace .. 4 error): `get_log_level`, and lines below it are dropped in the worker. */
  logLevel: number;
  /** Extism vars kept for this version (restored after a worker restart), and their byte budget. */
  vars: Record<string, Uint8Array>;
  varsMaxBytes: number;
  httpTimeoutMs: number;
  httpMaxResponseBytes: number;
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
  vars?: VarChanges;
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
  /** Vars the call set or deleted. */
  vars?: VarChanges;
}

export type FromWorker =
  | LoadReply
  | CallReply
  | { type: 'log'; id: string; level: PluginLogLevel; message: string }
  | { type: 'ready' };
