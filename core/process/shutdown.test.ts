import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import pino from 'pino';
import { waitFor } from '../testing/nginx.js';
import { Shutdown } from './shutdown.js';

function setup(stop: () => Promise<boolean>, still: string[] = []) {
  const lines: { level: number; msg: string; still_running?: string[] }[] = [];
  const exits: number[] = [];
  const shutdown = new Shutdown({
    stop,
    stillRunning: () => still,
    timeoutMs: () => 50,
    logger: pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) }),
    exit: (code) => void exits.push(code),
  });
  return { shutdown, lines, exits };
}

test('a stop that hangs past agent.shutdown_timeout: what is still running is logged, exit 1', async () => {
  const { shutdown, lines, exits } = setup(() => new Promise(() => {}), ['plugin stuck: close() has not returned']);
  shutdown.ready();
  shutdown.signal('SIGTERM');
  await waitFor(() => exits.length > 0, 'the deadline to pass');
  assert.deepEqual(exits, [1]);
  const last = lines.at(-1)!;
  assert.equal(last.level, 50);
  assert.match(
    last.msg,
    /did not finish within agent\.shutdown_timeout \(50 ms\); still running: plugin stuck: close\(\) has not returned/,
  );
  assert.deepEqual(last.still_running, ['plugin stuck: close() has not returned']);
});

test('a second SIGTERM or SIGINT exits at once', () => {
  const { shutdown, exits, lines } = setup(() => new Promise(() => {}));
  shutdown.ready();
  shutdown.signal('SIGTERM');
  assert.deepEqual(exits, []);
  shutdown.signal('SIGINT');
  assert.deepEqual(exits, [1]);
  assert.equal(lines.at(-1)!.msg, 'SIGINT again: exiting at once');
});

test('a clean stop exits 0, a stop that cut something off exits 1', async () => {
  const clean = setup(async () => true);
  clean.shutdown.ready();
  clean.shutdown.signal('SIGTERM');
  await waitFor(() => clean.exits.length > 0, 'the exit');
  assert.deepEqual(clean.exits, [0]);
  const cut = setup(async () => false);
  cut.shutdown.ready();
  cut.shutdown.signal('SIGTERM');
  await waitFor(() => cut.exits.length > 0, 'the exit');
  assert.deepEqual(cut.exits, [1]);
});

test('a signal during start is acted on once start is over', async () => {
  let stopped = false;
  const { shutdown, exits } = setup(async () => {
    stopped = true;
    return true;
  });
  shutdown.signal('SIGTERM');
  assert.equal(stopped, false);
  assert.equal(shutdown.ready(), true);
  await waitFor(() => exits.length > 0, 'the exit');
  assert.equal(stopped, true);
});
