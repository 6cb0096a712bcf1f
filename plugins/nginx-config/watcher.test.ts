import assert from 'node:assert/strict';
import { mkdtemp, mkdir, realpath, rename, rm, unlink, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { waitFor } from '../../core/testing/nginx.js';
import { writeAtomic } from './applier.js';
import { OwnWrites } from './own-writes.js';
import { ConfigWatcher } from './watcher.js';
import { planWatch } from './watch-targets.js';

const DEBOUNCE = 150;
const settle = () => new Promise((r) => setTimeout(r, DEBOUNCE * 4));

describe('ConfigWatcher (chokidar on a real directory)', () => {
  let root: string;
  let bursts: string[][];
  let watcher: ConfigWatcher;
  let own: OwnWrites;

  before(async () => {
    root = await realpath(await mkdtemp(join(tmpdir(), 'nginx-config-watch-')));
    await mkdir(join(root, 'conf.d'));
    await mkdir(join(root, 'logs'));
    await writeFile(join(root, 'nginx.conf'), 'events {}\nhttp { include conf.d/*.conf; }\n');
    await writeFile(join(root, 'conf.d/a.conf'), 'server { listen 1; }\n');
    await writeFile(join(root, 'conf.d/b.conf'), 'server { listen 2; }\n');
    own = new OwnWrites();
    bursts = [];
    watcher = new ConfigWatcher({ debounceMs: DEBOUNCE, ownWrites: own, onChange: (p) => bursts.push(p) });
    await watcher.update(
      await planWatch({
        files: [join(root, 'nginx.conf'), join(root, 'conf.d/a.conf'), join(root, 'conf.d/b.conf')],
        patterns: [join(root, 'conf.d/*.conf')],
        exclude: [join(root, 'conf.d/debug.conf')],
        exists: async () => true,
      }),
    );
  });
  after(async () => {
    await watcher.close();
    await watcher.close();
    await rm(root, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await settle();
    bursts.length = 0;
  });

  it('reports a burst of edits once, after the quiet period', async () => {
    for (let i = 0; i < 5; i++) await appendFile(join(root, 'nginx.conf'), `# edit ${i}\n`);
    await waitFor(() => bursts.length > 0, 'a change burst');
    await settle();
    assert.deepEqual(bursts, [[join(root, 'nginx.conf')]]);
  });

  it('reports an editor-style atomic save (temp file + rename) as one change of the file', async () => {
    const tmp = join(root, 'conf.d/.a.conf.swp');
    await writeFile(tmp, 'server { listen 11; }\n');
    await writeFile(join(root, 'conf.d/4913'), '');
    await unlink(join(root, 'conf.d/4913'));
    await rename(tmp, join(root, 'conf.d/a.conf'));
    await waitFor(() => bursts.length > 0, 'a change burst');
    await settle();
    assert.deepEqual(bursts, [[join(root, 'conf.d/a.conf')]]);
  });

  it('reports a new file matching the include glob, and ignores files it does not match', async () => {
    await writeFile(join(root, 'conf.d/readme.txt'), 'not config');
    await writeFile(join(root, 'conf.d/c.conf~'), 'backup');
    await writeFile(join(root, 'logs/x.conf'), 'not under the glob');
    await writeFile(join(root, 'conf.d/c.conf'), 'server { listen 3; }\n');
    await waitFor(() => bursts.length > 0, 'a change burst');
    await settle();
    assert.deepEqual(bursts, [[join(root, 'conf.d/c.conf')]]);
  });

  it('reports a deleted file', async () => {
    await unlink(join(root, 'conf.d/b.conf'));
    await waitFor(() => bursts.length > 0, 'a change burst');
    await settle();
    assert.deepEqual(bursts, [[join(root, 'conf.d/b.conf')]]);
  });

  it('does not report the agent\u2019s own writes, and does report a foreign write after them', async () => {
    const p = join(root, 'conf.d/a.conf');
    own.record(p, 'server { listen 12; }\n');
    // As the applier writes: a temp file renamed over it. A plain writeFile truncates first, and a
    // busy machine let the watcher read the empty file in between, a state the agent never wrote.
    await writeAtomic(p, 'server { listen 12; }\n', 0o644);
    await settle();
    assert.deepEqual(bursts, []);
    assert.ok(watcher.stats.ignoredOwn >= 1);
    await writeFile(p, 'server { listen 13; }\n');
    await waitFor(() => bursts.length > 0, 'the foreign change');
    assert.deepEqual(bursts, [[p]]);
  });

  it('ignores excluded paths even when the glob matches them', async () => {
    await writeFile(join(root, 'conf.d/debug.conf'), 'written by something else');
    await settle();
    assert.deepEqual(bursts, []);
  });
});

describe('ConfigWatcher with nothing to watch', () => {
  it('an empty plan (a config path that does not exist here) resolves at once and closes', async () => {
    // chokidar never says `ready` for an empty list: waiting for it held the instance lock, and the
    // agent's shutdown waited its full timeout ("nginx-config close did not finish").
    const watcher = new ConfigWatcher({ debounceMs: DEBOUNCE, ownWrites: new OwnWrites(), onChange: () => {} });
    await watcher.update({ dirs: [], depth: 0, files: new Set(), patterns: [], exclude: new Set() });
    await watcher.close();
    assert.deepEqual(watcher.dirs, []);
  });
});
