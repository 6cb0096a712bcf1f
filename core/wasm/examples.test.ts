/**
 * The shipped example plugins (wasm-plugins/, built by `npm run build:wasm`) in a real Agent with
 * the real nginx-discovery and nginx-config plugins, against a real nginx.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pino from 'pino';
import { plugin as nginxConfig } from '../../plugins/nginx-config/index.js';
import { plugin as nginxDiscovery } from '../../plugins/nginx-discovery/index.js';
import { Agent } from '../agent.js';
import { loadConfig, PACKAGE_ROOT } from '../config/load.js';
import { needNginx, TestNginx, waitFor } from '../testing/nginx.js';
import { needTool } from '../testing/tools.js';
import type { Envelope } from '../topics.js';

/** bus-meter (C) is built only where clang is. */
const noClang = needTool('clang', 'clang lld wasi-libc libclang-rt-14-dev-wasm32');

const DIR = join(PACKAGE_ROOT, 'wasm-plugins');
const built = existsSync(join(DIR, 'config-lint', 'config-lint.wasm'));

describe('shipped Wasm plugins', () => {
  it('config-lint publishes a finding with file and line for server_tokens on in a real nginx config', {
    skip: needNginx() || (built ? false : 'wasm-plugins not built: run npm run build:wasm'),
  }, async () => {
    const nginx = await TestNginx.start({ httpExtra: 'server_tokens on;' });
    const builtins = [nginxDiscovery, nginxConfig];
    const loaded = loadConfig({
      builtins,
      env: {},
      searchPaths: [],
      flags: [
        { path: 'api.enabled', flag: 'test', value: false },
        { path: 'wasm.dirs', flag: '--plugins-dir', value: [DIR] },
        { path: 'wasm.watch', flag: 'test', value: false },
      ],
    });
    const agent = new Agent({ loaded, builtins, logger: pino({ level: 'silent' }) });
    const seen: Envelope[] = [];
    agent.bus.subscribe('test', ['lint.*'], (m) => void seen.push(m));
    try {
      await agent.start();
      await agent.wasm!.ready;
      assert.deepEqual(
        agent
          .wasm!.plugins()
          .map((p) => [p.name, p.status().state])
          .filter(([name]) => !(name === 'bus-meter' && noClang)),
        [
          ...(noClang ? [] : [['bus-meter', 'running']]),
          ['config-lint', 'running'],
          ['error-budget', 'running'],
          ['nginx-down-alert', 'running'],
          ['plugin-state-alert', 'running'],
        ],
      );
      const ours = () => seen.find((e) => (e.data as { conf_path?: string }).conf_path === nginx.confPath);
      await waitFor(() => ours() !== undefined, 'a lint.nginx.config message for the test nginx', 30_000);
      const msg = ours()!;
      assert.equal(msg.topic, 'lint.nginx.config');
      const findings = (msg.data as { findings: { rule: string; file: string; line: number }[] }).findings;
      const tokens = findings.find((f) => f.rule === 'server-tokens-on');
      assert.ok(tokens, `server-tokens-on among ${JSON.stringify(findings.map((f) => f.rule))}`);
      assert.equal(tokens.file, nginx.confPath);
      assert.ok(tokens.line > 0);
    } finally {
      await agent.stop();
      await nginx.stop();
    }
  });
});
