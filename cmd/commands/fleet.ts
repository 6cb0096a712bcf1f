/**
 * `agent fleet ...`: the operator's view of the fleet over NATS (see core/fleet/README.md).
 * ls, status, config get, apply (canary then waves), events. The NATS client is loaded only when one
 * of these runs.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { NatsConnection } from '@nats-io/transport-node';
import type { FleetConnectionSettings } from '../../core/fleet/connection.js';
import type { AgentRow, RolloutResult, RolloutTarget } from '../../core/fleet/operator.js';
import { fail, loadFromFlags } from './common.js';

export interface FleetFlags {
  config?: string;
  server?: string[];
  creds?: string;
  user?: string;
  passwordFile?: string;
  tokenFile?: string;
}

interface Connection {
  nc: NatsConnection;
  prefix: string;
}

/** The connection settings: the fleet section of --config (when given), then the flags over it. */
export function fleetSettings(flags: FleetFlags): { settings: FleetConnectionSettings; prefix: string } {
  const base: FleetConnectionSettings & { subject_prefix: string } = flags.config
    ? loadFromFlags({ config: flags.config }).config.fleet
    : {
        servers: ['nats://127.0.0.1:4222'],
        user: '',
        password_file: '',
        token_file: '',
        creds_file: '',
        nkey_seed_file: '',
        tls: { ca_file: '', cert_file: '', key_file: '' },
        subject_prefix: 'nginx_agent',
      };
  const settings: FleetConnectionSettings = { ...base, tls: { ...base.tls } };
  if (flags.server?.length) settings.servers = flags.server.flatMap((s) => s.split(',').map((p) => p.trim()));
  const auth = flags.creds || flags.user || flags.tokenFile;
  if (auth) {
    settings.user = flags.user ?? '';
    settings.password_file = flags.passwordFile ?? '';
    settings.token_file = flags.tokenFile ?? '';
    settings.creds_file = flags.creds ?? '';
    settings.nkey_seed_file = '';
  } else if (flags.passwordFile) settings.password_file = flags.passwordFile;
  return { settings, prefix: base.subject_prefix || 'nginx_agent' };
}

async function open(flags: FleetFlags): Promise<Connection> {
  const { settings, prefix } = fleetSettings(flags);
  const { connectionOptions } = await import('../../core/fleet/connection.js');
  const { connect } = await import('@nats-io/transport-node');
  const options = connectionOptions(settings, { name: 'agent fleet (operator)' });
  try {
    const nc = await connect({ ...options, waitOnFirstConnect: false, maxReconnectAttempts: 3 });
    return { nc, prefix };
  } catch (err) {
    throw new Error(
      `cannot connect to NATS at ${settings.servers.join(', ')}: ${(err as Error).message} (give --server, and --creds, --user with --password-file, or --token-file; or --config with a fleet section)`,
    );
  }
}

/** Runs `body` with a connection and closes it; errors end the command with exit code 1. */
async function withFleet(flags: FleetFlags, body: (c: Connection) => Promise<number | undefined>): Promise<void> {
  let conn: Connection | undefined;
  let code: number | undefined;
  try {
    conn = await open(flags);
    code = await body(conn);
  } catch (err) {
    await conn?.nc.close().catch(() => undefined);
    fail(err);
  }
  await conn.nc.close().catch(() => undefined);
  if (code) process.exit(code);
}

function connectionOptions(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'agent config whose fleet section says how to connect')
    .option('--server <url>', 'NATS server URL (repeatable or comma-separated)', (v: string, acc: string[] = []) => [
      ...acc,
      v,
    ])
    .option('--creds <file>', 'NATS JWT credentials file')
    .option('--user <name>', 'NATS user (with --password-file)')
    .option('--password-file <file>', 'file holding the password of --user')
    .option('--token-file <file>', 'file holding a NATS token');
}

function ago(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172_800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86_400)}d ago`;
}

/** Columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

export function lsTable(rows: readonly AgentRow[]): string {
  return table(
    ['NAME', 'HOST', 'VERSION', 'NGINX', 'CONFIG VERSIONS', 'LAST SEEN', 'STATE'],
    rows.map((r) => [
      r.name,
      r.host,
      r.version,
      `${r.nginx.length} (${r.nginx.filter((i) => i.up).length} up)`,
      r.nginx.map((i) => (i.config_version ?? '-').slice(0, 12)).join(',') || '-',
      ago(r.last_seen),
      r.fleet_state,
    ]),
  );
}

function resultTable(results: readonly RolloutResult[]): string {
  return table(
    ['AGENT', 'RESULT', 'DURATION', 'ERROR'],
    results.map((r) => [r.agent, r.result, `${(r.durationMs / 1000).toFixed(1)} s`, r.error ?? '']),
  );
}

/** `label=value` patterns with `*` (as event filters take them). */
function kindMatcher(patterns: readonly string[]): (kind: string) => boolean {
  if (!patterns.length) return () => true;
  const res = patterns.map(
    (p) =>
      new RegExp(
        `^${p
          .split('*')
          .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
          .join('.*')}$`,
      ),
  );
  return (kind) => res.some((r) => r.test(kind));
}

function pickInstance(agent: AgentRow, flag: { instance?: string; instancePath?: string }): string {
  if (flag.instance) return flag.instance;
  if (flag.instancePath) {
    const found = agent.nginx.find((i) => i.config_path === flag.instancePath);
    if (!found)
      throw new Error(
        `agent ${agent.name} has no nginx instance with config ${flag.instancePath} (its instances: ${agent.nginx.map((i) => i.config_path).join(', ') || 'none'})`,
      );
    return found.id;
  }
  if (agent.nginx.length === 1) return agent.nginx[0].id;
  throw new Error(
    `agent ${agent.name} has ${agent.nginx.length} nginx instances: choose one with --instance ID (${agent.nginx.map((i) => `${i.id} ${i.config_path}`).join('; ') || 'none'})`,
  );
}

function parseFiles(specs: readonly string[]): { path: string; content: string }[] {
  if (!specs.length)
    throw new Error('give at least one --file DEST=SRC (DEST: the path on the agent, SRC: a local file)');
  return specs.map((spec) => {
    const eq = spec.indexOf('=');
    if (eq <= 0 || eq === spec.length - 1) throw new Error(`--file ${JSON.stringify(spec)}: expected DEST=SRC`);
    const path = spec.slice(0, eq);
    const src = spec.slice(eq + 1);
    try {
      return { path, content: readFileSync(src, 'utf8') };
    } catch (e) {
      throw new Error(`--file ${spec}: cannot read ${src}: ${(e as Error).message}`);
    }
  });
}

const collect = (v: string, acc: string[] = []) => [...acc, v];

export function registerFleet(program: Command): void {
  const fleet = program
    .command('fleet')
    .description('manage many agents over NATS JetStream: inventory, status, config, staged apply, events');

  connectionOptions(
    fleet
      .command('ls')
      .description('list the agents of the fleet (name, host, version, nginx, config versions, last seen, state)')
      .option('--select <labels>', 'only agents with these labels, e.g. env=prod,role=edge')
      .option('--json', 'print the inventory entries as JSON'),
  ).action((opts: FleetFlags & { select?: string; json?: boolean }) =>
    withFleet(opts, async ({ nc }) => {
      const { listAgents, matchesSelector, parseSelector } = await import('../../core/fleet/operator.js');
      const selector = parseSelector(opts.select ?? '');
      const rows = (await listAgents(nc)).filter((r) => matchesSelector(r.labels, selector));
      process.stdout.write(opts.json ? `${JSON.stringify(rows, null, 2)}\n` : lsTable(rows));
      return 0;
    }),
  );

  connectionOptions(
    fleet.command('status <agent>').description("an agent's status (the local API's /v1/status), by fleet name or id"),
  ).action((agent: string, opts: FleetFlags) =>
    withFleet(opts, async ({ nc, prefix }) => {
      const { findAgent, listAgents, sendCommand } = await import('../../core/fleet/operator.js');
      const row = findAgent(await listAgents(nc), agent);
      const reply = await sendCommand(nc, prefix, row.id, 'status');
      process.stdout.write(`${JSON.stringify(reply.body, null, 2)}\n`);
      return reply.ok ? 0 : 1;
    }),
  );

  const config = fleet.command('config').description('nginx config of an agent');
  connectionOptions(
    config
      .command('get <agent>')
      .description('the parsed nginx config of an instance on an agent (the only one when --instance is absent)')
      .option('--instance <id>', 'nginx instance id (agent fleet ls --json shows them)'),
  ).action((agent: string, opts: FleetFlags & { instance?: string }) =>
    withFleet(opts, async ({ nc, prefix }) => {
      const { findAgent, listAgents, sendCommand } = await import('../../core/fleet/operator.js');
      const row = findAgent(await listAgents(nc), agent);
      const reply = await sendCommand(nc, prefix, row.id, 'nginx.config.get', { instance: pickInstance(row, opts) });
      process.stdout.write(`${JSON.stringify(reply.body, null, 2)}\n`);
      if (!reply.ok) process.stderr.write(`agent: ${row.name} answered ${reply.status}\n`);
      return reply.ok ? 0 : 1;
    }),
  );

  connectionOptions(
    fleet
      .command('apply [agent]')
      .description('staged config rollout: one agent first (canary), then waves of --batch; stops after --max-failures')
      .option('--select <labels>', 'the agents with these labels, e.g. env=prod,role=edge')
      .option('--instance-path <path>', 'the nginx instance by its main config file, e.g. /etc/nginx/nginx.conf')
      .option('--instance <id>', 'the nginx instance by id (same on every agent; rarely what you want)')
      .option('--file <dest=src>', 'DEST on the agent gets the content of the local file SRC (repeatable)', collect)
      .option('--batch <n>', 'agents per wave after the canary', '10')
      .option('--max-failures <k>', 'stop after this many failed agents; the rest stay untouched', '1')
      .option('--dry-run', 'only run nginx -t with the new files (nothing stays written, no reload)'),
  ).action(
    (
      agent: string | undefined,
      opts: FleetFlags & {
        select?: string;
        instancePath?: string;
        instance?: string;
        file?: string[];
        batch: string;
        maxFailures: string;
        dryRun?: boolean;
      },
    ) =>
      withFleet(opts, async ({ nc, prefix }) => {
        const { findAgent, listAgents, matchesSelector, parseSelector, rollout } = await import(
          '../../core/fleet/operator.js'
        );
        if (Boolean(agent) === Boolean(opts.select)) throw new Error('give either one AGENT or --select LABELS');
        const batch = Number(opts.batch);
        const maxFailures = Number(opts.maxFailures);
        if (!Number.isInteger(batch) || batch < 1)
          throw new Error(`--batch must be a positive integer, got ${opts.batch}`);
        if (!Number.isInteger(maxFailures) || maxFailures < 1)
          throw new Error(`--max-failures must be a positive integer, got ${opts.maxFailures}`);
        const files = parseFiles(opts.file ?? []);
        const rows = await listAgents(nc);
        const chosen = agent
          ? [findAgent(rows, agent)]
          : rows.filter((r) => matchesSelector(r.labels, parseSelector(opts.select ?? '')));
        const live = chosen.filter((r) => r.fleet_state === 'online');
        if (!live.length) throw new Error(`no online agent matches ${agent ?? `--select ${opts.select}`}`);
        const targets: RolloutTarget[] = live.map((r) => ({ agent: r, instance: pickInstance(r, opts) }));
        process.stdout.write(
          `${opts.dryRun ? 'testing' : 'applying'} ${files.length} file(s) on ${targets.length} agent(s): canary ${targets[0].agent.name}, then waves of ${batch}\n`,
        );
        const results = await rollout(nc, prefix, targets, {
          files,
          batch,
          maxFailures,
          dryRun: Boolean(opts.dryRun),
          onWave: (line) => process.stdout.write(`${line}\n`),
        });
        process.stdout.write(resultTable(results));
        return results.every((r) => r.result === 'applied' || r.result === 'tested') ? 0 : 1;
      }),
  );

  connectionOptions(
    fleet
      .command('events')
      .description('events of the fleet from the NGINX_AGENT_EVENTS stream, oldest first')
      .option('--select <labels>', 'only agents with these labels')
      .option('--kind <pattern>', 'only these kinds, "*" as wildcard (repeatable), e.g. nginx.*', collect)
      .option('--follow', 'keep printing new events until interrupted'),
  ).action((opts: FleetFlags & { select?: string; kind?: string[]; follow?: boolean }) =>
    withFleet(opts, async ({ nc, prefix }) => {
      const { listAgents, matchesSelector, parseSelector, readEvents } = await import('../../core/fleet/operator.js');
      const rows = await listAgents(nc);
      const names = new Map(rows.map((r) => [r.id, r.name]));
      const selector = parseSelector(opts.select ?? '');
      const selected = opts.select
        ? new Set(rows.filter((r) => matchesSelector(r.labels, selector)).map((r) => r.id))
        : null;
      const kindOk = kindMatcher((opts.kind ?? []).flatMap((k) => k.split(',')));
      const abort = new AbortController();
      process.once('SIGINT', () => abort.abort());
      await readEvents(nc, prefix, {
        follow: Boolean(opts.follow),
        signal: abort.signal,
        onEvent: ({ agentId, event }) => {
          if (selected && !selected.has(agentId)) return;
          if (!kindOk(String(event.kind ?? ''))) return;
          process.stdout.write(
            `${event.time ?? ''}  ${names.get(agentId) ?? agentId}  ${String(event.severity ?? '').padEnd(8)}  ${event.kind ?? ''}  ${event.summary ?? ''}\n`,
          );
        },
      });
      return 0;
    }),
  );
}
