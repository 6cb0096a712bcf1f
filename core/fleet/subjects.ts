/**
 * Fleet names shared by the agent side and the operator side: the stream, the key-value bucket,
 * subjects, command verbs, and the NATS permissions of an agent's user (the sample
 * config/nats/nats-server.conf and the tests build theirs from `agentPermissions`).
 * No NATS import here: the CLI and the agent load this without the client.
 */

/** JetStream stream holding every agent's events. */
export const EVENTS_STREAM = 'NGINX_AGENT_EVENTS';
/** JetStream key-value bucket of the inventory: key = agent id, value = {@link InventoryEntry} JSON. */
export const INVENTORY_BUCKET = 'nginx_agent_inventory';
/** The stream JetStream keeps the bucket in. */
export const INVENTORY_STREAM = `KV_${INVENTORY_BUCKET}`;
/** An agent silent for this many heartbeats is shown as lost. */
export const LOST_AFTER_HEARTBEATS = 3;

export const VERBS = [
  'status',
  'nginx.list',
  'nginx.config.get',
  'nginx.config.apply',
  'plugins.list',
  'events.recent',
] as const;
export type Verb = (typeof VERBS)[number];

/** A kind or id as one or more subject tokens: no spaces, wildcards or empty tokens. */
export function subjectSafe(text: string): string {
  const cleaned = text
    .replace(/[\s*>]/g, '_')
    .split('.')
    .map((t) => t || '_')
    .join('.');
  return cleaned || '_';
}

export function eventSubject(prefix: string, agentId: string, kind: string): string {
  return `${prefix}.events.${subjectSafe(agentId)}.${subjectSafe(kind)}`;
}

export function commandSubject(prefix: string, agentId: string, verb: string): string {
  return `${prefix}.cmd.${subjectSafe(agentId)}.${verb}`;
}

export function inventorySubject(agentId: string): string {
  return `$KV.${INVENTORY_BUCKET}.${subjectSafe(agentId)}`;
}

/** Inbox prefix of an agent's connection: its replies from JetStream come here and nowhere else. */
export function agentInboxPrefix(agentId: string): string {
  return `_INBOX_${subjectSafe(agentId).replaceAll('.', '_')}`;
}

export interface NatsPermissions {
  publish: { allow: string[] };
  subscribe: { allow: string[] };
  allow_responses: boolean;
}

/**
 * What an agent's NATS user needs and no more: publish its own events and its own inventory key,
 * receive its own commands and answer them (allow_responses: only to the reply subject of a
 * request it received), receive JetStream acks on its own inbox. Creating the stream and the bucket
 * when they do not exist yet (INFO and CREATE on those two only) lets agents start before any
 * operator; an existing stream is never changed by an agent (CREATE with another config fails).
 */
export function agentPermissions(prefix: string, agentId: string): NatsPermissions {
  const id = subjectSafe(agentId);
  return {
    publish: {
      allow: [
        `${prefix}.events.${id}.>`,
        inventorySubject(id),
        `$JS.API.STREAM.INFO.${EVENTS_STREAM}`,
        `$JS.API.STREAM.CREATE.${EVENTS_STREAM}`,
        `$JS.API.STREAM.INFO.${INVENTORY_STREAM}`,
        `$JS.API.STREAM.CREATE.${INVENTORY_STREAM}`,
      ],
    },
    subscribe: { allow: [`${prefix}.cmd.${id}.>`, `${agentInboxPrefix(id)}.>`] },
    allow_responses: true,
  };
}

/** One nginx instance as the inventory shows it. */
export interface InventoryInstance {
  id: string;
  version: string;
  binary: string;
  config_path: string;
  config_version: string | null;
  up: boolean;
  last_test: { ok: boolean; exit_code: number | null; messages: unknown } | null;
}

/** The value of an agent's key in the inventory bucket. */
export interface InventoryEntry {
  id: string;
  name: string;
  host: string;
  version: string;
  labels: Record<string, string>;
  /** RFC 3339. */
  started: string;
  /** RFC 3339: the last write. */
  last_seen: string;
  /** Milliseconds between writes; the operator shows the agent lost after 3 without one. */
  heartbeat_interval_ms: number;
  /** `online` while running; `stopped` after a clean stop. */
  state: 'online' | 'stopped';
  nginx: InventoryInstance[];
  plugins: { name: string; kind: string; state: string }[];
}

/** online, stopped, or lost (no write for 3 heartbeats). */
export function agentState(entry: InventoryEntry, now = Date.now()): 'online' | 'stopped' | 'lost' {
  if (entry.state === 'stopped') return 'stopped';
  const age = now - Date.parse(entry.last_seen);
  return age > LOST_AFTER_HEARTBEATS * entry.heartbeat_interval_ms ? 'lost' : 'online';
}

/**
 * An `authorization {}` block for nats-server.conf: the operator without limits and one user per
 * agent with {@link agentPermissions} (what config/nats/nats-server.conf shows by hand).
 */
export function natsAuthorization(
  prefix: string,
  operator: { user: string; password: string },
  agents: readonly { user: string; password: string; agentId: string }[],
): string {
  const quote = (s: string) => JSON.stringify(s);
  const users = [
    `    { user: ${quote(operator.user)}, password: ${quote(operator.password)} }`,
    ...agents.map((a) => {
      const p = agentPermissions(prefix, a.agentId);
      return `    { user: ${quote(a.user)}, password: ${quote(a.password)}, permissions: {
        publish: { allow: [${p.publish.allow.map(quote).join(', ')}] }
        subscribe: { allow: [${p.subscribe.allow.map(quote).join(', ')}] }
        allow_responses: true } }`;
    }),
  ];
  return `authorization {\n  users: [\n${users.join('\n')}\n  ]\n}\n`;
}
