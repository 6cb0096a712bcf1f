#!/usr/bin/env node
/**
 * The `agent` command line. It loads only what the command it runs uses: this file and
 * cmd/commands/<name>.ts hold the commands' names, options and help (commander and nothing heavy);
 * each action `await import()`s its work (cmd/run/<name>.ts or the core modules it needs) when it runs.
 * `agent version` and `--help` load no agent module; `agent status` loads the config loader and
 * node:http, never the daemon. cmd/lazy-imports.test.ts keeps it so.
 *
 * Adding a command: a cmd/commands/<name>.ts exporting `register(program)`, one line in COMMANDS.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Command } from 'commander';
import { trustDeferredExtraCaCerts } from '../core/extra-ca-certs.js';
import { VERSION } from '../core/version.js';
import { register as config } from './commands/config.js';
import { register as events } from './commands/events.js';
import { register as fleet } from './commands/fleet.js';
import { register as plugins } from './commands/plugins.js';
import { register as start } from './commands/start.js';
import { register as status } from './commands/status.js';
import { register as top } from './commands/top.js';
import { register as version } from './commands/version.js';

/** In the order `agent --help` lists them. */
const COMMANDS: readonly ((program: Command) => void)[] = [start, config, plugins, version, status, top, events, fleet];

export function buildProgram(): Command {
  const program = new Command('agent')
    .description('Monitoring agent for NGINX: host and NGINX metrics, config watching and apply, Wasm plugins.')
    .version(VERSION, '-v, --version', 'print the agent version')
    .showHelpAfterError()
    // Before a command's action, so before anything can open a TLS connection: the certificates
    // bin/agent.js's launcher took out of Node's start-up (core/extra-ca-certs.ts). Not for `version`
    // (nor --help, which runs no action): it opens none, and loading node:tls would cost it 5-15 ms.
    .hook('preAction', (_program, command) => {
      if (command.name() === 'version') return;
      trustDeferredExtraCaCerts(
        () => createRequire(import.meta.url)('node:tls'),
        process.env,
        (file) => readFileSync(file, 'latin1'),
        (message) => process.emitWarning(message),
      );
    });
  for (const register of COMMANDS) register(program);
  return program;
}

// No top-level await: scripts/bundle.mjs bundles this file as CommonJS (dist/agent.cjs), which has none.
// A rejection still ends the command with its error and exit code 1 (Node's unhandled rejection).
void buildProgram().parseAsync(process.argv);
