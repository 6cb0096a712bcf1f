import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, renameSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { LogTailer, type TailerOptions } from './tailer.js';

const dir = mkdtempSync(join(tmpdir(), 'tailer-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** A tailer on a fresh path that collects the lines it hands over; the clock is ours. */
function setup(opts: Partial<TailerOptions> = {}) {
  const path = join(dir, `log-${n++}.log`);
  const lines: string[] = [];
  const clock = { now: 0 };
  const t = new LogTailer({
    path,
    startAt: 'beginning',
    drainQuietMs: 1000,
    now: () => clock.now,
    onText: (text) => {
      assert.ok(text.endsWith('\n'), 'only complete lines are handed over');
      lines.push(...text.slice(0, -1).split('\n'));
    },
    ...opts,
  });
  return { path, lines, clock, t };
}

const numbered = (from: number, count: number, tag = 'line') =>
  Array.from({ length: count }, (_, i) => `${tag} ${from + i}\n`).join('');

test('start_at end skips history; appended lines are read; a partial line waits for its newline', async () => {
  const { path, lines, t } = setup({ startAt: 'end' });
  writeFileSync(path, numbered(0, 5));
  await t.poll();
  assert.deepEqual(lines, []);
  appendFileSync(path, 'line 5\nline 6\nline 7 part');
  await t.poll();
  assert.deepEqual(lines, ['line 5', 'line 6']);
  appendFileSync(path, 'ial\n');
  await t.poll();
  assert.deepEqual(lines, ['line 5', 'line 6', 'line 7 partial']);
  await t.close();
});

test('a log that does not exist yet is read from its start when it appears', async () => {
  const { path, lines, t } = setup({ startAt: 'end' });
  await t.poll();
  assert.equal(t.stats.open, false);
  writeFileSync(path, numbered(0, 3));
  await t.poll();
  assert.deepEqual(lines, ['line 0', 'line 1', 'line 2']);
  await t.close();
});

test('reads in chunks: lines across chunk borders and a line longer than the chunk', async () => {
  const { path, lines, t } = setup({ chunkBytes: 16 });
  const long = 'x'.repeat(100);
  writeFileSync(path, `${numbered(0, 10)}${long}\n${numbered(10, 3)}`);
  await t.poll();
  assert.deepEqual(lines, [...numbered(0, 10).trimEnd().split('\n'), long, 'line 10', 'line 11', 'line 12']);
  await t.close();
});

test('a line over maxLineBytes is dropped and counted, the next lines are read', async () => {
  const { path, lines, t } = setup({ chunkBytes: 16, maxLineBytes: 64 });
  writeFileSync(path, `a\n${'y'.repeat(300)}\nb\n`);
  await t.poll();
  assert.deepEqual(lines, ['a', 'b']);
  assert.equal(t.stats.oversizedLines, 1);
  await t.close();
});

test('rename rotation: lines written to the old file after the rename (before reopen) are drained, the new file is read from 0', async () => {
  const { path, lines, clock, t } = setup();
  writeFileSync(path, numbered(0, 3));
  await t.poll();
  renameSync(path, `${path}.1`);
  appendFileSync(`${path}.1`, numbered(3, 2)); // nginx still writes to the old descriptor
  await t.poll(); // the path is gone: keep reading the old file
  writeFileSync(path, numbered(100, 2)); // logrotate create
  appendFileSync(`${path}.1`, numbered(5, 1)); // nginx has not reopened yet
  await t.poll();
  assert.equal(t.stats.rotations, 1);
  appendFileSync(`${path}.1`, numbered(6, 1)); // still before the reopen
  appendFileSync(path, numbered(102, 1)); // after the reopen
  clock.now = 500;
  await t.poll();
  assert.equal(t.stats.draining, 1);
  clock.now = 2000; // the old file has been quiet long enough
  await t.poll();
  assert.equal(t.stats.draining, 0);
  assert.deepEqual(
    [...lines].sort(),
    [...numbered(0, 7).trimEnd().split('\n'), 'line 100', 'line 101', 'line 102'].sort(),
  );
  await t.close();
});

test('copytruncate: smaller file -> from 0; regrown past our offset between polls -> noticed by the bytes before the offset', async () => {
  const { path, lines, t } = setup();
  writeFileSync(path, numbered(0, 4, 'old'));
  await t.poll();
  truncateSync(path, 0);
  appendFileSync(path, numbered(0, 2, 'new'));
  await t.poll();
  assert.deepEqual(lines.splice(0), [...numbered(0, 4, 'old').trimEnd().split('\n'), 'new 0', 'new 1']);
  // Truncated and regrown beyond the offset before the next poll.
  truncateSync(path, 0);
  appendFileSync(path, numbered(0, 20, 'newer'));
  await t.poll();
  assert.deepEqual(lines, numbered(0, 20, 'newer').trimEnd().split('\n'));
  assert.equal(t.stats.truncations, 2);
  await t.close();
});

test('a deleted and recreated log counts as a rotation; close is idempotent', async () => {
  const { path, lines, clock, t } = setup();
  writeFileSync(path, 'a\n');
  await t.poll();
  unlinkSync(path);
  writeFileSync(path, 'b\n');
  await t.poll();
  clock.now = 5000;
  await t.poll();
  assert.deepEqual(lines, ['a', 'b']);
  await t.close();
  await t.close();
  await t.poll();
});
