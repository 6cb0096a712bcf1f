/** Shared by the CLI commands: load the config from flags, print errors the way users read them. */
import { ConfigError, loadConfig, type LoadedConfig } from '../../core/config/load.js';
import { builtins } from '../../plugins/registry.js';

export interface ConfigFlags {
  config?: string;
  logLevel?: string;
  apiHost?: string;
  apiPort?: string;
  pluginsDir?: string[];
}

export function loadFromFlags(opts: ConfigFlags): LoadedConfig {
  const flags: { path: string; flag: string; value: unknown }[] = [
    { path: 'log.level', flag: '--log-level', value: opts.logLevel },
    { path: 'api.host', flag: '--api-host', value: opts.apiHost },
    {
      path: 'api.port',
      flag: '--api-port',
      value: opts.apiPort === undefined ? undefined : /^\d+$/.test(opts.apiPort) ? Number(opts.apiPort) : opts.apiPort,
    },
  ];
  if (opts.pluginsDir?.length) flags.push({ path: 'wasm.dirs', flag: '--plugins-dir', value: opts.pluginsDir });
  return loadConfig({ builtins, file: opts.config, flags });
}

/**
 * GET `path` from the running agent's local API (the config's api.host, api.port and token) and
 * return the body; an error that says what to do when no agent answers or it answers with an error.
 */
export async function askAgent(opts: ConfigFlags, path: string): Promise<string> {
  const cfg = loadFromFlags(opts).config;
  const url = `http://${cfg.api.host.includes(':') ? `[${cfg.api.host}]` : cfg.api.host}:${cfg.api.port}${path}`;
  const headers: Record<string, string> = cfg.api.token ? { Authorization: `Bearer ${cfg.api.token}` } : {};
  let res: Response;
  try {
    res = await fetch(url, { headers, signal: AbortSignal.timeout(5000) });
  } catch (e) {
    throw new Error(
      `no agent answers at ${url} (${(e as Error).cause ? String((e as { cause: Error }).cause.message) : (e as Error).message}); is it running? start it with "agent start"`,
    );
  }
  const text = await res.text();
  if (!res.ok) throw new Error(`${url} answered ${res.status}: ${text.trim()}`);
  return text;
}

/** Prints a config error and exits 2; other errors exit 1. */
export function fail(err: unknown): never {
  if (err instanceof ConfigError) {
    process.stderr.write(`agent: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`agent: ${(err as Error).message}\n`);
  process.exit(1);
}
