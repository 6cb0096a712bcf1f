/** `agent config check` and `agent config parse`. */
import type { Command } from 'commander';
import { registerConfigParse } from './config-parse.js';
import { configOption, type ConfigFlags } from './common.js';

export function register(program: Command): void {
  const config = program.command('config').description('check or inspect configuration');
  config
    .command('check')
    .description('validate the config (file, NGINX_AGENT_* environment, flags) and print the effective one')
    .addOption(configOption())
    .action(async (opts: ConfigFlags) => {
      const { configCheck } = await import('../run/config-check.js');
      configCheck(opts);
    });
  registerConfigParse(config);
}
