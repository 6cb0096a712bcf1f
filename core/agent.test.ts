import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import pino from 'pino';
import { Agent } from './agent.js';
import { loadConfig } from './config/load.js';
import { bool, object } from './config/schema.js';
import { defineBuiltin } from './plugin/builtin.js';

/** A plugin whose first collection finishes when the test says so. */
function slowCollector() {
  let collected = false;
  const builtin = defineBuiltin({
    name: 'slow-collector',
    description: 'test plugin',
    schema: object({ enabled: bool({ default: true }) }),
    create: () => ({
      name: 'slow-collector',
      subscriptions: () => [],
      init() {},
      close() {},
      status: () => ({ state: collected ? ('running' as const) : ('starting' as const) }),
    }),
  });
  return { builtin, collect: () => (collected = true) };
}

describe('agent start', () => {
  test('/health and /metrics answer at once; /health says starting (503) until every plugin has collected once', async () => {
    const slow = slowCollector();
    const loaded = loadConfig({
      builtins: [slow.builtin],
      flags: [
        { path: 'api.port', flag: '--api-port', value: 0 },
        { path: 'wasm.enabled', flag: 'test', value: false },
      ],
      env: {},
      searchPaths: [],
    });
    const agent = new Agent({ loaded, builtins: [slow.builtin], logger: pino({ level: 'silent' }) });
    await agent.start();
    try {
      const url = `http://127.0.0.1:${agent.apiAddress!.port}`;
      assert.equal((await fetch(`${url}/metrics`)).status, 200, 'metrics served with what is there');
      const starting = await fetch(`${url}/health`);
      assert.equal(starting.status, 503);
      const body = (await starting.json()) as { status: string; plugins: unknown };
      assert.equal(body.status, 'starting');
      assert.deepEqual(body.plugins, { 'slow-collector': { state: 'starting' } });
      slow.collect();
      const running = await fetch(`${url}/health`);
      assert.equal(running.status, 200);
      assert.equal(((await running.json()) as { status: string }).status, 'running');
    } finally {
      await agent.stop();
    }
  });
});

describe('agent stop', () => {
  test('a plugin whose close hangs is cut off at agent.shutdown_timeout: stop resolves false and names it', async () => {
    const stuck = defineBuiltin({
      name: 'stuck-close',
      description: 'test plugin',
      schema: object({ enabled: bool({ default: true }) }),
      create: () => ({
        name: 'stuck-close',
        subscriptions: () => [],
        init() {},
        close: () => new Promise<void>(() => {}),
      }),
    });
    const loaded = loadConfig({
      builtins: [stuck],
      flags: [
        { path: 'api.port', flag: '--api-port', value: 0 },
        { path: 'wasm.enabled', flag: 'test', value: false },
        { path: 'agent.shutdown_timeout', flag: 'test', value: '300ms' },
      ],
      env: {},
      searchPaths: [],
    });
    const lines: { msg: string; still_running?: string[] }[] = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
    const agent = new Agent({ loaded, builtins: [stuck], logger });
    await agent.start();
    assert.equal(await agent.stop(), false);
    assert.ok(
      lines.some((l) => /^plugin stuck-close did not close cleanly: close did not finish within \d+ ms/.test(l.msg)),
      JSON.stringify(lines.map((l) => l.msg)),
    );
    const last = lines.at(-1)!;
    assert.equal(last.msg, 'agent stopped; some work was cut off at the shutdown deadline');
    assert.deepEqual(last.still_running, ['plugin stuck-close: close() has not returned']);
  });
});
