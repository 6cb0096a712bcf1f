/**
 * error-budget.wasm in-process with the Extism SDK, fed the nginx-logs batches it sees in the
 * agent: a recorded batch as the template for exact sequences (burst, quiet, recovery, counter
 * reset, slow requests), and a live run against a real nginx followed by the nginx-logs plugin.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { MetricBatch } from '../../core/metrics/model.js';
import { needNginx, TestNginx } from '../../core/testing/nginx.js';
import { startPlugin } from '../../core/testing/plugin-harness.js';
import { plugin as nginxLogs } from '../../plugins/nginx-logs/index.js';
import { loadTestPlugin, readManifest, type TestPlugin } from '../_lib/testing.js';

const dir = dirname(fileURLToPath(import.meta.url));
const template = JSON.parse(readFileSync(join(dir, 'testdata', 'nginx-logs-batch.json'), 'utf8')) as {
  topic: 'metrics';
  data: MetricBatch;
};
const errorLogBatch = JSON.parse(readFileSync(join(dir, 'testdata', 'nginx-logs-error-batch.json'), 'utf8')) as {
  topic: 'metrics';
  data: MetricBatch;
};
const T0 = 1_800_000_000_000;
const LONG_AGO = T0 - 86_400_000;

interface Counts {
  ok: number;
  err5xx: number;
  /** Request-time bucket counts for bounds [0.005, 0.05, 0.5, 5] and +Inf; default: all fast. */
  buckets?: number[];
  start?: number;
  source?: string;
}

/** The recorded batch with cumulative values replaced: `ok` 2xx and `err5xx` 5xx responses. */
function batch(time: number, c: Counts): { topic: string; time: number; data: MetricBatch } {
  const data = structuredClone(template.data) as { -readonly [K in keyof MetricBatch]: MetricBatch[K] } & {
    metrics: any[];
  };
  data.time = time;
  if (c.source) data.source = c.source;
  const start = c.start ?? LONG_AGO;
  for (const m of data.metrics) {
    if (m.name === 'nginx.http.responses') {
      m.points = [
        { attributes: { status_range: '2xx', 'http.request.method': 'GET' }, value: c.ok, startTime: start },
        { attributes: { status_range: '5xx', 'http.request.method': 'GET' }, value: c.err5xx, startTime: start },
      ];
    }
    if (m.name === 'nginx.http.request.time') {
      const buckets = c.buckets ?? [c.ok + c.err5xx, 0, 0, 0, 0];
      const count = buckets.reduce((a, b) => a + b, 0);
      m.points = [{ attributes: {}, count, sum: 0, bounds: [0.005, 0.05, 0.5, 5], buckets, startTime: start }];
    }
  }
  return { topic: 'metrics', time, data: data as MetricBatch };
}

const alerts = (p: TestPlugin, rule?: string) =>
  p.published.filter((e) => e.topic === 'alert.nginx.error_budget' && (!rule || e.data.rule === rule));

describe('error-budget', () => {
  const open: TestPlugin[] = [];
  async function load(config: Record<string, string> = {}): Promise<TestPlugin> {
    const p = await loadTestPlugin(dir, config);
    open.push(p);
    assert.equal(await p.init(), 0);
    return p;
  }
  after(async () => {
    for (const p of open) await p.close();
  });

  it('has a manifest with the ABI v1 keys, and describes itself', async () => {
    const m = readManifest(dir);
    assert.equal(m.name, 'error-budget');
    assert.equal(m.wasm, 'error-budget.wasm');
    assert.deepEqual(m.subscriptions, ['metrics']);
    assert.deepEqual(m.publishes, ['alert.nginx.error_budget']);
    assert.deepEqual(Object.keys(m.config ?? {}).sort(), ['max_5xx_ratio', 'max_p95_ms', 'min_requests', 'window_s']);
    for (const v of Object.values(m.config ?? {})) assert.equal(typeof v, 'string', 'Extism config values are strings');
    assert.ok(Number.isInteger(m.timeout_ms) && Number.isInteger(m.memory_mb));
    const d = await (await load()).describe();
    assert.match(d!.version, /^\d+\.\d+\.\d+$/);
    assert.match(d!.description, /5xx/);
  });

  it('init refuses a bad config value and names the key', async () => {
    const p = await loadTestPlugin(dir, { max_5xx_ratio: 'lots' });
    open.push(p);
    await assert.rejects(p.plugin.call('init'), /max_5xx_ratio must be a number from 0 to 1, got "lots"/);
    assert.ok(
      p.logs.some((l) => l.startsWith('error: ') && l.includes('max_5xx_ratio')),
      `logged through Extism: ${p.logs}`,
    );
  });

  it('fires once on a 5xx burst, not on every batch after it, with the instance and log', async () => {
    const p = await load();
    assert.deepEqual(
      await p.process([batch(T0, { ok: 1000, err5xx: 10 })]),
      [],
      'first sight of an old counter is a baseline',
    );
    assert.deepEqual(await p.process([batch(T0 + 10_000, { ok: 1100, err5xx: 10 })]), []);
    const fired = await p.process([batch(T0 + 20_000, { ok: 1150, err5xx: 40 })]);
    assert.equal(fired.length, 1, JSON.stringify(fired));
    assert.equal(fired[0].via, 'output');
    assert.deepEqual(
      { ...fired[0].data, message: undefined },
      {
        status: 'firing',
        rule: '5xx_ratio',
        instance_id: 'inst-1',
        log: '/var/log/nginx/access.log',
        value: 30 / 180,
        threshold: 0.05,
        requests: 180,
        errors_5xx: 30,
        window_s: 300,
        message: undefined,
      },
    );
    assert.match(String(fired[0].data.message), /5xx ratio 16.7% \(30 of 180 requests\) is above 5%/);
    assert.deepEqual(
      await p.process([batch(T0 + 30_000, { ok: 1160, err5xx: 60 })]),
      [],
      'still firing: no second alert',
    );
  });

  it('stays quiet under min_requests, whatever the ratio', async () => {
    const p = await load();
    await p.process([batch(T0, { ok: 0, err5xx: 0 })]);
    for (let i = 1; i <= 19; i++) assert.deepEqual(await p.process([batch(T0 + i * 1000, { ok: 0, err5xx: i })]), []);
    const fired = await p.process([batch(T0 + 20_000, { ok: 0, err5xx: 20 })]);
    assert.equal(fired.length, 1, 'the 20th request reaches min_requests');
  });

  it('recovers once the window has slid past the burst, and says so once', async () => {
    const p = await load({ window_s: '60' });
    await p.process([batch(T0, { ok: 100, err5xx: 0 })]);
    await p.process([batch(T0 + 10_000, { ok: 110, err5xx: 30 })]);
    assert.equal(alerts(p).length, 1);
    // Healthy traffic; the burst is still inside the 60 s window until T0 + 70 s.
    assert.deepEqual(await p.process([batch(T0 + 40_000, { ok: 400, err5xx: 30 })]), [], '30 of 320 is still above 5%');
    const resolved = await p.process([batch(T0 + 71_000, { ok: 700, err5xx: 30 })]);
    assert.equal(resolved.length, 1, JSON.stringify(resolved));
    assert.equal(resolved[0].data.status, 'resolved');
    assert.equal(resolved[0].data.rule, '5xx_ratio');
    assert.equal(resolved[0].data.errors_5xx, 0);
    assert.deepEqual(await p.process([batch(T0 + 80_000, { ok: 800, err5xx: 30 })]), []);
  });

  it('resolves a log that went quiet, on the clock of other metrics batches (nginx-logs sends nothing without new lines)', async () => {
    const p = await load({ window_s: '60' });
    await p.process([batch(T0, { ok: 0, err5xx: 0 })]);
    await p.process([batch(T0 + 10_000, { ok: 0, err5xx: 30 })]);
    assert.equal(alerts(p).length, 1);
    const host = (t: number) => ({ topic: 'metrics', time: t, data: { source: 'host-metrics', time: t, metrics: [] } });
    assert.deepEqual(await p.process([host(T0 + 60_000)]), [], 'the burst is still in the window');
    const resolved = await p.process([host(T0 + 71_000)]);
    assert.equal(resolved.length, 1);
    assert.deepEqual(
      [resolved[0].data.status, resolved[0].data.rule, resolved[0].data.message],
      ['resolved', '5xx_ratio', 'no requests in the last 60 s'],
    );
    assert.deepEqual(await p.process([host(T0 + 80_000)]), [], 'once');
  });

  it('takes a counter reset (new startTime, or values going down) as a restart from zero', async () => {
    const p = await load();
    await p.process([batch(T0, { ok: 5000, err5xx: 100 })]);
    await p.process([batch(T0 + 10_000, { ok: 5100, err5xx: 100 })]);
    // nginx-logs restarted: new start time, small values. Deltas would be negative if taken naively.
    const fired = await p.process([batch(T0 + 20_000, { ok: 10, err5xx: 40, start: T0 + 15_000 })]);
    assert.equal(fired.length, 1);
    assert.equal(fired[0].data.requests, 150, '100 before the reset plus 50 after it');
    assert.equal(fired[0].data.errors_5xx, 40);
    // A drop without a new start time (a source that forgot its start) is a reset too.
    const p2 = await load();
    await p2.process([batch(T0, { ok: 5000, err5xx: 0 })]);
    const fired2 = await p2.process([batch(T0 + 10_000, { ok: 20, err5xx: 20 })]);
    assert.equal(fired2.length, 1);
    assert.equal(fired2[0].data.requests, 40);
  });

  it('fires and recovers on p95 request time from the histogram bucket deltas', async () => {
    const p = await load({ window_s: '60', max_p95_ms: '400' });
    await p.process([batch(T0, { ok: 100, err5xx: 0, buckets: [100, 0, 0, 0, 0] })]);
    // 100 new requests: 80 under 5 ms, 20 between 0.5 s and 5 s: p95 is 75% into that bucket, 3.875 s.
    const fired = await p.process([batch(T0 + 10_000, { ok: 200, err5xx: 0, buckets: [180, 0, 0, 20, 0] })]);
    assert.equal(fired.length, 1, JSON.stringify(fired));
    assert.equal(fired[0].data.rule, 'p95');
    assert.equal(fired[0].data.status, 'firing');
    assert.equal(fired[0].data.value, 3875);
    assert.equal(fired[0].data.threshold, 400);
    // 1000 fast requests later, past the window: p95 inside the first bucket.
    const resolved = await p.process([batch(T0 + 75_000, { ok: 1200, err5xx: 0, buckets: [1180, 0, 0, 20, 0] })]);
    assert.equal(resolved.length, 1);
    assert.deepEqual([resolved[0].data.rule, resolved[0].data.status], ['p95', 'resolved']);
    assert.ok((resolved[0].data.value as number) < 5);
  });

  it("publishes non-ASCII log paths intact (the PDK's outputString would fail the call on them)", async () => {
    const p = await load();
    const path = '/var/log/nginx/café-ü-日本.log';
    const at = (t: number, ok: number, err5xx: number) => {
      const b = batch(t, { ok, err5xx, source: `nginx-logs:inst-1:${path}` });
      (b.data.resource as Record<string, string>)['log.file.path'] = path;
      return b;
    };
    await p.process([at(T0, 0, 0)]);
    const [a] = await p.process([at(T0 + 1000, 10, 30)]);
    assert.equal(a.data.log, path);
  });

  it('keeps logs apart, ignores error-log and other batches, and resolves a log that goes away', async () => {
    const p = await load();
    const other = 'nginx-logs:inst-2:/var/log/nginx/other.log';
    await p.process([batch(T0, { ok: 0, err5xx: 0 }), batch(T0, { ok: 0, err5xx: 0, source: other })]);
    const hostBatch = {
      topic: 'metrics',
      time: T0,
      data: {
        source: 'host-metrics',
        time: T0,
        metrics: [
          {
            name: 'nginx.http.responses',
            type: 'counter',
            unit: '1',
            description: '',
            points: [{ attributes: { status_range: '5xx' }, value: 1e6 }],
          },
        ],
      },
    };
    const fired = await p.process([
      errorLogBatch,
      hostBatch,
      batch(T0 + 1000, { ok: 100, err5xx: 0 }),
      batch(T0 + 1000, { ok: 0, err5xx: 50, source: other }),
    ]);
    assert.equal(fired.length, 1, JSON.stringify(fired));
    assert.equal(fired[0].data.errors_5xx, 50);
    const gone = await p.process([
      { topic: 'metrics', time: T0 + 2000, data: { source: other, time: T0 + 2000, metrics: [], final: true } },
    ]);
    assert.equal(gone.length, 1);
    assert.equal(gone[0].data.status, 'resolved');
    assert.match(String(gone[0].data.message), /no longer followed/);
  });

  it('refuses input that is not JSON with an error, and keeps working after it', async () => {
    const p = await load();
    await assert.rejects(p.plugin.call('process', '{"messages":[{'), /input is not JSON/);
    assert.deepEqual(await p.process([batch(T0, { ok: 1, err5xx: 0 })]), []);
  });

  it('never traps on a truncated batch or on nesting 10,000 deep: each is an error naming the byte', async () => {
    const p = await load();
    const text = JSON.stringify({ messages: [batch(T0, { ok: 1, err5xx: 0 })] });
    for (let cut = 1; cut < text.length; cut += 7) {
      await assert.rejects(
        p.plugin.call('process', text.slice(0, cut)),
        /^Error: Plugin-originated error: error-budget: input is not JSON: .* at byte \d+$/,
        `cut at ${cut}`,
      );
    }
    await assert.rejects(p.plugin.call('process', `{"messages":${'['.repeat(10_000)}`), /nested too deep at byte/);
    assert.deepEqual(await p.process([batch(T0 + 1000, { ok: 2, err5xx: 0 })]), [], 'still answers');
  });

  describe('live: a real nginx, its access log followed by nginx-logs, batches into the plugin', {
    skip: needNginx(),
  }, () => {
    let nginx: TestNginx;
    before(async () => {
      nginx = await TestNginx.start();
    });
    after(async () => {
      await nginx?.stop();
    });

    it('alerts with the instance id when /s/500 is hammered, after a healthy start', async () => {
      const h = await startPlugin(nginxLogs, {
        poll_interval: '100ms',
        logs: [
          { path: nginx.accessLog, type: 'access', format: (await import('../../core/testing/nginx.js')).TIMED_FORMAT },
        ],
      });
      try {
        const p = await load();
        const fed = new Set<object>();
        /**
         * Feeds the newest batch of each source not fed yet. Counters are cumulative, so the batches
         * skipped in between lose nothing; feeding them would let a batch holding only some of the
         * 500s (nginx-logs may split them across polls) cross 5% and fire with fewer than ten.
         */
        const feed = async () => {
          const fresh = h.published.filter((e) => e.topic === 'metrics' && !fed.has(e));
          fresh.forEach((e) => fed.add(e));
          const newest = new Map(fresh.map((e) => [(e.data as MetricBatch).source, e]));
          if (newest.size)
            await p.process([...newest.values()].map((e) => ({ topic: e.topic, time: e.time, data: e.data })));
        };
        /** The access log's cumulative count for a status range, from its latest batch. */
        const logged = (range: string) => {
          const last = h.published
            .filter((e) => e.topic === 'metrics' && (e.data as MetricBatch).source.endsWith(nginx.accessLog))
            .at(-1);
          const m = (last?.data as MetricBatch | undefined)?.metrics.find((x) => x.name === 'nginx.http.responses');
          return ((m?.points ?? []) as { attributes: Record<string, string>; value: number }[])
            .filter((pt) => pt.attributes.status_range === range)
            .reduce((a, pt) => a + pt.value, 0);
        };
        await nginx.get('/ok', 40);
        await h.waitFor(() => logged('2xx') === 40, 'the 40 2xx in a batch');
        await feed();
        assert.equal(alerts(p).length, 0, '40 good requests alert nothing');
        await nginx.get('/s/500', 10);
        // Fed once all ten are counted, and only the newest batch (see feed).
        await h.waitFor(() => logged('5xx') === 10, 'the ten 5xx in a batch');
        await feed();
        const [a] = alerts(p);
        assert.ok(a, 'an alert');
        assert.equal(alerts(p).length, 1);
        assert.equal(a.data.status, 'firing');
        assert.equal(a.data.log, nginx.accessLog);
        assert.equal(a.data.errors_5xx, 10);
        assert.equal(a.data.requests, 50);
      } finally {
        await h.close();
      }
    });
  });
});
