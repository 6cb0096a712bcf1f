/**
 * What the agent itself wrote (or deleted) during an apply, so the watcher does not report it as a
 * foreign change: a file event whose current content has the sha256 the agent wrote is ignored.
 * Entries expire so a later foreign write of the same bytes is seen again.
 */
import { createHash } from 'node:crypto';

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** `null` as expected hash: the agent deleted the file. */
type Expected = { hash: string | null; until: number };

export class OwnWrites {
  readonly #byPath = new Map<string, Expected[]>();

  constructor(
    private readonly ttlMs = 30_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records that the agent wrote `content` to `path` (or deleted it when content is null). */
  record(path: string, content: string | Buffer | null): void {
    const list = (this.#byPath.get(path) ?? []).filter((e) => e.until > this.now());
    list.push({ hash: content === null ? null : sha256(content), until: this.now() + this.ttlMs });
    this.#byPath.set(path, list.slice(-8));
  }

  /** True when the file's current state (its content hash, or null when missing) is one the agent produced. */
  isOwn(path: string, currentHash: string | null): boolean {
    const list = this.#byPath.get(path);
    if (!list) return false;
    const now = this.now();
    const live = list.filter((e) => e.until > now);
    if (live.length === 0) {
      this.#byPath.delete(path);
      return false;
    }
    this.#byPath.set(path, live);
    // Only the latest write counts: if a foreign write came after ours, its hash differs.
    return live[live.length - 1].hash === currentHash;
  }

  get size(): number {
    return this.#byPath.size;
  }
}
