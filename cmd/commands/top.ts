/**
 * `agent top`: a live full-screen view of a running agent (the work is in cmd/run/top.ts).
 */
import type { Command } from 'commander';
import { configOption, type ConfigFlags } from './common.js';

export function register(program: Command): void {
  program
    .command('top')
    .description('live full-screen view of a running agent, refreshed every 2 s (←/→ switch instance, q quits)')
    .addOption(configOption())
    .option('--api-host <host>', 'address of the agent API')
    .option('--api-port <port>', 'port of the agent API')
    .action(async (opts: ConfigFlags) => {
      const { top } = await import('../run/top.js');
      await top(opts);
    });
}
