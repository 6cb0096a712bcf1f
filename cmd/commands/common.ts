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
    { path: 'api.port', flag: '--api-port', value: opts.apiPort === undefined ? undefined : /^\d+$/.test(opts.apiPort) ? Number(opts.apiPort) : opts.apiPort },
  ];
  if (opts.pluginsDir?.length) flags.push({ path: 'wasm.dirs', flag: '--plugins-dir', value: opts.pluginsDir });
  return loadConfig({ builtins, file: opts.config, flags });
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
