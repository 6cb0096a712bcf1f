/**
 * Events waiting to be published: bounded, oldest first. Past `capacity` the oldest are dropped and
 * counted. `take` hands out the head for publishing; `putBack` returns the ones that failed.
 */
export class Outbox<T> {
  #items: T[] = [];
  #head = 0;
  /** Items dropped because the outbox was full. */
  dropped = 0;

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.#items.length - this.#head;
  }

  /** Adds at the tail; returns how many of the oldest were dropped to make room. */
  push(item: T): number {
    this.#items.push(item);
    return this.#trim();
  }

  /** Removes and returns up to `count` items from the head. */
  take(count: number): T[] {
    const out = this.#items.slice(this.#head, this.#head + count);
    this.#head += out.length;
    this.#compact();
    return out;
  }

  /** Puts items taken earlier back at the head, oldest first (they keep their place in line). */
  putBack(items: readonly T[]): number {
    if (!items.length) return 0;
    this.#items = [...items, ...this.#items.slice(this.#head)];
    this.#head = 0;
    return this.#trim();
  }

  #trim(): number {
    const over = Math.max(0, this.size - this.capacity);
    this.#head += over;
    this.dropped += over;
    this.#compact();
    return over;
  }

  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }
}
