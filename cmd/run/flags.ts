/** The full config (every built-in plugin's section checked) from a command's flags, for `start` and `config check`. */
import { loadConfig, type LoadedConfig } from '../../core/config/load.js';
import { builtins } from '../../plugins/registry.js';
import { flagOverrides, type ConfigFlags } from '../commands/common.js';

export function loadFromFlags(opts: ConfigFlags): LoadedConfig {
  return loadConfig({ builtins, file: opts.config, flags: flagOverrides(opts) });
}
