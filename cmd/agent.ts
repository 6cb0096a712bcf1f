#!/usr/bin/env node
/** The `agent` command line. */
import { Command, Option } from 'commander';
import { stringify } from 'yaml';
import { Agent } from '../core/agent.js';
import { displayConfig, rootSchema } from '../core/config/load.js';
import { createLogger } from '../core/logging.js';
import { VERSION } from '../core/version.js';
import { builtins } from '../plugins/registry.js';
import { askAgent, fail, loadFromFlags, type ConfigFlags } from './commands/common.js';
import { registerConfigParse } from './commands/config-parse.js';
import { registerFleet } from './commands/fleet.js';
import { registerPlugins } from './commands/plugins.js';

export function buildProgram(): Command {
  const program = new Command('agent')
    .description('Monitoring agent for NGINX: host and NGINX metrics, config watching and apply, Wasm plugins.')
    .version(VERSION, '-v, --version', 'print the agent version')
    .showHelpAfterError();

  const configOpt = () =>
    new Option(
      '-c, --config <file>',
      'config file (default: /etc/nginx-agent/nginx-agent.yaml, then config/agent.yaml)',
    );

  program
    .command('start')
    .description('run the agent in the foreground until SIGTERM or SIGINT (SIGHUP reloads the config)')
    .addOption(configOpt())
    .option('--log-level <level>', 'trace, debug, info, warn, error or fatal')
    .option('--api-host <host>', 'address the local API binds to')
    .option('--api-port <port>', 'port of the local API (0 = any free port)')
    .option(
      '--plugins-dir <dir>',
      'directory of Wasm plugins, one folder each (repeatable)',
      (v: string, acc: string[] = []) => [...acc, v],
    )
    .action(async (opts: ConfigFlags) => start(opts));

  const config = program.command('config').description('check or inspect configuration');
  config
    .command('check')
    .description('validate the config (file, NGINX_AGENT_* environment, flags) and print the effective one')
    .addOption(configOpt())
    .action((opts: ConfigFlags) => {
      try {
        const loaded = loadFromFlags(opts);
        for (const w of loaded.warnings) process.stderr.write(`warning: ${w}\n`);
        process.stdout.write(`# config OK: ${loaded.file ?? 'embedded defaults (no config file found)'}\n`);
        if (loaded.env.length) process.stdout.write(`# from the environment: ${loaded.env.join(', ')}\n`);
        process.stdout.write(stringify(displayConfig(rootSchema(builtins), loaded.config)));
      } catch (err) {
        fail(err);
      }
    });
  registerConfigParse(config);
  registerPlugins(program);
  registerFleet(program);

  program
    .command('version')
    .description('print the agent version')
    .action(() => {
      process.stdout.write(`${VERSION}\n`);
    });

  program
    .command('status')
    .description(
      "ask a running agent for its status over the local API (uses the config's api.host, api.port and token)",
    )
    .addOption(configOpt())
    .option('--api-host <host>', 'address of the agent API')
    .option('--api-port <port>', 'port of the agent API')
    .action(async (opts: ConfigFlags) => {
      try {
        process.stdout.write(await askAgent(opts, '/v1/status'));
      } catch (err) {
        fail(err);
      }
    });
  return program;
}

async function start(opts: ConfigFlags): Promise<void> {
  let loaded;
  try {
    loaded = loadFromFlags(opts);
  } catch (err) {
    fail(err);
  }
  const logger = createLogger(loaded.config.log);
  let agent: Agent;
  try {
    agent = new Agent({ loaded, builtins, logger, reload: () => loadFromFlags(opts) });
  } catch (err) {
    logger.fatal({ err }, `agent cannot start: ${(err as Error).message}`);
    process.exit(1);
  }
  // The handlers go in before start: the API answers (and a supervisor may signal) while the
  // plugins still start, and Node's default action for SIGHUP and SIGTERM is to die at once.
  // A signal that arrives during start is acted on once start is over.
  let started = false;
  let reloadPending = false;
  let stopPending = false;
  let signals = 0;
  const stop = () =>
    void agent.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'error during shutdown');
        process.exit(1);
      },
    );
  const shutdown = (sig: string) => {
    signals++;
    if (signals > 1) {
      logger.warn(`${sig} again: exiting at once`);
      process.exit(1);
    }
    logger.info(`${sig} received`);
    if (started) stop();
    else stopPending = true;
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => {
    if (started) void agent.reload();
    else reloadPending = true;
  });
  try {
    await agent.start();
  } catch (err) {
    logger.fatal({ err }, `agent cannot start: ${(err as Error).message}`);
    process.exit(1);
  }
  started = true;
  if (stopPending) stop();
  else if (reloadPending) void agent.reload();
}

await buildProgram().parseAsync(process.argv);
