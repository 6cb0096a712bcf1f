/** Writes config/agent.yaml from the config schemas (core sections and every built-in plugin). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderDefaultConfig } from '../core/config/document.js';
import { PACKAGE_ROOT, rootSchema } from '../core/config/load.js';
import { builtins } from '../plugins/registry.js';

const file = join(PACKAGE_ROOT, 'config', 'agent.yaml');
writeFileSync(file, renderDefaultConfig(rootSchema(builtins)));
console.log(`wrote ${file}`);
