/**
 * The worker thread hosting every Wasm plugin in-process (Extism's own worker mode costs ~4 ms a
 * call). Requests arrive in rounds from WasmRuntime (an array, one message); they run one after the
 * other, each answered as soon as it is done. A call that never returns is ended by the agent
 * terminating this thread, so nothing here needs a timeout of its own.
 */
import createPlugin, { type CallContext, type Plugin } from '@extism/extism';
import { WASI } from 'node:wasi';
import { parentPort } from 'node:worker_threads';
import { compilePattern } from '../bus/pattern.js';
import {
  EXTISM_ENV,
  EXTISM_LOG_LEVEL,
  EXTISM_USER,
  hostAllowed,
  type PluginLogLevel,
  WAPC,
  WASI as WASI_MODULE,
} from './host-env.js';
import { isOpenTopic } from './open-topics.js';
import { metricBatchProblem, withMetricDefaults } from './metric-batch.js';
import type { CallReply, FromWorker, LoadReply, LoadSpec, Publish, ToWorker, VarChanges } from './protocol.js';
import { SyncHttp } from './sync-http.js';

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
  const target = instantiating;
  if (target && imports?.[WASI_MODULE])
    imports = { ...imports, [WASI_MODULE]: withStdio(imports[WASI_MODULE], target) as WebAssembly.ModuleImports };
  const r = await (instantiate as (s: unknown, i?: WebAssembly.Imports) => Promise<unknown>)(src, imports);
  if (!(r instanceof WebAssembly.Instance)) return r;
  if (target && r.exports.memory instanceof WebAssembly.Memory) target.memory = r.exports.memory;
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
  guest: Guest;
  publishes: ((t: string) => boolean)[];
  /** The call in progress (publishes collected by the host functions). */
  call: { publishes: Publish[]; refused: CallReply['refused'] } | null;
  vars: Map<string, Uint8Array>;
  varsBytes: number;
  /** Vars set or deleted since the last reply. */
  varsChanged: VarChanges;
  /** The last `http_request`'s answer, for `http_status_code` and `http_headers`. */
  http: { status: number; headers: Record<string, string> } | undefined;
  /** Partial WASI stdout/stderr lines, by fd. */
  stdio: Map<number, string>;
}

/** A loaded module, Extism or waPC, as the worker calls it. */
interface Guest {
  memory(): WebAssembly.Memory | undefined;
  has(fn: 'init' | 'describe'): Promise<boolean>;
  /** Runs `init`, `describe` or `process`; resolves to the output text, rejects with the plugin's error. */
  run(fn: 'init' | 'describe' | 'process', input?: string): Promise<string | undefined>;
  close(): Promise<void>;
}

const loaded = new Map<string, Loaded>();
const http = new SyncHttp();
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function pluginLog(l: Loaded, level: PluginLogLevel, message: string): void {
  if (EXTISM_LOG_LEVEL[level] < l.spec.logLevel) return;
  send({ type: 'log', id: l.spec.id, level, message });
}

/** WASI writes to stdout (info) and stderr (warn) become plugin log lines, one per line. */
function stdio(l: Loaded, fd: number, text: string, flush = false): void {
  const lines = ((l.stdio.get(fd) ?? '') + text).split('\n');
  const rest = flush ? '' : lines.pop()!;
  l.stdio.set(fd, rest);
  for (const line of lines) if (line !== '') pluginLog(l, fd === 2 ? 'warn' : 'info', line);
}

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

/** Returns undefined when accepted, else why it was refused (recorded with the call). */
function accept(l: Loaded, m: unknown): string | undefined {
  const call = l.call;
  if (!call) return 'publish outside a call of process';
  let reason = refuseReason(l, m);
  const topic = typeof (m as { topic?: unknown })?.topic === 'string' ? String((m as { topic: string }).topic) : '';
  if (!reason && call.publishes.length >= l.spec.maxPublishesPerCall)
    reason = `more than ${l.spec.maxPublishesPerCall} messages in one call`;
  if (reason) {
    call.refused.push({ topic, reason });
    return reason;
  }
  if (topic === 'metrics') withMetricDefaults((m as Publish).data);
  call.publishes.push(m as Publish);
  return undefined;
}

/** Publishes the JSON text `text` (host function `publish` or waPC `agent/bus/publish`). */
function publishText(l: Loaded, text: string): string | undefined {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    l.call?.refused.push({ topic: '', reason: 'not JSON' });
    return 'not JSON';
  }
  return accept(l, m);
}

function varSet(l: Loaded, key: string, value: Uint8Array | null): void {
  const old = l.vars.get(key);
  const size = l.varsBytes - (old ? key.length + old.byteLength : 0) + (value ? key.length + value.byteLength : 0);
  if (size > l.spec.varsMaxBytes)
    throw new Error(
      `var_set ${JSON.stringify(key)}: the plugin's vars would take ${size} bytes, over vars_max_bytes ${l.spec.varsMaxBytes} (plugin.yaml)`,
    );
  if (value) l.vars.set(key, value);
  else l.vars.delete(key);
  l.varsBytes = size;
  l.varsChanged[key] = value;
}

/** `http_request`: only to `allowed_hosts`, with the per-call timeout and size cap. */
function httpRequest(l: Loaded, requestJson: string | undefined, body: Uint8Array | undefined): Uint8Array {
  let req: { url?: unknown; method?: unknown; headers?: unknown };
  try {
    req = JSON.parse(requestJson ?? '');
  } catch {
    throw new Error('http_request: the request is not JSON {"url","method","headers"}');
  }
  let url: URL;
  try {
    url = new URL(String(req.url));
  } catch {
    throw new Error(`http_request: url ${JSON.stringify(req.url)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new Error(`http_request: ${url.protocol} is not http: or https:`);
  if (!hostAllowed(url.hostname, l.spec.allowedHosts))
    throw new Error(
      `http_request: host ${JSON.stringify(url.hostname)} is not in allowed_hosts (${l.spec.allowedHosts.length ? l.spec.allowedHosts.join(', ') : 'none'}) in plugin.yaml`,
    );
  const headers: Record<string, string> = {};
  if (req.headers && typeof req.headers === 'object')
    for (const [k, v] of Object.entries(req.headers)) headers[k] = String(v);
  l.http = undefined;
  let res: ReturnType<SyncHttp['request']>;
  try {
    res = http.request({
      url: url.href,
      method: typeof req.method === 'string' ? req.method.toUpperCase() : 'GET',
      headers,
      ...(body ? { body } : {}),
      timeoutMs: l.spec.httpTimeoutMs,
      maxBytes: l.spec.httpMaxResponseBytes,
    });
  } catch (e) {
    throw new Error(`http_request ${url.href}: ${(e as Error).message}`);
  }
  l.http = { status: res.status, headers: res.headers };
  return res.body;
}

/** The `extism:host/env` functions the SDK lacks or gets wrong here (see host-env.ts HOST_ENV). */
function extismEnv(holder: { l?: Loaded }): Record<string, (cp: CallContext, ...a: bigint[]) => unknown> {
  const text = (cp: CallContext, offset: bigint) => cp.read(offset)?.text();
  const logAt = (level: PluginLogLevel) => (cp: CallContext, offset: bigint) => {
    const message = text(cp, offset);
    pluginLog(
      holder.l!,
      message === undefined ? 'error' : level,
      message ?? `log_${level}: no memory block at ${offset}`,
    );
  };
  return {
    log_trace: logAt('trace'),
    log_debug: logAt('debug'),
    log_info: logAt('info'),
    log_warn: logAt('warn'),
    log_error: logAt('error'),
    get_log_level: () => holder.l!.spec.logLevel,
    config_get(cp, offset) {
      const key = text(cp, offset);
      const value = key === undefined ? undefined : holder.l!.spec.config[key];
      return value === undefined ? 0n : cp.store(encoder.encode(value));
    },
    var_get(cp, offset) {
      const key = text(cp, offset);
      const value = key === undefined ? undefined : holder.l!.vars.get(key);
      return value === undefined ? 0n : cp.store(value);
    },
    var_set(cp, keyOffset, valueOffset) {
      const key = text(cp, keyOffset);
      if (key === undefined) throw new Error(`var_set: no memory block at ${keyOffset} for the name`);
      if (valueOffset === 0n) return varSet(holder.l!, key, null);
      const value = cp.read(valueOffset)?.bytes();
      if (!value) throw new Error(`var_set: no memory block at ${valueOffset} for the value`);
      varSet(holder.l!, key, new Uint8Array(value));
    },
    http_request(cp, requestOffset, bodyOffset) {
      const body = bodyOffset ? cp.read(bodyOffset)?.bytes() : undefined;
      return cp.store(httpRequest(holder.l!, text(cp, requestOffset), body ? new Uint8Array(body) : undefined));
    },
    http_status_code: () => holder.l!.http?.status ?? 0,
    http_headers: (cp) => (holder.l!.http ? cp.store(encoder.encode(JSON.stringify(holder.l!.http.headers))) : 0n),
  };
}

/** Set while a module is instantiated: where its WASI stdout/stderr go and its memory once known. */
let instantiating: { stdio: (fd: number, text: string) => void; memory?: WebAssembly.Memory } | undefined;

/** Wraps WASI's fd_write so stdout and stderr reach the plugin log, never the agent's own streams. */
function withStdio(wasi: Record<string, unknown>, target: NonNullable<typeof instantiating>): Record<string, unknown> {
  const fdWrite = wasi.fd_write as (...a: number[]) => number;
  return {
    ...wasi,
    fd_write(fd: number, iovs: number, iovsLen: number, nwritten: number): number {
      if ((fd !== 1 && fd !== 2) || !target.memory) return fdWrite(fd, iovs, iovsLen, nwritten);
      const view = new DataView(target.memory.buffer);
      let total = 0;
      let out = '';
      for (let i = 0; i < iovsLen; i++) {
        const ptr = view.getUint32(iovs + i * 8, true);
        const len = view.getUint32(iovs + i * 8 + 4, true);
        out += decoder.decode(new Uint8Array(target.memory.buffer, ptr, len));
        total += len;
      }
      view.setUint32(nwritten, total, true);
      target.stdio(fd, out);
      return 0;
    },
  };
}

async function extismGuest(spec: LoadSpec, holder: { l?: Loaded }): Promise<Guest> {
  // The module, not a manifest object, and a fetch of our own: the SDK then never touches the
  // global fetch or Response, whose first use loads undici (~20 ms of this worker's first load).
  // The SDK's fetch has nothing to do here: http_request is the agent's (sync-http.ts).
  const plugin: Plugin = await createPlugin(await WebAssembly.compile(spec.wasm as Uint8Array<ArrayBuffer>), {
    fetch: () => Promise.reject(new Error("the Extism SDK does no HTTP here: http_request is the agent's")),
    useWasi: spec.useWasi,
    // WASI stdin is /dev/null and stdout/stderr are caught by withStdio, whatever EXTISM_ENABLE_WASI_OUTPUT says.
    enableWasiOutput: false,
    allowedHosts: spec.allowedHosts,
    // The SDK hands this to Node's WASI as preopens, keyed by guest path.
    allowedPaths: guestToHost(spec.allowedPaths),
    config: spec.config,
    logger: console,
    functions: {
      [EXTISM_USER]: {
        publish(cp: CallContext, offset: bigint): bigint {
          let text: string | undefined;
          try {
            text = cp.read(offset)?.text();
          } catch {
            text = undefined;
          }
          if (text === undefined) {
            holder.l!.call?.refused.push({ topic: '', reason: `no memory block at offset ${offset}` });
            return 2n;
          }
          return publishText(holder.l!, text) === undefined ? 0n : 1n;
        },
      },
      [EXTISM_ENV]: extismEnv(holder),
    },
  });
  const instance = await plugin.getInstance();
  const memory = instance.exports.memory instanceof WebAssembly.Memory ? instance.exports.memory : undefined;
  return {
    memory: () => memory,
    has: (fn) => plugin.functionExists(fn),
    async run(fn, input) {
      // The SDK never recycles its memory blocks; past 32768 an offset turns negative in host functions.
      await plugin.reset();
      lastReturn = undefined;
      // ['0', fn]: the SDK's module "0" (the one module given to createPlugin); a bare name would have
      // the SDK list the module's exports (WebAssembly.Module.exports) again on every call.
      const output = (await plugin.call(['0', fn], input))?.text();
      if (fn !== 'describe' && typeof lastReturn === 'number' && lastReturn !== 0)
        throw new Error(`${fn} returned ${lastReturn}`);
      return output;
    },
    close: () => plugin.close(),
  };
}

/** A waPC guest: `__guest_call` per operation, host calls through `__host_call`. */
async function wapcGuest(
  spec: LoadSpec,
  holder: { l?: Loaded },
  target: NonNullable<typeof instantiating>,
): Promise<Guest> {
  let memory: WebAssembly.Memory | undefined;
  const bytes = () => new Uint8Array(memory!.buffer);
  const read = (ptr: number, len: number) => bytes().slice(ptr, ptr + len);
  let op = new Uint8Array(0);
  let payload = new Uint8Array(0);
  let response: Uint8Array | undefined;
  let guestError: string | undefined;
  let hostResponse: Uint8Array = new Uint8Array(0);
  let hostError: Uint8Array = new Uint8Array(0);
  const hostCall = (binding: string, namespace: string, operation: string, data: Uint8Array): Uint8Array => {
    const l = holder.l!;
    const route = `${binding}/${namespace}/${operation}`;
    if (route === 'agent/bus/publish') {
      const refused = publishText(l, decoder.decode(data));
      if (refused) throw new Error(`publish refused: ${refused}`);
      return new Uint8Array(0);
    }
    if (route === 'agent/config/get') {
      const value = l.spec.config[decoder.decode(data)];
      if (value === undefined) throw new Error(`no config key ${JSON.stringify(decoder.decode(data))}`);
      return encoder.encode(value);
    }
    throw new Error(`unknown host call ${route}: this host answers agent/bus/publish and agent/config/get`);
  };
  const imports: WebAssembly.Imports = {
    [WAPC]: {
      __guest_request(opPtr: number, ptr: number) {
        bytes().set(op, opPtr);
        bytes().set(payload, ptr);
      },
      __guest_response(ptr: number, len: number) {
        response = read(ptr, len);
      },
      __guest_error(ptr: number, len: number) {
        guestError = decoder.decode(read(ptr, len));
      },
      __host_call(bp: number, bl: number, np: number, nl: number, opp: number, ol: number, pp: number, pl: number) {
        try {
          hostResponse = hostCall(
            decoder.decode(read(bp, bl)),
            decoder.decode(read(np, nl)),
            decoder.decode(read(opp, ol)),
            read(pp, pl),
          );
          return 1;
        } catch (e) {
          hostError = encoder.encode((e as Error).message);
          return 0;
        }
      },
      __host_response_len: () => hostResponse.byteLength,
      __host_response(ptr: number) {
        bytes().set(hostResponse, ptr);
      },
      __host_error_len: () => hostError.byteLength,
      __host_error(ptr: number) {
        bytes().set(hostError, ptr);
      },
      __console_log(ptr: number, len: number) {
        pluginLog(holder.l!, 'info', decoder.decode(read(ptr, len)));
      },
    },
  };
  let wasi: WASI | undefined;
  if (spec.useWasi) {
    wasi = new WASI({ version: 'preview1', preopens: guestToHost(spec.allowedPaths), returnOnExit: true });
    imports[WASI_MODULE] = withStdio(wasi.wasiImport as Record<string, unknown>, target) as WebAssembly.ModuleImports;
  }
  const module = await WebAssembly.compile(spec.wasm as Uint8Array<ArrayBuffer>);
  // The original instantiate: the wrapper above is for the Extism SDK (a real Instance is needed for WASI here).
  const instance = (await instantiate(module, imports)) as WebAssembly.Instance;
  const exports = instance.exports as Record<string, unknown>;
  memory = exports.memory instanceof WebAssembly.Memory ? exports.memory : undefined;
  if (!memory) throw new Error('a waPC guest must export its memory');
  target.memory = memory;
  if (wasi && typeof exports._initialize === 'function') wasi.initialize(instance);
  else if (wasi) wasi.start({ exports: { memory, _start: () => undefined } } as unknown as WebAssembly.Instance);
  const guestCall = exports.__guest_call as (opLen: number, payloadLen: number) => number;
  const inits = ['_start', 'wapc_init'].filter((n) => typeof exports[n] === 'function');
  return {
    memory: () => memory,
    has: async (fn) => fn === 'init' && inits.length > 0,
    async run(fn, input) {
      if (fn === 'init') {
        for (const n of inits) (exports[n] as () => void)();
        return undefined;
      }
      op = encoder.encode(fn);
      payload = encoder.encode(input ?? '');
      response = undefined;
      guestError = undefined;
      const ok = guestCall(op.byteLength, payload.byteLength);
      if (!ok) throw new Error(guestError ?? `__guest_call ${fn} returned 0`);
      return response === undefined ? undefined : decoder.decode(response);
    },
    close: async () => undefined,
  };
}

/** Manifest `allowed_paths` is host → guest; Node's WASI preopens are guest → host. */
function guestToHost(paths: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(paths).map(([host, guest]) => [guest, host]));
}

async function load(spec: LoadSpec): Promise<LoadReply & { seq: 0 }> {
  const holder: { l?: Loaded } = {};
  const target: NonNullable<typeof instantiating> = { stdio: (fd, text) => stdio(holder.l!, fd, text) };
  let guest: Guest;
  instantiating = target;
  try {
    guest = spec.abi === 'wapc' ? await wapcGuest(spec, holder, target) : await extismGuest(spec, holder);
  } finally {
    instantiating = undefined;
  }
  const vars = new Map(Object.entries(spec.vars));
  const l: Loaded = {
    spec,
    guest,
    publishes: spec.publishes.map(compilePattern),
    call: null,
    vars,
    varsBytes: [...vars].reduce((n, [k, v]) => n + k.length + v.byteLength, 0),
    varsChanged: {},
    http: undefined,
    stdio: new Map(),
  };
  holder.l = l;
  let describe: LoadReply['describe'];
  allocBudget.used = 0;
  allocBudget.limit = spec.memoryBytes;
  try {
    // Nothing is published from init (no call is open: a publish there is refused).
    if (await guest.has('init')) await guest.run('init');
    if (await guest.has('describe')) {
      try {
        const d = JSON.parse((await guest.run('describe')) ?? 'null') as { version?: unknown; description?: unknown };
        if (d && typeof d === 'object') {
          describe = {
            ...(typeof d.version === 'string' ? { version: d.version } : {}),
            ...(typeof d.description === 'string' ? { description: d.description } : {}),
          };
        }
      } catch {
        describe = undefined; // describe is informative: a bad one does not fail the load
      }
    }
  } catch (e) {
    await guest.close().catch(() => undefined);
    throw new Error(`init failed: ${(e as Error).message}`, { cause: e });
  } finally {
    allocBudget.limit = Infinity;
    l.call = null;
    for (const fd of l.stdio.keys()) stdio(l, fd, '', true);
  }
  loaded.set(spec.id, l);
  const changed = l.varsChanged;
  l.varsChanged = {};
  return {
    type: 'reply',
    seq: 0,
    ok: true,
    ...(describe ? { describe } : {}),
    memBytes: guest.memory()?.buffer.byteLength ?? 0,
    ...(Object.keys(changed).length ? { vars: changed } : {}),
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
  l.http = undefined;
  const t0 = performance.now();
  let error: string | undefined;
  let output: string | undefined;
  let overAlloc = false;
  allocBudget.used = 0;
  allocBudget.limit = l.spec.memoryBytes;
  try {
    output = await l.guest.run('process', input);
  } catch (e) {
    error = (e as Error).message;
    overAlloc = e instanceof AllocLimitError;
  } finally {
    allocBudget.limit = Infinity;
  }
  const ms = performance.now() - t0;
  l.call = null;
  for (const fd of l.stdio.keys()) stdio(l, fd, '', true);
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
  const memBytes = l.guest.memory()?.buffer.byteLength ?? 0;
  const memoryCap = memBytes > l.spec.memoryBytes || overAlloc;
  const vars = l.varsChanged;
  l.varsChanged = {};
  return {
    type: 'reply',
    ...(Object.keys(vars).length ? { vars } : {}),
    ok: error === undefined,
    ...(error ? { error } : {}),
    ...(memoryCap ? { memoryCap } : {}),
    publishes: c.publishes,
    refused: c.refused,
    memBytes,
    ms,
  };
}

/** Runs one request; never rejects. */
async function serve(m: ToWorker): Promise<Omit<CallReply, 'seq'> | Omit<LoadReply, 'seq'>> {
  if (m.type === 'load')
    return load(m.spec).catch((e: unknown) => ({ type: 'reply', ok: false, error: (e as Error).message }) as const);
  if (m.type === 'call')
    return call(m.id, m.input).catch(
      (e: unknown) =>
        ({
          type: 'reply',
          ok: false,
          error: (e as Error).message,
          publishes: [],
          refused: [],
          memBytes: 0,
          ms: 0,
        }) as const,
    );
  const l = loaded.get(m.id);
  loaded.delete(m.id);
  await l?.guest.close().catch(() => undefined);
  return { type: 'reply', ok: true };
}

/** Rounds run in order; the runtime sends the next one once every reply of the last has come. */
let rounds: Promise<void> = Promise.resolve();
// WasmRuntime is this port's only sender, and it always sends a round (sync-http has a port of its own).
port.on('message', (round: ToWorker[]) => {
  rounds = rounds.then(async () => {
    // Each reply goes as soon as its request is done: the runtime's timer for the next one starts then.
    for (const op of round) send({ ...(await serve(op)), seq: op.seq } as FromWorker);
  });
});
send({ type: 'ready' });
