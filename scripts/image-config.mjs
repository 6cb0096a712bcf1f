#!/usr/bin/env node
// Writes the config file the container image ships: config/agent.yaml (every key with its default)
// with the container's settings written into it, so a config file mounted over it is obeyed as
// written (settings baked into ENV would override the mounted file) and NGINX_AGENT_* variables a
// user sets still win. Usage: node scripts/image-config.mjs config/agent.yaml OUT
import { readFileSync, writeFileSync } from 'node:fs';

const IMAGE_SETTINGS = [
  ['log', 'format', 'json'],
  ['api', 'host', '0.0.0.0'],
  ['api', 'port', '8039'],
  ['wasm', 'dirs', '[/opt/nginx-agent/wasm-plugins, /var/lib/nginx-agent/plugins]'],
];

const [from, to] = process.argv.slice(2);
if (!from || !to) {
  console.error('usage: node scripts/image-config.mjs config/agent.yaml OUT');
  process.exit(2);
}
const lines = readFileSync(from, 'utf8').split('\n');
for (const [section, key, value] of IMAGE_SETTINGS) {
  const start = lines.indexOf(`${section}:`);
  let at = -1;
  for (let i = start + 1; start >= 0 && i < lines.length && !/^\S/.test(lines[i].replace(/^#.*/, '')); i++) {
    if (lines[i].startsWith(`  ${key}:`)) {
      at = i;
      break;
    }
  }
  if (at < 0) {
    console.error(`${from}: no "${section}: ${key}:" line to set for the image`);
    process.exit(1);
  }
  lines[at] = `  ${key}: ${value}`;
}
writeFileSync(
  to,
  `# The container image's config: the defaults of config/agent.yaml with the image's settings\n# (${IMAGE_SETTINGS.map(([s, k]) => `${s}.${k}`).join(', ')}). Mount your own file here to replace it.\n${lines.join('\n')}`,
);
