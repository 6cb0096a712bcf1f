/**
 * The operator's side of the fleet (used by `agent fleet`): read the inventory, pick agents by name,
 * id or labels, send commands, roll a config out in waves, read the events stream.
 */
import { DeliverPolicy, type JetStreamOptions, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { CommandReply } from './commands.js';
import { ensureEventsStream, inventoryBucket } from './streams.js';
import {
  agentState,
  commandSubject,
  EVENTS_STREAM,
  INVENTORY_BUCKET,
  INVENTORY_STREAM,
  type InventoryEntry,
  type Verb,
} from './subjects.js';

export interface AgentRow extends InventoryEntry {
  /** online, stopped or lost (silent for 3 heartbeats). */
  fleet_state: 'online' | 'stopped' | 'lost';
}

/** Every inventory entry, sorted by name. */
export async function listAgents(nc: NatsConnection): Promise<AgentRow[]> {
  const kv = await inventoryBucket(nc);
  // The keys are the subjects of the bucket's stream, asked in one request (paged by the client for
  // very large fleets). kv.keys() is a consumer instead: while the agents' heartbeats kept writing,
  // it sometimes did not finish within 10 s, and a key written during it came twice.
  const prefix = `$KV.${INVENTORY_BUCKET}.`;
  const jsm = await jetstreamManager(nc, { checkAPI: false } as JetStreamOptions);
  const info = await jsm.streams.info(INVENTORY_STREAM, { subjects_filter: `${prefix}>` });
  const keys = Object.keys(info.state.subjects ?? {}).map((subject) => subject.slice(prefix.length));

  const now = Date.now();
  const entries = await Promise.all([...keys].map((k) => kv.get(k)));
  const rows: AgentRow[] = [];
  for (const e of entries) {
    if (e?.operation !== 'PUT') continue;
    try {
      const entry = e.json<InventoryEntry>();
      rows.push({ ...entry, fleet_state: agentState(entry, now) });
    } catch {
      // A value that is not ours: skip it rather than fail the listing.
    }
  }
  return rows.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
}

/** `env=prod,role=edge` to a map; throws naming the bad part. */
export function parseSelector(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',').map((p) => p.trim())) {
    if (!part) continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`--select: ${JSON.stringify(part)} is not label=value`);
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

export function matchesSelector(labels: Record<string, string>, selector: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** The agent whose fleet name or id is `nameOrId`; throws with the names known when none or several match. */
export function findAgent(rows: readonly AgentRow[], nameOrId: string): AgentRow {
  const byId = rows.find((r) => r.id === nameOrId);
  if (byId) return byId;
  const byName = rows.filter((r) => r.name === nameOrId);
  if (byName.length === 1) return byName[0];
  if (byName.length > 1)
    throw new Error(
      `${byName.length} agents are named ${JSON.stringify(nameOrId)}: use one of their ids (${byName.map((r) => r.id).join(', ')})`,
    );
  throw new Error(
    `no agent named ${JSON.stringify(nameOrId)} in the fleet${rows.length ? ` (known: ${rows.map((r) => r.name).join(', ')})` : ' (the inventory is empty)'}`,
  );
}

/** Sends one command and waits for the answer; a transport failure is thrown with what it means. */
export async function sendCommand(
  nc: NatsConnection,
  prefix: string,
  agentId: string,
  verb: Verb,
  payload: Record<string, unknown> = {},
  timeoutMs = 10_000,
): Promise<CommandReply> {
  try {
    const msg = await nc.request(commandSubject(prefix, agentId, verb), JSON.stringify(payload), {
      timeout: timeoutMs,
    });
    return msg.json<CommandReply>();
  } catch (err) {
    const message = (err as Error).message;
    if (/no responders/i.test(message))
      throw new Error(`agent ${agentId} does not answer (not connected to NATS now)`, { cause: err });
    if (/timeout/i.test(message))
      throw new Error(`agent ${agentId} did not answer ${verb} within ${timeoutMs} ms`, { cause: err });
    throw err;
  }
}

export interface RolloutTarget {
  agent: AgentRow;
  /** nginx instance id on that agent. */
  instance: string;
}

export interface RolloutResult {
  agent: string;
  id: string;
  result: 'applied' | 'tested' | 'failed' | 'skipped';
  durationMs: number;
  error?: string;
}

export interface RolloutOptions {
  files: { path: string; content: string }[];
  batch: number;
  maxFailures: number;
  dryRun: boolean;
  timeoutMs?: number;
  /** One line per wave. */
  onWave?(line: string): void;
}

/**
 * Applies `files` to each target: the first alone (canary), then waves of `batch` in parallel.
 * Stops once `maxFailures` have failed; the rest are reported as skipped and left untouched.
 */
export async function rollout(
  nc: NatsConnection,
  prefix: string,
  targets: readonly RolloutTarget[],
  opts: RolloutOptions,
): Promise<RolloutResult[]> {
  const results: RolloutResult[] = [];
  const waves: RolloutTarget[][] = [];
  if (targets.length) waves.push([targets[0]]);
  for (let i = 1; i < targets.length; i += opts.batch) waves.push(targets.slice(i, i + opts.batch));
  let failures = 0;
  for (const [w, wave] of waves.entries()) {
    if (failures >= opts.maxFailures) {
      for (const t of wave) results.push({ agent: t.agent.name, id: t.agent.id, result: 'skipped', durationMs: 0 });
      continue;
    }
    const started = Date.now();
    const out = await Promise.all(wave.map((t) => applyOne(nc, prefix, t, opts)));
    results.push(...out);
    const failed = out.filter((r) => r.result === 'failed').length;
    failures += failed;
    const label = w === 0 ? 'canary' : `wave ${w}/${waves.length - 1}`;
    const stop = failures >= opts.maxFailures && w < waves.length - 1 ? '; stopping: --max-failures reached' : '';
    opts.onWave?.(
      `${label}: ${wave.length} agent(s), ${wave.length - failed} ok, ${failed} failed (${((Date.now() - started) / 1000).toFixed(1)} s)${stop}`,
    );
  }
  return results;
}

async function applyOne(
  nc: NatsConnection,
  prefix: string,
  t: RolloutTarget,
  opts: RolloutOptions,
): Promise<RolloutResult> {
  const started = Date.now();
  const base = { agent: t.agent.name, id: t.agent.id };
  try {
    const reply = await sendCommand(
      nc,
      prefix,
      t.agent.id,
      'nginx.config.apply',
      { instance: t.instance, files: opts.files, ...(opts.dryRun ? { dry_run: true } : {}) },
      opts.timeoutMs ?? 120_000,
    );
    const durationMs = Date.now() - started;
    if (reply.ok) return { ...base, result: opts.dryRun ? 'tested' : 'applied', durationMs };
    const body = reply.body as { error?: string } | undefined;
    return { ...base, result: 'failed', durationMs, error: `${reply.status}: ${body?.error ?? 'failed'}` };
  } catch (err) {
    return { ...base, result: 'failed', durationMs: Date.now() - started, error: (err as Error).message };
  }
}

export interface StoredEvent {
  agentId: string;
  seq: number;
  event: Record<string, unknown>;
}

/**
 * Reads the events stream from the start (or only new ones with `follow`), calling `onEvent` for
 * each. Without `follow` it returns once it has caught up.
 */
export async function readEvents(
  nc: NatsConnection,
  prefix: string,
  opts: { agentId?: string; follow: boolean; onEvent(e: StoredEvent): void; signal?: AbortSignal },
): Promise<void> {
  await ensureEventsStream(nc, prefix);
  const js = jetstream(nc);
  const filter = `${prefix}.events.${opts.agentId ?? '*'}.>`;
  const consumer = await js.consumers.get(EVENTS_STREAM, {
    filter_subjects: filter,
    deliver_policy: DeliverPolicy.All,
  });
  const info = await consumer.info(true);
  if (!opts.follow && info.num_pending === 0) return;
  const messages = await consumer.consume();
  opts.signal?.addEventListener('abort', () => void messages.stop(), { once: true });
  const head = `${prefix}.events.`.length;
  for await (const m of messages) {
    const agentId = m.subject.slice(head).split('.')[0];
    let event: Record<string, unknown>;
    try {
      event = m.json<Record<string, unknown>>();
    } catch {
      event = { raw: m.string() };
    }
    opts.onEvent({ agentId, seq: m.seq, event });
    if (!opts.follow && m.info.pending === 0) break;
  }
  await messages.close().catch(() => undefined);
}
