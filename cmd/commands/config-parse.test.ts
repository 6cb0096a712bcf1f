import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Command } from 'commander';
import type { ConfigPayload } from '../../core/nginx/types.js';
import { needNginx, TestNginx } from '../../core/testing/nginx.js';
import { configParse, registerConfigParse } from './config-parse.js';

function io() {
  const out = { stdout: '', stderr: '' };
  return { out, io: { stdout: (t: string) => (out.stdout += t), stderr: (t: string) => (out.stderr += t) } };
}

describe('agent config parse', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'config-parse-'));
    await writeFile(join(dir, 'good.conf'), 'events {}\nhttp {\n  include extra.conf;\n}\n');
    await writeFile(join(dir, 'extra.conf'), 'server { listen 8080; }\n');
    await writeFile(join(dir, 'bad.conf'), 'events {\nhttp {}\n');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('prints the crossplane JSON of a file, pretty, and exits 0', async () => {
    const { out, io: sink } = io();
    assert.equal(await configParse(join(dir, 'good.conf'), {}, sink), 0);
    assert.match(out.stdout, /^\{\n {2}"status": "ok"/);
    const p = JSON.parse(out.stdout) as ConfigPayload;
    assert.equal(p.status, 'ok');
    assert.deepEqual(
      p.config.map((c) => c.file),
      [join(dir, 'good.conf'), join(dir, 'extra.conf')],
    );
    assert.equal(out.stderr, '');
  });

  it('exits 1 when the payload status is failed, still printing every error with its file and line', async () => {
    const { out, io: sink } = io();
    assert.equal(await configParse(join(dir, 'bad.conf'), {}, sink), 1);
    const p = JSON.parse(out.stdout) as ConfigPayload;
    assert.equal(p.status, 'failed');
    assert.ok(p.errors.length > 0);
    assert.equal(p.errors[0].file, join(dir, 'bad.conf'));
  });

  it('says clearly when no nginx runs', async () => {
    const { out, io: sink } = io();
    assert.equal(await configParse(undefined, { procRoot: dir }, sink), 1);
    assert.match(
      out.stderr,
      /no running nginx found in .*; pass the config file: agent config parse \/etc\/nginx\/nginx\.conf/,
    );
    assert.equal(out.stdout, '');
  });

  it('parses the running nginx\u2019s config when no file is given (chosen by master pid)', {
    skip: needNginx(),
  }, async () => {
    const nginx = await TestNginx.start();
    try {
      const { out, io: sink } = io();
      const code = await configParse(undefined, { instance: String(await nginx.masterPid()) }, sink);
      assert.equal(code, 0, out.stderr);
      const p = JSON.parse(out.stdout) as ConfigPayload;
      assert.equal(p.config[0].file, nginx.confPath);
    } finally {
      await nginx.stop();
    }
  });

  it('registers `parse [file]` under the config command', () => {
    const config = new Command('config');
    const cmd = registerConfigParse(config);
    assert.equal(cmd.name(), 'parse');
    assert.deepEqual(
      cmd.options.map((o) => o.long),
      ['--prefix', '--instance', '--proc-root', '--comments'],
    );
  });
});
