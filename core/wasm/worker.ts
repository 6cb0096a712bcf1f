/**
 * The worker thread hosting every Wasm plugin in-process (Extism's own worker mode costs ~4 ms a
 * call). Requests arrive one at a time from WasmRuntime; a call that never returns is ended by the
 * agent terminating this thread, so nothing here needs a timeout of its own.
 */
import createPlugin, { type CallContext, type Plugin } from '@extism/extism';
import { parentPort } from 'node:worker_threads';
import { compilePattern } from '../bus/pattern.js';
import { isOpenTopic } from './manifest.js';
import { metricBatchProblem } from './metric-batch.js';
import type { CallReply, FromWorker, LoadReply, LoadSpec, Publish, ToWorker } from './protocol.js';

const port = parentPort!;
const send = (m: FromWorker) => port.postMessage(m);

/*
 * Extism's JS SDK ignores the i32 an export returns; Extism's other SDKs fail the call when it is
 * non-zero, and ABI v1 reads it so. The SDK instantiates with WebAssembly.instantiate, so (in this
 * worker only) instances are handed over with their ABI exports wrapped to record the return value.
 */
let lastReturn: unknown;
const ABI_EXPORTS = new Set(['process', 'init', 'describe']);
/**
 * Extism's kernel `alloc` makes host-side ArrayBuffers, outside the plugin's linear memory and the
 * worker's heap limit. Wrapped the same way: a plugin may allocate at most its memory cap per call.
 */
const allocBudget = { used: 0, limit: Infinity };
class AllocLimitError extends Error {}
const instantiate = WebAssembly.instantiate.bind(WebAssembly);
(WebAssembly as { instantiate: unknown }).instantiate = async (src: unknown, imports?: WebAssembly.Imports) => {
  const env = imports?.['extism:host/env'] as Record<string, (...a: unknown[]) => unknown> | undefined;
  if (env?.alloc) {
    const alloc = env.alloc;
    imports = {
      ...imports,
      'extism:host/env': {
        ...env,
        alloc: (n: unknown) => {
          allocBudget.used += Number(n);
          if (allocBudget.used > allocBudget.limit)
            throw new AllocLimitError(
              `Extism memory blocks over memory_mb in one call (${Math.round(allocBudget.used / 1048576)} MiB)`,
            );
          return alloc(n);
        },
      },
    };
  }
  const r = await (instantiate as (s: unknown, i?: WebAssembly.Imports) => Promise<unknown>)(src, imports);
  if (!(r instanceof WebAssembly.Instance)) return r;
  const exports: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r.exports)) {
    exports[k] =
      typeof v === 'function' && ABI_EXPORTS.has(k)
        ? (...a: unknown[]) => (lastReturn = (v as (...x: unknown[]) => unknown)(...a))
        : v;
  }
  return { exports: Object.freeze(exports) };
};

interface Loaded {
  spec: LoadSpec;
  plugin: Plugin;
  memory: WebAssembly.Memory | undefined;
  publishes: ((t: string) => boolean)[];
  /** The call in progress (publishes collected by the host function). */
  call: { publishes: Publish[]; refused: CallReply['refused'] } | null;
}

const loaded = new Map<string, Loaded>();

function refuseReason(l: Loaded, m: unknown): string | undefined {
  if (m === null || typeof m !== 'object' || Array.isArray(m)) return 'not a JSON object {"topic","data"}';
  const { topic, data } = m as { topic?: unknown; data?: unknown };
  if (typeof topic !== 'string') return 'topic is not a string';
  if (topic === 'metrics') {
    if (!l.spec.publishes.includes('metrics')) return `"metrics" is not in the manifest's publishes`;
    const problem = metricBatchProblem(l.spec.name, data);
    return problem ? `not a valid MetricBatch: ${problem}` : undefined;
  }
  if (!isOpenTopic(topic)) return `"${topic}" is not an open topic (alert.*, lint.*, event.*) nor metrics`;
  if (!l.publishes.some((p) => p(topic))) return `"${topic}" is not in the manifest's publishes`;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return 'data is not a JSON object';
  return undefined;
}

/** Returns 0 when accepted, 1 refused, 2 unreadable. */
function accept(l: Loaded, m: unknown): number {
  const call = l.call;
  if (!call) return 1;
  const reason = refuseReason(l, m);
  const topic = typeof (m as { topic?: unknown })?.topic === 'string' ? String((m as { topic: string }).topic) : '';
  if (reason) {
    call.refused.push({ topic, reason });
    return 1;
  }
  if (call.publishes.length >= l.spec.maxPublishesPerCall) {
    call.refused.push({ topic, reason: `more than ${l.spec.maxPublishesPerCall} messages in one call` });
    return 1;
  }
  call.publishes.push(m as Publish);
  return 0;
}

async function load(spec: LoadSpec): Promise<LoadReply & { seq: 0 }> {
  const logTo = (level: 'error' | 'warn' | 'info' | 'debug') => (message: unknown) =>
    send({ type: 'log', id: spec.id, level, message: String(message) });
  const logger = {
    error: logTo('error'),
    warn: logTo('warn'),
    info: logTo('info'),
    debug: logTo('debug'),
    trace: logTo('debug'),
    log: logTo('info'),
  };
  const holder: { l?: Loaded } = {};
  const plugin = await createPlugin(
    { wasm: [{ data: spec.wasm }] },
    {
      useWasi: spec.useWasi,
      allowedHosts: spec.allowedHosts,
      allowedPaths: spec.allowedPaths,
      config: spec.config,
      logger: logger as unknown as Console,
      functions: {
        'extism:host/user': {
          publish(cp: CallContext, offset: bigint): bigint {
            const l = holder.l!;
            let text: string | undefined;
            try {
              text = cp.read(offset)?.text();
            } catch {
              text = undefined;
            }
            if (text === undefined) {
              l.call?.refused.push({ topic: '', reason: `no memory block at offset ${offset}` });
              return 2n;
            }
            let m: unknown;
            try {
              m = JSON.parse(text);
            } catch {
              l.call?.refused.push({ topic: '', reason: 'not JSON' });
              return 1n;
            }
            return BigInt(accept(l, m));
          },
        },
      },
    },
  );
  const instance = await plugin.getInstance();
  const l: Loaded = {
    spec,
    plugin,
    memory: instance.exports.memory instanceof WebAssembly.Memory ? instance.exports.memory : undefined,
    publishes: spec.publishes.map(compilePattern),
    call: null,
  };
  holder.l = l;
  let describe: LoadReply['describe'];
  allocBudget.used = 0;
  allocBudget.limit = spec.memoryBytes;
  try {
    if (await plugin.functionExists('init')) {
      lastReturn = undefined;
      await plugin.call('init');
      if (typeof lastReturn === 'number' && lastReturn !== 0) throw new Error(`init returned ${lastReturn}`);
      await plugin.reset();
    }
    if (await plugin.functionExists('describe')) {
      try {
        const d = (await plugin.call('describe'))?.json() as { version?: unknown; description?: unknown } | undefined;
        if (d && typeof d === 'object') {
          describe = {
            ...(typeof d.version === 'string' ? { version: d.version } : {}),
            ...(typeof d.description === 'string' ? { description: d.description } : {}),
          };
        }
      } catch {
        describe = undefined; // describe is informative: a bad one does not fail the load
      }
      await plugin.reset();
    }
  } catch (e) {
    await plugin.close().catch(() => undefined);
    throw new Error(`init failed: ${(e as Error).message}`, { cause: e });
  } finally {
    allocBudget.limit = Infinity;
  }
  loaded.set(spec.id, l);
  return {
    type: 'reply',
    seq: 0,
    ok: true,
    ...(describe ? { describe } : {}),
    memBytes: l.memory?.buffer.byteLength ?? 0,
  };
}

async function call(id: string, input: string): Promise<Omit<CallReply, 'seq'>> {
  const l = loaded.get(id);
  if (!l)
    return {
      type: 'reply',
      ok: false,
      error: `plugin ${id} is not loaded`,
      publishes: [],
      refused: [],
      memBytes: 0,
      ms: 0,
    };
  const c = { publishes: [] as Publish[], refused: [] as CallReply['refused'] };
  l.call = c;
  // The SDK never recycles its memory blocks; past 32768 an offset turns negative in host functions.
  await l.plugin.reset();
  const t0 = performance.now();
  let error: string | undefined;
  let output: string | undefined;
  let overAlloc = false;
  allocBudget.used = 0;
  allocBudget.limit = l.spec.memoryBytes;
  try {
    lastReturn = undefined;
    output = (await l.plugin.call('process', input))?.text();
    if (typeof lastReturn === 'number' && lastReturn !== 0) error = `process returned ${lastReturn}`;
  } catch (e) {
    error = (e as Error).message;
    overAlloc = e instanceof AllocLimitError;
  } finally {
    allocBudget.limit = Infinity;
  }
  const ms = performance.now() - t0;
  l.call = null;
  if (!error && output !== undefined && output.startsWith('{')) {
    let o: unknown;
    try {
      o = JSON.parse(output);
    } catch {
      o = undefined; // output that is not JSON is ignored (ABI v1)
    }
    const list = (o as { publish?: unknown } | undefined)?.publish;
    if (Array.isArray(list)) {
      l.call = c;
      for (const m of list) accept(l, m);
      l.call = null;
    }
  }
  const memBytes = l.memory?.buffer.byteLength ?? 0;
  const memoryCap = memBytes > l.spec.memoryBytes || overAlloc;
  return {
    type: 'reply',
    ok: error === undefined,
    ...(error ? { error } : {}),
    ...(memoryCap ? { memoryCap } : {}),
    publishes: c.publishes,
    refused: c.refused,
    memBytes,
    ms,
  };
}

port.on('message', (m: ToWorker) => {
  const done = (r: Omit<CallReply, 'seq'> | Omit<LoadReply, 'seq'>) => send({ ...r, seq: m.seq } as FromWorker);
  if (m.type === 'load') {
    load(m.spec).then(done, (e: unknown) => done({ type: 'reply', ok: false, error: (e as Error).message }));
  } else if (m.type === 'call') {
    call(m.id, m.input).then(done, (e: unknown) =>
      done({ type: 'reply', ok: false, error: (e as Error).message, publishes: [], refused: [], memBytes: 0, ms: 0 }),
    );
  } else if (m.type === 'unload') {
    const l = loaded.get(m.id);
    loaded.delete(m.id);
    void (l ? l.plugin.close() : Promise.resolve())
      .catch(() => undefined)
      .then(() => done({ type: 'reply', ok: true }));
  }
});
send({ type: 'ready' });
