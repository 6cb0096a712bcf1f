/**
 * `agent status`: a short human summary of a running agent (GET /v1/summary); `--json` prints
 * GET /v1/status as before. A client: no daemon module is loaded (the work is in cmd/run/status.ts).
 */
import type { Command } from 'commander';
import { configOption, fail, type ConfigFlags } from './common.js';

export function register(program: Command): void {
  program
    .command('status')
    .description(
      "summary of a running agent: nginx health, traffic, config, host, plugins, latest events (uses the config's api.host, api.port and token)",
    )
    .addOption(configOption())
    .option('--api-host <host>', 'address of the agent API')
    .option('--api-port <port>', 'port of the agent API')
    .option('--json', 'print the full status as JSON (GET /v1/status)')
    .action(async (opts: ConfigFlags & { json?: boolean }) => {
      try {
        const { status } = await import('../run/status.js');
        await status(opts);
      } catch (err) {
        fail(err);
      }
    });
}
