/**
 * Test helper for the shipped Wasm plugins: loads a built plugin in-process with the Extism SDK,
 * the way the agent's host calls it (ABI v1: `process` gets a batch, `publish` in
 * `extism:host/user` takes a memory offset), and records what it publishes by either path.
 */
import createPlugin, { type CallContext, type Plugin } from '@extism/extism';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseManifest, type Manifest } from '../../core/wasm/manifest.js';

export interface Published {
  topic: string;
  data: Record<string, unknown>;
  /** `host` when it came through the `publish` host function, `output` when from process' output. */
  via: 'host' | 'output';
}

export interface TestPlugin {
  manifest: Manifest;
  plugin: Plugin;
  /** Everything published so far, in order. */
  published: Published[];
  /** What the plugin logged through Extism's log functions (`level: text`). */
  logs: string[];
  /** Calls `process` with one batch; returns what this call published. Throws on a trap. */
  process(messages: { topic: string; time?: number; data: unknown }[]): Promise<Published[]>;
  /** Return code of `init`, or null when the plugin has none. */
  init(): Promise<number | null>;
  describe(): Promise<{ version: string; description: string } | null>;
  close(): Promise<void>;
}

/** The plugin's manifest, validated by the agent's own parser (throws listing every problem). */
export function readManifest(dir: string): Manifest {
  const file = join(dir, 'plugin.yaml');
  return parseManifest(readFileSync(file, 'utf8'), file);
}

/** The built .wasm of the plugin in `dir`; throws saying how to build it when it is missing. */
export function wasmOf(dir: string, m = readManifest(dir)): Uint8Array<ArrayBuffer> {
  const path = join(dir, m.wasm);
  if (!existsSync(path))
    throw new Error(`${path} is missing: build the Wasm plugins first with \`npm run build:wasm\``);
  return new Uint8Array(readFileSync(path));
}

/** Loads the plugin in `dir` with its manifest's config, overridden by `config`. */
export async function loadTestPlugin(
  dir: string,
  config: Record<string, string> = {},
  opts: { refuse?: boolean } = {},
): Promise<TestPlugin> {
  const manifest = readManifest(dir);
  const data = wasmOf(dir, manifest);
  const published: Published[] = [];
  const lines: string[] = [];
  const record = (level: string) => (msg: unknown) => void lines.push(`${level}: ${String(msg)}`);
  const logs = {
    error: record('error'),
    warn: record('warn'),
    info: record('info'),
    debug: record('debug'),
    trace: record('trace'),
    log: record('info'),
  };
  let current: Published[] = [];
  const plugin = await createPlugin(
    { wasm: [{ data }] },
    {
      useWasi: false,
      config: { ...manifest.config, ...config },
      logger: logs as unknown as Console,
      functions: {
        'extism:host/user': {
          publish(cp: CallContext, offset: bigint): bigint {
            const text = cp.read(offset)?.text();
            if (text === undefined) throw new Error(`publish: no memory block at offset ${offset}`);
            const msg = JSON.parse(text) as { topic: string; data: Record<string, unknown> };
            if (opts.refuse) return 1n;
            const p: Published = { topic: msg.topic, data: msg.data, via: 'host' };
            published.push(p);
            current.push(p);
            return 0n;
          },
        },
      },
    },
  );
  return {
    manifest,
    plugin,
    published,
    logs: lines,
    async process(messages) {
      current = [];
      // The JS SDK never recycles its memory blocks between calls: past 32768 of them an offset has
      // its top bit set, arrives in host functions as a negative BigInt and reads as nothing. The
      // agent's host resets between calls; so does this helper (plugin globals are untouched).
      await plugin.reset();
      const input = JSON.stringify({
        messages: messages.map((m) => ({ topic: m.topic, time: m.time ?? Date.now(), data: m.data })),
      });
      const out = await plugin.call('process', input);
      const text = out?.text() ?? '';
      if (text.startsWith('{')) {
        const o = JSON.parse(text) as { publish?: { topic: string; data: Record<string, unknown> }[] };
        for (const m of o.publish ?? []) {
          const p: Published = { topic: m.topic, data: m.data, via: 'output' };
          published.push(p);
          current.push(p);
        }
      }
      return current;
    },
    async init() {
      if (!(await plugin.functionExists('init'))) return null;
      // Extism returns the export's i32 as the call's status: a non-zero `init` makes call() throw.
      try {
        await plugin.call('init');
        return 0;
      } catch {
        return 1;
      }
    },
    async describe() {
      if (!(await plugin.functionExists('describe'))) return null;
      return (await plugin.call('describe'))!.json() as { version: string; description: string };
    },
    close: () => plugin.close(),
  };
}
