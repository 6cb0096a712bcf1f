/**
 * Test harness: a real Agent (bus, plugin host, API on port 0) loading the Wasm plugins of one
 * directory, recording its log lines and what is published on the given topic patterns. Stopped
 * after the test file (node:test `after`).
 */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import pino from 'pino';
import { Agent } from '../agent.js';
import { loadConfig } from '../config/load.js';
import type { Envelope } from '../topics.js';

export interface Harness {
  agent: Agent;
  url: string;
  logs: Record<string, unknown>[];
  /** Everything published on `patterns`. */
  seen: Envelope[];
  get(path: string): Promise<{ status: number; body: Record<string, unknown>; ms: number }>;
  plugin(name: string): Promise<{ state: string; reason?: string; details: Record<string, number | string> }>;
  stop(): Promise<void>;
}

const running: Harness[] = [];
after(async () => {
  for (const h of running) await h.stop();
});

export async function startAgent(
  dir: string,
  wasm: Record<string, unknown> = {},
  patterns = ['event.*', 'alert.*', 'nginx.*', 'agent.plugin.state'],
  logLevel = 'debug',
): Promise<Harness> {
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: logLevel }, { write: (s: string) => void logs.push(JSON.parse(s)) });
  const flags = [
    { path: 'api.port', flag: '--api-port', value: 0 },
    { path: 'wasm.dirs', flag: '--plugins-dir', value: [dir] },
    { path: 'wasm.reload_debounce', flag: 'test', value: '50ms' },
    ...Object.entries(wasm).map(([k, value]) => ({ path: `wasm.${k}`, flag: 'test', value })),
  ];
  const loaded = loadConfig({ builtins: [], flags, env: {}, searchPaths: [] });
  const agent = new Agent({ loaded, builtins: [], logger });
  const seen: Envelope[] = [];
  agent.bus.subscribe('test-recorder', patterns, (m) => void seen.push(m), { queueSize: 1_000_000 });
  await agent.start();
  await agent.wasm!.ready;
  const url = `http://127.0.0.1:${agent.apiAddress!.port}`;
  const get = async (path: string) => {
    const t0 = performance.now();
    const res = await fetch(url + path);
    const text = await res.text();
    return { status: res.status, body: path === '/metrics' ? { text } : JSON.parse(text), ms: performance.now() - t0 };
  };
  let stopped = false;
  const h: Harness = {
    agent,
    url,
    logs,
    seen,
    get,
    async plugin(name) {
      const r = await get('/v1/plugins');
      const p = (r.body.plugins as { name: string }[]).find((x) => x.name === name);
      assert.ok(p, `plugin ${name} in /v1/plugins`);
      return p as never;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await agent.stop();
    },
  };
  running.push(h);
  return h;
}
