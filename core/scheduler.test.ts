import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { waitFor } from './testing/nginx.js';
import { Scheduler } from './scheduler.js';

describe('Scheduler', () => {
  test('jobs on the same interval share one wake-up; runNow runs at once', async () => {
    const s = new Scheduler({ phaseMs: 0 });
    let a = 0;
    let b = 0;
    s.every('a', 20, () => a++, { runNow: true });
    s.every('b', 20, () => b++);
    assert.equal(a, 1, 'runNow runs synchronously');
    try {
      await waitFor(() => b >= 3, 'three runs of b');
      const st = s.stats();
      assert.equal(st.jobs, 2);
      assert.ok(st.wakeups <= b + 1, `one wake-up runs both jobs (wakeups ${st.wakeups}, runs of b ${b})`);
      assert.ok(a >= b, 'a ran at every wake-up b ran');
    } finally {
      s.close();
    }
  });

  test('a job still running is skipped, not stacked; a throwing job is reported and runs again', async () => {
    const errors: string[] = [];
    const s = new Scheduler({ phaseMs: 0, onError: (name, err) => errors.push(`${name}: ${(err as Error).message}`) });
    let slowRuns = 0;
    let failing = 0;
    s.every('slow', 10, () => {
      slowRuns++;
      return new Promise(() => undefined); // never finishes
    });
    s.every('failing', 10, () => {
      failing++;
      throw new Error('boom');
    });
    try {
      await waitFor(() => failing >= 3 && s.stats().skipped >= 2, 'skips and repeated failures');
      assert.equal(slowRuns, 1);
      assert.equal(errors[0], 'failing: boom');
      assert.equal(s.stats().errors, failing);
    } finally {
      s.close();
    }
  });

  test('cancel stops a job; an interval of 0 is refused', async () => {
    const s = new Scheduler({ phaseMs: 0 });
    let runs = 0;
    const job = s.every('x', 10, () => runs++);
    await waitFor(() => runs >= 1, 'a first run');
    job.cancel();
    const after = runs;
    const other = s.every('y', 10, () => undefined);
    await waitFor(() => s.stats().wakeups >= 4, 'more wake-ups');
    assert.equal(runs, after, 'not run after cancel');
    assert.equal(s.stats().jobs, 1);
    other.cancel();
    assert.throws(() => s.every('z', 0, () => undefined), /needs an interval above 0 ms/);
    s.close();
  });
});
