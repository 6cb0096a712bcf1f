/**
 * Creates the events stream and the inventory bucket when they do not exist yet. Both sides call it
 * (agents may start before any operator); an agent's user is allowed INFO and CREATE on these two
 * only, so an existing stream is never changed by an agent.
 */
import {
  DiscardPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type JetStreamOptions,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { EVENTS_STREAM, INVENTORY_BUCKET } from './subjects.js';

/** How long a message id is remembered for deduplication: covers retries after a long outage. */
export const DUPLICATE_WINDOW_MS = 10 * 60_000;
/** Events are kept this long. */
export const EVENTS_MAX_AGE_MS = 7 * 24 * 3600_000;

function notFound(err: unknown): boolean {
  const e = err as { code?: unknown; message?: string; api_error?: { err_code?: number } };
  return /not found/i.test(e.message ?? '') || e.api_error?.err_code === 10059;
}

export async function ensureEventsStream(nc: NatsConnection, prefix: string, replicas = 1): Promise<void> {
  const jsm = await jetstreamManager(nc, { checkAPI: false });
  try {
    await jsm.streams.info(EVENTS_STREAM);
    return;
  } catch (err) {
    if (!notFound(err)) throw err;
  }
  await jsm.streams.add({
    name: EVENTS_STREAM,
    subjects: [`${prefix}.events.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(EVENTS_MAX_AGE_MS),
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    num_replicas: replicas,
  });
}

/** Opens the inventory bucket, creating it when missing. */
export async function inventoryBucket(nc: NatsConnection, replicas = 1): Promise<KV> {
  // checkAPI false: no $JS.API.INFO request, which an agent's user may not send.
  return new Kvm(jetstream(nc, { checkAPI: false } as JetStreamOptions)).create(INVENTORY_BUCKET, {
    history: 1,
    replicas,
  });
}
