/**
 * `agent fleet ...`: the operator's view of the fleet over NATS JetStream (see core/fleet/README.md):
 * ls, status, config get, apply (canary, then waves), events. The work is in cmd/run/fleet.ts and
 * loads the NATS client only when one of these runs.
 */
import type { Command } from 'commander';
import type { ApplyFlags, FleetFlags } from '../run/fleet.js';

const collect = (v: string, acc: string[] = []) => [...acc, v];

function withConnection(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'agent config whose fleet section says how to connect')
    .option('--server <url>', 'NATS server URL (repeatable or comma-separated)', collect)
    .option('--creds <file>', 'NATS JWT credentials file')
    .option('--user <name>', 'NATS user (with --password-file)')
    .option('--password-file <file>', 'file holding the password of --user')
    .option('--token-file <file>', 'file holding a NATS token');
}

export function register(program: Command): void {
  const fleet = program
    .command('fleet')
    .description('manage many agents over NATS JetStream: inventory, status, config, staged apply, events');

  withConnection(
    fleet
      .command('ls')
      .description('list the agents of the fleet (name, host, version, nginx, config versions, last seen, state)')
      .option('--select <labels>', 'only agents with these labels, e.g. env=prod,role=edge')
      .option('--json', 'print the inventory entries as JSON'),
  ).action(async (opts: FleetFlags & { select?: string; json?: boolean }) =>
    (await import('../run/fleet.js')).ls(opts),
  );

  withConnection(
    fleet.command('status <agent>').description("an agent's status (its /v1/status), by fleet name or id"),
  ).action(async (agent: string, opts: FleetFlags) => (await import('../run/fleet.js')).status(agent, opts));

  const config = fleet.command('config').description('nginx config of an agent');
  withConnection(
    config
      .command('get <agent>')
      .description('the parsed nginx config of an instance on an agent (its only one when --instance is absent)')
      .option('--instance <id>', 'nginx instance id (agent fleet ls --json shows them)'),
  ).action(async (agent: string, opts: FleetFlags & { instance?: string }) =>
    (await import('../run/fleet.js')).configGet(agent, opts),
  );

  withConnection(
    fleet
      .command('apply [agent]')
      .description('staged config rollout: one agent first (canary), then waves of --batch; stops after --max-failures')
      .option('--select <labels>', 'the agents with these labels, e.g. env=prod,role=edge')
      .option('--instance-path <path>', 'the nginx instance by its main config file, e.g. /etc/nginx/nginx.conf')
      .option('--instance <id>', 'the nginx instance by id')
      .option('--file <dest=src>', 'DEST on the agent gets the content of the local file SRC (repeatable)', collect)
      .option('--batch <n>', 'agents per wave after the canary', '10')
      .option('--max-failures <k>', 'stop after this many failed agents; the rest stay untouched', '1')
      .option('--dry-run', 'only run nginx -t with the new files (nothing stays written, no reload)'),
  ).action(async (agent: string | undefined, opts: ApplyFlags) => (await import('../run/fleet.js')).apply(agent, opts));

  withConnection(
    fleet
      .command('events')
      .description('events of the fleet from the NGINX_AGENT_EVENTS stream, oldest first')
      .option('--select <labels>', 'only agents with these labels')
      .option('--kind <pattern>', 'only these kinds, "*" as wildcard (repeatable), e.g. nginx.*', collect)
      .option('--follow', 'keep printing new events until interrupted'),
  ).action(async (opts: FleetFlags & { select?: string; kind?: string[]; follow?: boolean }) =>
    (await import('../run/fleet.js')).events(opts),
  );
}
