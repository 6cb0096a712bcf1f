/** `agent config check`: validates the config and prints the effective one. */
import { stringify } from 'yaml';
import { displayConfig, rootSchema } from '../../core/config/load.js';
import { builtins } from '../../plugins/registry.js';
import { fail, type ConfigFlags } from '../commands/common.js';
import { loadFromFlags } from './flags.js';

export function configCheck(opts: ConfigFlags): void {
  try {
    const loaded = loadFromFlags(opts);
    for (const w of loaded.warnings) process.stderr.write(`warning: ${w}\n`);
    process.stdout.write(`# config OK: ${loaded.file ?? 'embedded defaults (no config file found)'}\n`);
    if (loaded.env.length) process.stdout.write(`# from the environment: ${loaded.env.join(', ')}\n`);
    process.stdout.write(stringify(displayConfig(rootSchema(builtins), loaded.config)));
  } catch (err) {
    fail(err);
  }
}
