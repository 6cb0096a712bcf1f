import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  appendFileSync,
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  truncateSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { LogTailer, type SavedPosition, type TailerOptions } from './tailer.js';

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

test('a quiet log is polled with one stat; a copytruncate regrown to the very same size is still noticed', async () => {
  const { path, lines, clock, t } = setup();
  writeFileSync(path, numbered(0, 3, 'aaa'));
  // Written long ago (by the tailer's clock): quiet polls from the first poll that reads it to its end.
  const past = new Date(Date.now() - 60_000);
  utimesSync(path, past, past);
  clock.now = Date.now() + 60_000;
  await t.poll();
  await t.poll(); // nothing new: the quiet poll
  assert.deepEqual(lines.splice(0), numbered(0, 3, 'aaa').trimEnd().split('\n'));
  // Same length, other bytes, same inode: only the file's times tell.
  truncateSync(path, 0);
  appendFileSync(path, numbered(0, 3, 'bbb'));
  await t.poll();
  assert.deepEqual(lines.splice(0), numbered(0, 3, 'bbb').trimEnd().split('\n'));
  assert.equal(t.stats.truncations, 1);
  appendFileSync(path, 'ccc\n');
  await t.poll();
  assert.deepEqual(lines, ['ccc']);
  const saved = await t.position();
  assert.equal(saved?.offset, readFileSync(path).length);
  assert.equal(Buffer.from(saved!.tail, 'base64').toString().endsWith('bbb 2\nccc\n'), true);
  assert.deepEqual(await t.position(), saved, 'the same position while nothing moved');
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

const linesOf = (text: string) => text.trimEnd().split('\n');

test('copytruncate: lines not yet read when the file was copied are read from the copy (the newest file with our head), then the file from 0', async () => {
  const { path, lines, t } = setup();
  writeFileSync(`${path}.2`, numbered(0, 3, 'older rotation')); // a decoy: another head
  writeFileSync(path, numbered(0, 5));
  await t.poll();
  assert.deepEqual(lines.splice(0), linesOf(numbered(0, 5)));
  appendFileSync(path, `${numbered(5, 3)}line 8 without its newline yet`);
  await t.poll(); // line 8 is a partial line: it waits for its end
  appendFileSync(path, '\nline 9\n'); // written before the copy, never read from the file
  copyFileSync(path, `${path}.1`);
  truncateSync(path, 0);
  appendFileSync(path, numbered(0, 2, 'after'));
  await t.poll();
  assert.deepEqual(lines, [
    ...linesOf(numbered(5, 3)),
    'line 8 without its newline yet',
    'line 9',
    ...linesOf(numbered(0, 2, 'after')),
  ]);
  assert.equal(t.stats.truncations, 1);
  // The copy is closed once drained (nobody holds it); nothing is read twice.
  appendFileSync(path, numbered(2, 1, 'after'));
  await t.poll();
  assert.deepEqual(lines.slice(-1), ['after 2']);
  await t.close();
});

test('copytruncate regrown past our offset between polls: the unread rest comes from the copy too', async () => {
  const { path, lines, t } = setup();
  writeFileSync(path, numbered(0, 3));
  await t.poll();
  appendFileSync(path, numbered(3, 2));
  copyFileSync(path, `${path}-20260101`);
  truncateSync(path, 0);
  appendFileSync(path, numbered(0, 30, 'regrown'));
  await t.poll();
  assert.deepEqual(lines, [...linesOf(numbered(0, 5)), ...linesOf(numbered(0, 30, 'regrown'))]);
  await t.close();
});

test('a rotated file is read while a writer holds it, however long it is quiet, and closed once none does', async () => {
  let held = true;
  const { path, lines, clock, t } = setup({ isHeld: async () => held });
  writeFileSync(path, numbered(0, 2));
  await t.poll();
  renameSync(path, `${path}.1`);
  writeFileSync(path, ''); // `nginx -t` (or logrotate create) made a new file; nginx has not reopened
  await t.poll();
  assert.equal(t.stats.rotations, 1);
  clock.now = 60_000; // far past drainQuietMs
  await t.poll();
  appendFileSync(`${path}.1`, numbered(2, 2)); // nginx still writes to the old file
  clock.now = 120_000;
  await t.poll();
  assert.equal(t.stats.draining, 1);
  appendFileSync(`${path}.1`, numbered(4, 1)); // written just before the reopen
  held = false; // nginx reopened
  appendFileSync(path, numbered(100, 1));
  clock.now = 121_000; // holders are looked up again at most every 200 ms
  await t.poll();
  assert.equal(t.stats.draining, 0);
  assert.deepEqual(lines, [...linesOf(numbered(0, 5)), 'line 100']);
  await t.close();
});

test('resume: reads on from a saved position; a catch-up over catchUpMaxBytes keeps the newest whole lines and warns', async () => {
  const first = setup({ startAt: 'end' });
  writeFileSync(first.path, numbered(0, 3));
  await first.t.poll();
  appendFileSync(first.path, numbered(3, 2));
  await first.t.poll();
  const saved = await first.t.position();
  await first.t.close();
  assert.ok(saved);
  appendFileSync(first.path, numbered(5, 3)); // written while nobody read

  const lines: string[] = [];
  const warnings: string[] = [];
  const options = {
    path: first.path,
    startAt: 'end' as const,
    onText: (text: string) => lines.push(...linesOf(text)),
    onWarning: (m: string) => warnings.push(m),
  };
  const again = new LogTailer({ ...options, resume: saved });
  await again.poll();
  assert.deepEqual(lines.splice(0), linesOf(numbered(5, 3)));
  assert.deepEqual(warnings, []);
  await again.close();

  // 100 lines while down, a cap of 25 bytes: only whole lines among the newest 25 bytes.
  appendFileSync(first.path, numbered(10, 100, 'down'));
  const capped = new LogTailer({
    ...options,
    resume: { ...saved, ...(await positionAtEnd(saved, first.path, 8)) },
    catchUpMaxBytes: 25,
  });
  await capped.poll();
  assert.deepEqual(lines, ['down 108', 'down 109']);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /catch_up_max_bytes \(25 bytes\); skipped the oldest \d+ bytes of .*log-\d+\.log/);
  assert.ok(capped.stats.skippedBytes > 0);
  await capped.close();
});

test('resume after a rename rotation or a copytruncate while the agent was away: the rest of the old file, then the new one', async () => {
  for (const kind of ['rename', 'copytruncate'] as const) {
    const first = setup();
    writeFileSync(first.path, numbered(0, 3));
    await first.t.poll();
    const saved = await first.t.position();
    await first.t.close();
    appendFileSync(first.path, numbered(3, 2));
    if (kind === 'rename') {
      renameSync(first.path, `${first.path}.1`);
    } else {
      copyFileSync(first.path, `${first.path}.1`);
      truncateSync(first.path, 0);
    }
    appendFileSync(first.path, numbered(0, 2, 'new'));
    const lines: string[] = [];
    const t = new LogTailer({
      path: first.path,
      startAt: 'end',
      resume: saved,
      isHeld: async () => false,
      onText: (text) => lines.push(...linesOf(text)),
    });
    await t.poll();
    assert.deepEqual(lines, [...linesOf(numbered(3, 2)), 'new 0', 'new 1'], kind);
    assert.equal(kind === 'rename' ? t.stats.rotations : t.stats.truncations, 1, kind);
    await t.close();
  }
});

test('a FIFO is refused without opening it for a writer; a directory is refused and no descriptor is left open', async () => {
  const fifo = join(dir, 'fifo.log');
  execFileSync('mkfifo', [fifo]);
  const t = new LogTailer({ path: fifo, startAt: 'end', onText: () => assert.fail('nothing to read') });
  await t.poll(); // returns although no writer ever opens the FIFO
  assert.match(String(t.stats.lastError), /fifo\.log is a FIFO, not a regular file: refused/);
  await t.close();

  const openFds = () => readdirSync('/proc/self/fd').length;
  const d = new LogTailer({ path: dir, startAt: 'end', onText: () => {} });
  const before = openFds();
  for (let i = 0; i < 20; i++) await d.poll();
  assert.match(String(d.stats.lastError), /is a directory, not a regular file/);
  assert.ok(openFds() - before < 5, `descriptors left open: ${openFds() - before}`);
  await d.close();
});

/** `saved` moved to the end of the file but `back` lines before it (for the catch-up cap test). */
async function positionAtEnd(saved: SavedPosition, path: string, back: number): Promise<Partial<SavedPosition>> {
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n').slice(0, -1);
  const offset = Buffer.byteLength(
    lines
      .slice(0, lines.length - 100 - back)
      .map((l) => `${l}\n`)
      .join(''),
  );
  const tail = Buffer.from(text)
    .subarray(Math.max(0, offset - 32), offset)
    .toString('base64');
  return { ino: saved.ino, dev: saved.dev, offset, tail };
}
