import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { configVersion } from './version.js';

describe('configVersion', () => {
  it('does not depend on the order files are given in; strings and buffers hash the same', () => {
    const a = configVersion([
      { path: '/b', content: 'two' },
      { path: '/a', content: Buffer.from('one') },
    ]);
    const b = configVersion([
      { path: '/a', content: 'one' },
      { path: '/b', content: 'two' },
    ]);
    assert.equal(a.version, b.version);
    assert.deepEqual(
      a.files.map((f) => f.path),
      ['/a', '/b'],
    );
    assert.equal(a.files[0].sha256, createHash('sha256').update('one').digest('hex'));
    assert.equal(a.files[1].size, 3);
  });

  it('is sha256 over path NUL content in sorted order', () => {
    const want = createHash('sha256').update('/a\0one/b\0two').digest('hex');
    assert.equal(
      configVersion([
        { path: '/b', content: 'two' },
        { path: '/a', content: 'one' },
      ]).version,
      want,
    );
  });

  it('changes when a path or a byte changes (path/content boundary included)', () => {
    const base = configVersion([{ path: '/a', content: 'x' }]).version;
    assert.notEqual(configVersion([{ path: '/a', content: 'y' }]).version, base);
    assert.notEqual(configVersion([{ path: '/b', content: 'x' }]).version, base);
    assert.notEqual(configVersion([{ path: '/ax', content: '' }]).version, base);
  });
});
