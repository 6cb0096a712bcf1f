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
      assert.deepEqual(await starting.json(), {
        status: 'starting',
        plugins: { 'slow-collector': { state: 'starting' } },
      });
      slow.collect();
      const running = await fetch(`${url}/health`);
      assert.equal(running.status, 200);
      assert.equal(((await running.json()) as { status: string }).status, 'running');
    } finally {
      await agent.stop();
    }
  });
});
