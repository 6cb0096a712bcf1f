/**
 * nginx-down-alert.wasm (hand-written WebAssembly text, no PDK) in-process with the Extism SDK:
 * health events recorded from the nginx-discovery plugin watching a real nginx whose master was
 * stopped (SIGSTOP) and resumed, batches of them, awkward reasons, a large input, and the live path.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import type { NginxInstanceEvent } from '../../core/nginx/types.js';
import { needNginx, TestNginx } from '../../core/testing/nginx.js';
import { startPlugin } from '../../core/testing/plugin-harness.js';
import { plugin as discovery } from '../../plugins/nginx-discovery/index.js';
import { loadTestPlugin, readManifest, type TestPlugin } from '../_lib/testing.js';

const dir = dirname(fileURLToPath(import.meta.url));
type Health = { topic: string; time: number; data: NginxInstanceEvent };
const fixture = (name: string) => JSON.parse(readFileSync(join(dir, 'testdata', name), 'utf8')) as Health;
const unhealthy = fixture('health-unhealthy.json');
const recovered = fixture('health-recovered.json');

/** The recorded UNHEALTHY event with another id, health or reason. */
function variant(id: string, health: 'HEALTHY' | 'DEGRADED' | 'UNHEALTHY', reason?: string): Health {
  const e = structuredClone(unhealthy);
  e.data.instance.id = id;
  e.data.instance.health = health;
  if (reason === undefined) delete e.data.instance.healthReason;
  else e.data.instance.healthReason = reason;
  return e;
}

describe('nginx-down-alert', () => {
  const open: TestPlugin[] = [];
  async function load(opts: { refuse?: boolean } = {}): Promise<TestPlugin> {
    const p = await loadTestPlugin(dir, {}, opts);
    open.push(p);
    return p;
  }
  after(async () => {
    for (const p of open) await p.close();
  });

  it('has a manifest with the ABI v1 keys, no init, and describes itself', async () => {
    const m = readManifest(dir);
    assert.equal(m.name, 'nginx-down-alert');
    assert.equal(m.wasm, 'nginx-down-alert.wasm');
    assert.deepEqual(m.subscriptions, ['nginx.instance.health']);
    assert.deepEqual(m.publishes, ['alert.nginx.down']);
    const p = await load();
    assert.equal(await p.init(), null, 'init is optional');
    assert.deepEqual(await p.describe(), {
      version: '1.0.0',
      description:
        'Publishes alert.nginx.down when an nginx instance turns UNHEALTHY. Hand-written WebAssembly text: the Extism ABI without a PDK.',
    });
  });

  it('alerts on a recorded UNHEALTHY event with the instance id and reason, through the host publish', async () => {
    const p = await load();
    const out = await p.process([unhealthy]);
    assert.deepEqual(out, [
      {
        topic: 'alert.nginx.down',
        via: 'host',
        data: {
          instance_id: unhealthy.data.instance.id,
          health: 'UNHEALTHY',
          reason: unhealthy.data.instance.healthReason,
          message: 'an nginx instance the agent watches is UNHEALTHY',
        },
      },
    ]);
    assert.match(String(out[0].data.reason), /master process \d+ is stopped/);
  });

  it('stays quiet on the recovery (previousHealth UNHEALTHY), on HEALTHY and on DEGRADED', async () => {
    const p = await load();
    assert.equal(recovered.data.previousHealth, 'UNHEALTHY');
    assert.deepEqual(await p.process([recovered]), []);
    assert.deepEqual(
      await p.process([
        variant('a', 'HEALTHY'),
        variant('b', 'DEGRADED', '1 of 2 worker processes running (worker_processes 2)'),
      ]),
      [],
    );
  });

  it('alerts once per UNHEALTHY message of a batch, in order', async () => {
    const p = await load();
    const out = await p.process([
      variant('a', 'DEGRADED', 'x'),
      variant('b', 'UNHEALTHY', 'one'),
      recovered,
      variant('c', 'UNHEALTHY'),
    ]);
    assert.deepEqual(
      out.map((o) => [o.data.instance_id, o.data.reason]),
      [
        ['b', 'one'],
        ['c', ''],
      ],
    );
  });

  it('keeps escapes in the reason valid, and cuts a long reason without breaking the JSON', async () => {
    const p = await load();
    const odd = 'said "no" \\ tab\there, é, \u2028 and \u0001';
    const long = '\\"'.repeat(700); // 2800 bytes of escapes in JSON (\\ and \"): cut near 1024 bytes, never inside one
    const out = await p.process([variant('odd', 'UNHEALTHY', odd), variant('long', 'UNHEALTHY', long)]);
    assert.equal(out[0].data.reason, odd);
    const cut = String(out[1].data.reason);
    assert.ok(
      long.startsWith(cut) && cut.length >= 500 && cut.length <= 512,
      `a prefix of about 1 KB of JSON, got ${cut.length} chars`,
    );
  });

  it('reads a large batch (memory grows to fit) and finds the one UNHEALTHY at its end', async () => {
    const p = await load();
    const batch = Array.from({ length: 2000 }, (_, i) => variant(`h${i}`, 'HEALTHY'));
    batch.push(variant('last', 'UNHEALTHY', 'gone'));
    assert.ok(JSON.stringify(batch).length > 4_000_000);
    const out = await p.process(batch);
    assert.deepEqual(
      out.map((o) => o.data.instance_id),
      ['last'],
    );
    assert.deepEqual(await p.process([recovered]), [], 'and a small call after it still works');
  });

  it('publishes every alert across more than 32768 Extism memory blocks (the host resets between calls)', async () => {
    // Each publish allocates a block; the JS SDK's block offsets turn negative past 32768 of them
    // unless the plugin is reset between calls (see _lib/testing.ts). Reset leaves the module's
    // own memory alone, so nothing is lost.
    const p = await load();
    const batch = Array.from({ length: 50 }, (_, i) => variant(`i${i}`, 'UNHEALTHY', 'r'));
    for (let call = 0; call < 700; call++) await p.process(batch);
    assert.equal(p.published.length, 35_000);
    assert.equal(p.published.at(-1)!.data.instance_id, 'i49');
  });

  it('carries on when the host refuses the publish', async () => {
    const p = await load({ refuse: true });
    assert.deepEqual(await p.process([unhealthy]), []);
    assert.deepEqual(await p.process([unhealthy]), []);
  });

  it('alerts when nginx-discovery sees a real master stopped, not when it resumes', { skip: needNginx() }, async () => {
    const nginx = await TestNginx.start();
    const pid = await nginx.masterPid();
    const h = await startPlugin(discovery, { interval: '100ms' });
    const mine = () =>
      h.published.filter(
        (e) => e.topic === 'nginx.instance.health' && (e.data as NginxInstanceEvent).instance.pid === pid,
      );
    try {
      await h.waitFor(
        () =>
          h.published.some(
            (e) => e.topic === 'nginx.instance.added' && (e.data as NginxInstanceEvent).instance.pid === pid,
          ),
        'the instance found',
      );
      process.kill(pid, 'SIGSTOP');
      await h.waitFor(() => mine().length >= 1, 'UNHEALTHY');
      process.kill(pid, 'SIGCONT');
      await h.waitFor(() => mine().length >= 2, 'HEALTHY again');
      const p = await load();
      const out = await p.process(mine().map((e) => ({ topic: e.topic, time: e.time, data: e.data })));
      assert.equal(out.length, 1, JSON.stringify(out));
      assert.equal(out[0].data.instance_id, (mine()[0].data as NginxInstanceEvent).instance.id);
      assert.match(String(out[0].data.reason), new RegExp(`master process ${pid} is stopped`));
    } finally {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        /* gone */
      }
      await h.close();
      await nginx.stop();
    }
  });
});
