import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { builtins } from '../../plugins/registry.js';
import { renderDefaultConfig } from './document.js';
import { CHECKOUT_CONFIG_PATH, loadConfig, rootSchema } from './load.js';

test('config/agent.yaml documents every key with its default (regenerate with npm run gen:config)', () => {
  const expected = renderDefaultConfig(rootSchema(builtins));
  assert.equal(
    readFileSync(CHECKOUT_CONFIG_PATH, 'utf8'),
    expected,
    'config/agent.yaml is out of date: run npm run gen:config',
  );
});

test('config/agent.yaml loads and equals the embedded defaults', () => {
  const fromFile = loadConfig({ builtins, file: CHECKOUT_CONFIG_PATH, env: {} });
  const defaults = loadConfig({ builtins, env: {}, searchPaths: [] });
  assert.deepEqual(fromFile.config, defaults.config);
});
