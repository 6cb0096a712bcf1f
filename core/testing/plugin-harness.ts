/**
 * Runs one built-in plugin on the real bus, store and API router, without the HTTP server:
 * tests publish messages to it, read what it published, and call its API routes.
 */
import { Bus } from '../bus/bus.js';
import { RouteTable } from '../api/router.js';
import { ApiError } from '../api/types.js';
import type { Issue } from '../config/schema.js';
import { nullLogger } from '../logging.js';
import { MetricStore } from '../metrics/store.js';
import { EventLog } from '../events/log.js';
import type { Metric } from '../metrics/model.js';
import type { BuiltinPlugin } from '../plugin/builtin.js';
import type { AgentInfo } from '../plugin/types.js';
import { PluginHost } from '../plugin/host.js';
import type { Envelope, Topic, TopicMap } from '../topics.js';
import { waitFor } from './nginx.js';
import type { Logger } from 'pino';

export interface PluginHarness {
  bus: Bus;
  store: MetricStore;
  host: PluginHost;
  /** What the plugin sees as `ctx.events`: tests record events into it. */
  events: EventLog;
  /** Every message published on the bus, in order (the harness subscribes to `*`). */
  published: Envelope[];
  publish<K extends Topic>(topic: K, data: TopicMap[K]): void;
  /** Calls a route the plugin registered, as the API server would. Errors become `{ error }` bodies. */
  request(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
  /** Latest metrics in the store, by OTel name. */
  metric(name: string): Metric | undefined;
  waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Validates `rawConfig` with the plugin's schema (throws listing every problem), then starts the plugin. */
export async function startPlugin(
  entry: BuiltinPlugin,
  rawConfig: Record<string, unknown> = {},
  opts: { logger?: Logger; agent?: Partial<AgentInfo> } = {},
): Promise<PluginHarness> {
  const issues: Issue[] = [];
  const config = entry.schema.parse(rawConfig, [entry.name], issues);
  if (issues.length)
    throw new Error(
      `bad test config for ${entry.name}: ${issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  const bus = new Bus({ queueSize: 100_000 });
  const store = new MetricStore();
  const router = new RouteTable();
  const events = new EventLog({ capacity: 10_000 });
  const published: Envelope[] = [];
  bus.subscribe('harness-recorder', ['*'], (m) => {
    published.push(m);
    if (m.topic === 'metrics') store.apply(m.data);
  });
  const host = new PluginHost({
    bus,
    logger: opts.logger ?? nullLogger(),
    api: router,
    store,
    agent: { version: 'test', startedAt: Date.now(), hostname: 'test-host', ...opts.agent },
    events,
  });
  const key = entry.name.replaceAll('-', '_');
  await host.startBuiltins([entry], { [key]: config } as never);
  const state = host.report().find((r) => r.name === entry.name);
  if (state?.state === 'failed') throw new Error(`plugin ${entry.name} failed to start: ${state.reason}`);

  return {
    bus,
    store,
    host,
    events,
    published,
    publish: (topic, data) => bus.publish(topic, data),
    async request(method, path, body) {
      const url = new URL(path, 'http://localhost');
      const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
      try {
        const res = await router.dispatch({
          method,
          path: url.pathname,
          query: url.searchParams,
          headers: {},
          body: text,
        });
        return { status: res.status, body: res.body };
      } catch (err) {
        if (err instanceof ApiError) return { status: err.status, body: { error: err.message } };
        throw err;
      }
    },
    metric(name) {
      return store.snapshot().find((m) => m.name === name) as Metric | undefined;
    },
    waitFor: (cond, what, timeoutMs) => waitFor(cond, what, timeoutMs),
    async close() {
      host.stopSources();
      await bus.drain(2000);
      await host.closeAll(5000);
    },
  };
}
