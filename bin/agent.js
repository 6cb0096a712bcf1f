#!/usr/bin/env node
// Entry point of `npx agent`: runs the compiled CLI (built by `npm ci`/`npm run build`).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const compiled = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cmd', 'agent.js');
if (!existsSync(compiled)) {
  process.stderr.write(
    'agent: the compiled CLI is missing (dist/cmd/agent.js); run "npm run build" in the agent directory\n',
  );
  process.exit(1);
}
await import(compiled);
