/**
 * Shared by the CLI commands: option names, asking a running agent, printing errors the way users
 * read them. Loaded for every command, so it imports nothing heavy at the top: what a function
 * needs it imports when called.
 */
import { Option } from 'commander';

export interface ConfigFlags {
  config?: string;
  logLevel?: string;
  apiHost?: string;
  apiPort?: string;
  pluginsDir?: string[];
}

export const configOption = () =>
  new Option('-c, --config <file>', 'config file (default: /etc/nginx-agent/nginx-agent.yaml, then config/agent.yaml)');

/** The --log-level, --api-host, --api-port and --plugins-dir flags as config overrides. */
export function flagOverrides(opts: ConfigFlags): { path: string; flag: string; value: unknown }[] {
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
  return flags;
}

/**
 * GET `path` from the running agent's local API (the config's api.host, api.port and token) and
 * return the body; an error that says what to do when no agent answers or it answers with an error.
 * Reads only the core config sections: a client loads no plugin.
 */
export async function askAgent(opts: ConfigFlags, path: string): Promise<string> {
  const { base, headers } = await agentEndpoint(opts);
  const url = `${base}${path}`;
  const { httpGet } = await import('../../core/http-get.js');
  let res: { status: number; body: string };
  try {
    res = await httpGet(url, { headers, timeoutMs: 5000 });
  } catch (e) {
    throw new Error(`no agent answers at ${url} (${(e as Error).message}); is it running? start it with "agent start"`);
  }
  if (res.status < 200 || res.status > 299) throw new Error(`${url} answered ${res.status}: ${res.body.trim()}`);
  return res.body;
}

/** Base URL (`http://host:port`) and auth headers of the running agent's API, from the config and flags. */
export async function agentEndpoint(opts: ConfigFlags): Promise<{ base: string; headers: Record<string, string> }> {
  const { loadConfig } = await import('../../core/config/load.js');
  const cfg = loadConfig({
    builtins: [],
    file: opts.config,
    flags: flagOverrides(opts),
    unknownSections: 'ignore',
  }).config;
  const base = `http://${cfg.api.host.includes(':') ? `[${cfg.api.host}]` : cfg.api.host}:${cfg.api.port}`;
  const headers: Record<string, string> = cfg.api.token ? { Authorization: `Bearer ${cfg.api.token}` } : {};
  return { base, headers };
}

/** Prints a config error (ConfigError from core/config/load) and exits 2; other errors exit 1. */
export function fail(err: unknown): never {
  process.stderr.write(`agent: ${(err as Error).message}\n`);
  process.exit((err as { name?: string }).name === 'ConfigError' ? 2 : 1);
}
