/** `agent start`: runs the daemon (cmd/run/start.ts, loaded only for this command). */
import type { Command } from 'commander';
import { configOption, type ConfigFlags } from './common.js';

export function register(program: Command): void {
  program
    .command('start')
    .description('run the agent in the foreground until SIGTERM or SIGINT (SIGHUP reloads the config)')
    .addOption(configOption())
    .option('--log-level <level>', 'trace, debug, info, warn, error or fatal')
    .option('--api-host <host>', 'address the local API binds to')
    .option('--api-port <port>', 'port of the local API (0 = any free port)')
    .option(
      '--plugins-dir <dir>',
      'directory of Wasm plugins, one folder each (repeatable)',
      (v: string, acc: string[] = []) => [...acc, v],
    )
    .action(async (opts: ConfigFlags) => {
      const { start } = await import('../run/start.js');
      await start(opts);
    });
}
