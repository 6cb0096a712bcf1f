/** `agent status`: asks a running agent for /v1/status (a client: no daemon module is loaded). */
import type { Command } from 'commander';
import { askAgent, configOption, fail, type ConfigFlags } from './common.js';

export function register(program: Command): void {
  program
    .command('status')
    .description(
      "ask a running agent for its status over the local API (uses the config's api.host, api.port and token)",
    )
    .addOption(configOption())
    .option('--api-host <host>', 'address of the agent API')
    .option('--api-port <port>', 'port of the agent API')
    .action(async (opts: ConfigFlags) => {
      try {
        process.stdout.write(await askAgent(opts, '/v1/status'));
      } catch (err) {
        fail(err);
      }
    });
}
