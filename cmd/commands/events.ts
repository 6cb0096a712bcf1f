/**
 * `agent events`: recent events of a running agent as a table (GET /v1/events); `--follow` keeps
 * streaming them (GET /v1/events/stream). The work is in cmd/run/events.ts, loaded when it runs.
 */
import type { Command } from 'commander';
import { configOption, fail, type ConfigFlags } from './common.js';

export interface EventsFlags extends ConfigFlags {
  kind?: string[];
  severity?: string;
  limit?: string;
  follow?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('events')
    .description(
      "recent events of a running agent (lint findings, alerts, nginx errors, config tests, ...) as a table; --follow streams new ones (uses the config's api.host, api.port and token)",
    )
    .addOption(configOption())
    .option('--api-host <host>', 'address of the agent API')
    .option('--api-port <port>', 'port of the agent API')
    .option(
      '--kind <pattern>',
      'only these kinds, * as wildcard (alert.*); repeatable or comma-separated',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--severity <level>', 'minimum severity: info, warning, error or critical')
    .option('--limit <n>', 'how many recent events to print (default 50)')
    .option('-f, --follow', 'after the recent events, print new ones as they happen (Ctrl-C stops)')
    .option('--json', 'one JSON event per line')
    .action(async (opts: EventsFlags) => {
      try {
        const { events } = await import('../run/events.js');
        await events(opts);
      } catch (err) {
        fail(err);
      }
    });
}
