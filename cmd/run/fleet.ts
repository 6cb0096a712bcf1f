/**
 * The work of `agent fleet ...` (definitions in cmd/commands/fleet.ts): the operator's view of the
 * fleet over NATS. Loaded only when a fleet command runs.
 */
import { readFileSync } from 'node:fs';
import type { NatsConnection } from '@nats-io/transport-node';
import { loadConfig } from '../../core/config/load.js';
import { type FleetConnectionSettings, unauthenticated } from '../../core/fleet/connection.js';
import {
  findAgent,
  listAgents,
  matchesSelector,
  parseSelector,
  readEvents,
  rollout,
  sendCommand,
  type AgentRow,
  type RolloutResult,
  type RolloutTarget,
} from '../../core/fleet/operator.js';
import { fail } from '../commands/common.js';

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
    ? loadConfig({ builtins: [], file: flags.config, unknownSections: 'ignore' }).config.fleet
    : { ...unauthenticated(['nats://127.0.0.1:4222']), subject_prefix: 'nginx_agent' };
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

export async function ls(opts: FleetFlags & { select?: string; json?: boolean }): Promise<void> {
  await withFleet(opts, async ({ nc }) => {
    const selector = parseSelector(opts.select ?? '');
    const rows = (await listAgents(nc)).filter((r) => matchesSelector(r.labels, selector));
    process.stdout.write(opts.json ? `${JSON.stringify(rows, null, 2)}\n` : lsTable(rows));
    return 0;
  });
}

export async function status(agent: string, opts: FleetFlags): Promise<void> {
  await withFleet(opts, async ({ nc, prefix }) => {
    const row = findAgent(await listAgents(nc), agent);
    const reply = await sendCommand(nc, prefix, row.id, 'status');
    process.stdout.write(`${JSON.stringify(reply.body, null, 2)}\n`);
    return reply.ok ? 0 : 1;
  });
}

export async function configGet(agent: string, opts: FleetFlags & { instance?: string }): Promise<void> {
  await withFleet(opts, async ({ nc, prefix }) => {
    const row = findAgent(await listAgents(nc), agent);
    const reply = await sendCommand(nc, prefix, row.id, 'nginx.config.get', { instance: pickInstance(row, opts) });
    process.stdout.write(`${JSON.stringify(reply.body, null, 2)}\n`);
    if (!reply.ok) process.stderr.write(`agent: ${row.name} answered ${reply.status}\n`);
    return reply.ok ? 0 : 1;
  });
}

export interface ApplyFlags extends FleetFlags {
  select?: string;
  instancePath?: string;
  instance?: string;
  file?: string[];
  batch: string;
  maxFailures: string;
  dryRun?: boolean;
}

export async function apply(agent: string | undefined, opts: ApplyFlags): Promise<void> {
  await withFleet(opts, async ({ nc, prefix }) => {
    if (Boolean(agent) === Boolean(opts.select)) throw new Error('give either one AGENT or --select LABELS');
    const batch = Number(opts.batch);
    const maxFailures = Number(opts.maxFailures);
    if (!Number.isInteger(batch) || batch < 1) throw new Error(`--batch must be a positive integer, got ${opts.batch}`);
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
  });
}

export async function events(opts: FleetFlags & { select?: string; kind?: string[]; follow?: boolean }): Promise<void> {
  await withFleet(opts, async ({ nc, prefix }) => {
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
  });
}
