/** A fixed-capacity FIFO on a power-of-two array: O(1) push/shift, no allocation after construction. */
export class Ring<T> {
  readonly #buf: (T | undefined)[];
  readonly #mask: number;
  readonly capacity: number;
  #head = 0;
  #size = 0;

  constructor(capacity: number) {
    let cap = 1;
    while (cap < capacity) cap <<= 1;
    this.#buf = new Array(cap);
    this.#mask = cap - 1;
    this.capacity = capacity;
  }

  get size(): number {
    return this.#size;
  }

  /** Appends; returns false when full (nothing changed). */
  push(v: T): boolean {
    if (this.#size >= this.capacity) return false;
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
}
