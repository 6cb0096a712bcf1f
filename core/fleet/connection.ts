/**
 * NATS connection options from the `fleet` config section (agent) or the `agent fleet` flags
 * (operator): servers, one way of authenticating, TLS, and reconnecting forever with backoff.
 */
import { readFileSync } from 'node:fs';
import { credsAuthenticator, nkeyAuthenticator, type NodeConnectionOptions } from '@nats-io/transport-node';

export interface FleetConnectionSettings {
  servers: readonly string[];
  user: string;
  password_file: string;
  token_file: string;
  creds_file: string;
  nkey_seed_file: string;
  tls: { ca_file: string; cert_file: string; key_file: string };
}

/** Settings for these servers with no credentials and no TLS files: the defaults of the `fleet` section. */
export function unauthenticated(servers: readonly string[]): FleetConnectionSettings {
  return {
    servers,
    user: '',
    password_file: '',
    token_file: '',
    creds_file: '',
    nkey_seed_file: '',
    tls: { ca_file: '', cert_file: '', key_file: '' },
  };
}

function readSecret(key: string, file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new Error(`fleet.${key}: cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
}

/** Exponential backoff with jitter between reconnect attempts: 250 ms doubling up to `maxMs`. */
export function reconnectBackoff(maxMs = 2000): () => number {
  let attempt = 0;
  let last = Date.now();
  return () => {
    // A long quiet spell since the last attempt means a new outage: start small again.
    if (Date.now() - last > 4 * maxMs) attempt = 0;
    last = Date.now();
    const base = Math.min(maxMs, 250 * 2 ** attempt++);
    return Math.round(base / 2 + Math.random() * (base / 2));
  };
}

/** Throws naming the key when a file cannot be read or two ways of authenticating are set. */
export function connectionOptions(
  s: FleetConnectionSettings,
  extra: { name: string; inboxPrefix?: string; reconnectMaxMs?: number },
): NodeConnectionOptions {
  const ways = [
    s.user && 'user',
    s.token_file && 'token_file',
    s.creds_file && 'creds_file',
    s.nkey_seed_file && 'nkey_seed_file',
  ].filter(Boolean);
  if (ways.length > 1) throw new Error(`fleet: set one way of authenticating, not ${ways.join(' and ')}`);
  if (s.password_file && !s.user) throw new Error('fleet.password_file is set without fleet.user');
  const opts: NodeConnectionOptions = {
    servers: [...s.servers],
    name: extra.name,
    maxReconnectAttempts: -1,
    waitOnFirstConnect: true,
    reconnectDelayHandler: reconnectBackoff(extra.reconnectMaxMs),
    pingInterval: 10_000,
    maxPingOut: 3,
    timeout: 5000,
    ...(extra.inboxPrefix ? { inboxPrefix: extra.inboxPrefix } : {}),
  };
  if (s.user) {
    opts.user = s.user;
    if (s.password_file) opts.pass = readSecret('password_file', s.password_file);
  }
  if (s.token_file) opts.token = readSecret('token_file', s.token_file);
  if (s.creds_file)
    opts.authenticator = credsAuthenticator(new TextEncoder().encode(readSecret('creds_file', s.creds_file)));
  if (s.nkey_seed_file)
    opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(readSecret('nkey_seed_file', s.nkey_seed_file)));
  const { ca_file, cert_file, key_file } = s.tls;
  if (ca_file || cert_file || key_file) {
    if (Boolean(cert_file) !== Boolean(key_file))
      throw new Error('fleet.tls: cert_file and key_file go together (mutual TLS needs both)');
    opts.tls = {
      ...(ca_file ? { ca: readSecret('tls.ca_file', ca_file) } : {}),
      ...(cert_file ? { cert: readSecret('tls.cert_file', cert_file), key: readSecret('tls.key_file', key_file) } : {}),
    };
  }
  return opts;
}
