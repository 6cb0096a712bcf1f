/** `agent start`: the daemon in the foreground (loaded only by this command). */
import { Agent } from '../../core/agent.js';
import { createLogger } from '../../core/logging.js';
import { watchNpmParent } from '../../core/process/npm-parent.js';
import { Shutdown } from '../../core/process/shutdown.js';
import { guardProcess } from '../../core/process-guard.js';
import { uncaughtMetrics } from '../../core/self-metrics.js';
import { builtins } from '../../plugins/registry.js';
import { fail, type ConfigFlags } from '../commands/common.js';
import { loadFromFlags } from './flags.js';

export async function start(opts: ConfigFlags): Promise<void> {
  let loaded;
  try {
    loaded = loadFromFlags(opts);
  } catch (err) {
    fail(err);
  }
  const logger = createLogger(loaded.config.log);
  // From here on no exception ends the daemon (see core/process-guard.ts for why).
  const guard = guardProcess(logger);
  let agent: Agent;
  try {
    agent = new Agent({ loaded, builtins, logger, reload: () => loadFromFlags(opts) });
  } catch (err) {
    if ((err as Error).name === 'ConfigError') fail(err);
    logger.fatal({ err }, `agent cannot start: ${(err as Error).message}`);
    process.exit(1);
  }
  agent.store.addCollector(() => uncaughtMetrics(guard.count, agent.info.startedAt));
  // The handlers go in before start: the API answers (and a supervisor may signal) while the
  // plugins still start, and Node's default action for SIGHUP and SIGTERM is to die at once.
  // A signal that arrives during start is acted on once start is over (core/process/shutdown.ts).
  let started = false;
  let reloadPending = false;
  const shutdown = new Shutdown({
    stop: () => agent.stop(),
    stillRunning: () => agent.stillRunning(),
    timeoutMs: () => agent.config.agent.shutdown_timeout,
    logger,
    exit: (code) => process.exit(code),
  });
  process.on('SIGTERM', () => shutdown.signal('SIGTERM'));
  process.on('SIGINT', () => shutdown.signal('SIGINT'));
  // npx/npm start do not forward SIGTERM: when the npm that started the agent is gone, stop as on SIGTERM
  // (unless a signal already did: Ctrl-C reaches npm and the agent alike).
  watchNpmParent({
    onGone: () => !shutdown.requested && shutdown.signal('the npm process that started the agent exited: stopping'),
  });
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
  if (!shutdown.ready() && reloadPending) void agent.reload();
}
