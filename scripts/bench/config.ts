/**
 * The config an in-process bench runs an Agent with: the defaults, no file, no environment, and
 * `settings` (key path to value) applied as flags are, so they are validated like any other.
 */
import { type LoadedConfig, loadConfig } from '../../core/config/load.js';

export function benchConfig(settings: Record<string, unknown>): LoadedConfig {
  return loadConfig({
    builtins: [],
    env: {},
    searchPaths: [],
    flags: Object.entries(settings).map(([path, value]) => ({ path, flag: 'bench', value })),
  });
}
