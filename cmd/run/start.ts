/** `agent start`: the daemon in the foreground (loaded only by this command). */
import { Agent } from '../../core/agent.js';
import { createLogger } from '../../core/logging.js';
import { watchNpmParent } from '../../core/process/npm-parent.js';
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
    logger.fatal({ err }, `agent cannot start: ${(err as Error).message}`);
    process.exit(1);
  }
  agent.store.addCollector(() => uncaughtMetrics(guard.count, agent.info.startedAt));
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
    logger.info(sig.startsWith('SIG') ? `${sig} received` : sig);
    if (started) stop();
    else stopPending = true;
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // npx/npm start do not forward SIGTERM: when the npm that started the agent is gone, stop as on SIGTERM
  // (unless a signal already did: Ctrl-C reaches npm and the agent alike).
  watchNpmParent({
    onGone: () => signals === 0 && shutdown('the npm process that started the agent exited: stopping'),
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
  if (stopPending) stop();
  else if (reloadPending) void agent.reload();
}
