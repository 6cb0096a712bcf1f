import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { Ring } from './ring.js';

describe('Ring', () => {
  test('starts small, grows with its backlog up to the bound, and keeps the order across growths', () => {
    const ring = new Ring<number>(10_000);
    assert.equal(ring.slots, Ring.INITIAL_SLOTS);
    // Wrap around first, so a growth has to unwrap the queue.
    for (let i = 0; i < 10; i++) ring.push(-1);
    for (let i = 0; i < 10; i++) ring.shift();
    let pushed = 0;
    while (ring.push(pushed)) pushed++;
    assert.equal(pushed, 10_000, 'takes exactly its capacity');
    assert.equal(ring.slots, 16_384);
    assert.equal(ring.size, 10_000);
    for (let i = 0; i < 10_000; i++) assert.equal(ring.shift(), i);
    assert.equal(ring.shift(), undefined);
    assert.equal(ring.size, 0);
  });

  test('a quiet queue stays at its first allocation', () => {
    const ring = new Ring<string>(10_000);
    for (let i = 0; i < 1000; i++) {
      assert.ok(ring.push(`m${i}`));
      assert.ok(ring.push(`n${i}`));
      assert.equal(ring.shift(), `m${i}`);
      assert.equal(ring.shift(), `n${i}`);
    }
    assert.equal(ring.slots, Ring.INITIAL_SLOTS);
  });

  test('a bound below the first allocation is still the bound', () => {
    const ring = new Ring<number>(3);
    assert.ok(ring.push(1) && ring.push(2) && ring.push(3));
    assert.equal(ring.push(4), false);
    assert.equal(ring.slots, 4);
    assert.deepEqual([ring.shift(), ring.shift(), ring.shift(), ring.shift()], [1, 2, 3, undefined]);
  });
});
