/**
 * A bounded FIFO on a power-of-two array: O(1) push/shift. The array starts small and doubles when
 * full, up to the first power of two at or above `capacity`: a queue allocates what its backlog has
 * needed, not its bound. With a bound of 10,000, an array sized up front is 128 KB per subscriber
 * (about 3 MB over a default agent's queues) that a healthy agent never fills.
 */
export class Ring<T> {
  /** Slots of a new ring, doubled as needed up to the bound. */
  static readonly INITIAL_SLOTS = 16;
  #buf: (T | undefined)[];
  #mask: number;
  readonly capacity: number;
  #head = 0;
  #size = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
    let slots = 1;
    while (slots < Math.min(capacity, Ring.INITIAL_SLOTS)) slots <<= 1;
    this.#buf = new Array(slots).fill(undefined);
    this.#mask = slots - 1;
  }

  get size(): number {
    return this.#size;
  }

  /** Slots allocated now (the tests and the footprint bench read it). */
  get slots(): number {
    return this.#buf.length;
  }

  /** Appends; returns false when full (nothing changed). */
  push(v: T): boolean {
    if (this.#size >= this.capacity) return false;
    if (this.#size === this.#buf.length) this.#grow();
    this.#buf[(this.#head + this.#size) & this.#mask] = v;
    this.#size++;
    return true;
  }

  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const v = this.#buf[this.#head];
    this.#buf[this.#head] = undefined;
    this.#head = (this.#head + 1) & this.#mask;
    this.#size--;
    return v;
  }

  /** Twice the slots, the queued items moved to the front in order. */
  #grow(): void {
    const old = this.#buf;
    const next = new Array<T | undefined>(old.length * 2).fill(undefined);
    for (let i = 0; i < this.#size; i++) next[i] = old[(this.#head + i) & this.#mask];
    this.#buf = next;
    this.#mask = next.length - 1;
    this.#head = 0;
  }
}
