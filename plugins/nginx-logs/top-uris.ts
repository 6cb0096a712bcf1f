/**
 * The most requested URIs of one access log over a recent window, in bounded memory.
 *
 * `HeavyHitters` is the space-saving algorithm (Metwally et al.): at most `capacity` keys are
 * counted; a key not counted yet takes the place of the least counted one and inherits its count
 * (so a count is an upper bound, exact while fewer than `capacity` distinct keys were seen, and
 * every key requested more than total/capacity times is guaranteed to be kept).
 *
 * `WindowedTopUris` keeps two of them, the current and the previous half-window, rotated by the
 * caller's clock (`rotate`, once per poll, never per line), and merges both when asked.
 */

/** URIs counted per half-window: memory stays bounded whatever the traffic. */
export const TOP_URIS_CAPACITY = 64;
/** The window `nginx.access.top` covers. */
export const TOP_URIS_WINDOW_MS = 60_000;
/** Requests per half-window counted one by one (about 270 requests/s); beyond, sampled (`take`). */
export const EXACT_PER_HALF_WINDOW = 8192;
/** URIs per log in each `nginx.access.top` message. */
export const TOP_URIS_PUBLISHED = 20;

export interface UriCount {
  uri: string;
  requests: number;
  errors5xx: number;
}

/**
 * Space-saving counter of at most `capacity` keys. Keys are looked up straight from the log text
 * (`addRange`): a hash of the characters and an open-addressing table of slot numbers, so a key
 * already counted costs no string and no Map lookup; a string is made only for a new key.
 */
export class HeavyHitters {
  readonly capacity: number;
  readonly #keys: string[] = [];
  readonly #hashes: Int32Array;
  readonly #counts: Float64Array;
  readonly #errors: Float64Array;
  /** Linear-probing table: slot + 1, 0 for empty; at least 4x capacity so probes stay short. */
  readonly #table: Int32Array;
  readonly #mask: number;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be >= 1, got ${capacity}`);
    this.capacity = capacity;
    this.#hashes = new Int32Array(capacity);
    this.#counts = new Float64Array(capacity);
    this.#errors = new Float64Array(capacity);
    let size = 8;
    while (size < capacity * 4) size *= 2;
    this.#table = new Int32Array(size);
    this.#mask = size - 1;
  }

  /** Keys counted now (never more than `capacity`). */
  get size(): number {
    return this.#keys.length;
  }

  /** Counts one request for `key`; `error5xx` when it was answered with a 5xx. */
  add(key: string, error5xx: boolean): void {
    this.addRange(key, 0, key.length, hashRange(key, 0, key.length), error5xx, 1);
  }

  /** Counts `weight` requests for the key `text[s, e)` whose `hashRange` is `hash`. */
  addRange(text: string, s: number, e: number, hash: number, error5xx: boolean, weight: number): void {
    const table = this.#table;
    const mask = this.#mask;
    const len = e - s;
    let at = hash & mask;
    for (let cell = table[at]; cell !== 0; cell = table[at]) {
      const slot = cell - 1;
      if (this.#hashes[slot] === hash) {
        const key = this.#keys[slot];
        if (key.length === len && text.startsWith(key, s)) {
          this.#counts[slot] += weight;
          if (error5xx) this.#errors[slot] += weight;
          return;
        }
      }
      at = (at + 1) & mask;
    }
    let slot: number;
    if (this.#keys.length < this.capacity) {
      slot = this.#keys.length;
      this.#keys.push(text.slice(s, e));
      this.#counts[slot] = weight;
    } else {
      slot = this.#leastCounted();
      this.#unlink(slot);
      // The newcomer inherits the evicted count (space-saving); its 5xx are its own from now on.
      this.#keys[slot] = text.slice(s, e);
      this.#counts[slot] += weight;
      // The evicted key's cell is gone: find the free cell for the new hash again.
      at = hash & mask;
      while (table[at] !== 0) at = (at + 1) & mask;
    }
    this.#hashes[slot] = hash;
    this.#errors[slot] = error5xx ? weight : 0;
    table[at] = slot + 1;
  }

  #leastCounted(): number {
    const counts = this.#counts;
    let min = 0;
    for (let i = 1; i < counts.length; i++) if (counts[i] < counts[min]) min = i;
    return min;
  }

  /** Removes `slot`'s cell from the table, shifting back the cells probed past it. */
  #unlink(slot: number): void {
    const table = this.#table;
    const mask = this.#mask;
    let hole = this.#hashes[slot] & mask;
    while (table[hole] !== slot + 1) hole = (hole + 1) & mask;
    let next = hole;
    for (;;) {
      next = (next + 1) & mask;
      const cell = table[next];
      if (cell === 0) break;
      const home = this.#hashes[cell - 1] & mask;
      // The cell may move into the hole unless its home lies cyclically in (hole, next].
      const movable = hole <= next ? home <= hole || home > next : home <= hole && home > next;
      if (movable) {
        table[hole] = cell;
        hole = next;
      }
    }
    table[hole] = 0;
  }

  /** Adds every counted key with its counts to `into` (summing with what is there). */
  addTo(into: Map<string, UriCount>): void {
    for (let i = 0; i < this.#keys.length; i++) {
      const uri = this.#keys[i];
      const have = into.get(uri);
      if (have) {
        have.requests += this.#counts[i];
        have.errors5xx += this.#errors[i];
      } else into.set(uri, { uri, requests: this.#counts[i], errors5xx: this.#errors[i] });
    }
  }

  clear(): void {
    this.#keys.length = 0;
    this.#table.fill(0);
  }
}

/** Top URIs over the last `windowMs` (two half-window buckets of `HeavyHitters`). */
export class WindowedTopUris {
  readonly windowMs: number;
  #current: HeavyHitters;
  #previous: HeavyHitters;
  #bucketStart: number;
  #currentTotal = 0;
  #previousTotal = 0;
  /** Sampling (see `take`): 1 counts every request. */
  #stride = 1;
  #nextDoubling = EXACT_PER_HALF_WINDOW;
  #skip = 0;
  #weight = 1;
  #random = 0x9e3779b9 | 0;
  /** Bumped on every rotation that changed what `top` returns. */
  generation = 0;

  constructor(opts: { capacity: number; windowMs: number; now?: number }) {
    this.windowMs = opts.windowMs;
    this.#current = new HeavyHitters(opts.capacity);
    this.#previous = new HeavyHitters(opts.capacity);
    this.#bucketStart = opts.now ?? Date.now();
  }

  add(uri: string, error5xx: boolean): void {
    if (this.take()) this.addRange(uri, 0, uri.length, hashRange(uri, 0, uri.length), error5xx);
  }

  /**
   * Counts a request in the window's total and says whether to count its URI too (`addRange`):
   * every request while the half-window has seen fewer than EXACT_PER_HALF_WINDOW, then one in
   * `stride` on average (doubling as the half-window fills), at random intervals so that a periodic
   * pattern in the traffic is not aliased. Keeps the per-line cost low on a busy server.
   */
  take(): boolean {
    const total = ++this.#currentTotal;
    if (--this.#skip > 0) return false;
    while (total >= this.#nextDoubling) {
      this.#stride *= 2;
      this.#nextDoubling *= 2;
    }
    if (this.#stride === 1) this.#skip = 1;
    else {
      // xorshift32: a uniform skip in [1, 2 * stride - 1], mean `stride`.
      let x = this.#random;
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.#random = x;
      this.#skip = 1 + ((x >>> 0) % (2 * this.#stride - 1));
    }
    this.#weight = this.#stride;
    return true;
  }

  /** Counts the URI `text[s, e)` (whose `hashRange` is `hash`) of the request `take` said to count. */
  addRange(text: string, s: number, e: number, hash: number, error5xx: boolean): void {
    this.#current.addRange(text, s, e, hash, error5xx, this.#weight);
  }

  /** Requests counted in the window (every URI, kept or not). */
  get requests(): number {
    return this.#currentTotal + this.#previousTotal;
  }

  /** Moves to a new half-window when the current one is over (call once per poll). */
  rotate(now: number): void {
    const half = this.windowMs / 2;
    const elapsed = now - this.#bucketStart;
    if (elapsed < half) return;
    if (this.#current.size || this.#previous.size) this.generation++;
    if (elapsed >= 2 * half) {
      this.#current.clear();
      this.#previous.clear();
      this.#previousTotal = 0;
    } else {
      this.#previousTotal = this.#currentTotal;
      const old = this.#previous;
      this.#previous = this.#current;
      old.clear();
      this.#current = old;
    }
    this.#currentTotal = 0;
    this.#stride = 1;
    this.#nextDoubling = EXACT_PER_HALF_WINDOW;
    this.#skip = 0;
    this.#bucketStart = now;
  }

  /** The `limit` most requested URIs (most first; ties by URI), `unescape` applied to each. */
  top(limit: number, unescape: (raw: string) => string = (raw) => raw): UriCount[] {
    const merged = new Map<string, UriCount>();
    this.#previous.addTo(merged);
    this.#current.addTo(merged);
    const out = new Map<string, UriCount>();
    for (const c of merged.values()) {
      const uri = unescape(c.uri);
      const have = out.get(uri);
      if (have) {
        have.requests += c.requests;
        have.errors5xx += c.errors5xx;
      } else out.set(uri, { ...c, uri });
    }
    return [...out.values()]
      .sort((a, b) => b.requests - a.requests || (a.uri < b.uri ? -1 : a.uri > b.uri ? 1 : 0))
      .slice(0, limit);
  }
}

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

/**
 * The key hash of `HeavyHitters`, cheap on purpose (it runs per log line): FNV-1a of the length,
 * the last four characters and the middle one of `text[s, e)`. Keys that differ elsewhere share a
 * hash and only probe a little longer: the table compares whole keys.
 */
export function hashRange(text: string, s: number, e: number): number {
  let hash = Math.imul(FNV_OFFSET ^ (e - s), FNV_PRIME);
  hash = Math.imul(hash ^ text.charCodeAt((s + e) >> 1), FNV_PRIME);
  for (let i = Math.max(s, e - 4); i < e; i++) hash = Math.imul(hash ^ text.charCodeAt(i), FNV_PRIME);
  return hash;
}

/**
 * Where the path of a request line or URI in `text[s, e)` is, without the query string: for
 * `$request` (`GET /a?b HTTP/1.1`) the second word, else the whole value. Writes the range and its
 * `hashRange` to `out` (`out[0]` start, `out[1]` end, `out[2]` hash), and returns false when there is no path (`-`, empty, a garbled request line).
 * Allocates nothing.
 */
export function uriRange(text: string, s: number, e: number, isRequestLine: boolean, out: Int32Array): boolean {
  if (isRequestLine) {
    // indexOf is native and the spaces are near: after the method, before the protocol.
    const sp = text.indexOf(' ', s);
    if (sp < 0 || sp >= e) return false;
    s = sp + 1;
    const protocol = text.indexOf(' ', s);
    if (protocol >= 0 && protocol < e) e = protocol;
  }
  if (e <= s || (e - s === 1 && text.charCodeAt(s) === 45)) return false; // `-`: not logged
  // Up to the query string: a loop, as indexOf would run on past the line when there is none.
  let i = s;
  while (i < e && text.charCodeAt(i) !== 63) i++;
  if (i === s) return false;
  out[0] = s;
  out[1] = i;
  out[2] = hashRange(text, s, i);
  return true;
}
