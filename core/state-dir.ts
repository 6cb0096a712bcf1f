/**
 * The agent's state directory (`agent.state_dir`): where plugins keep what must survive a restart
 * of the agent (the nginx-logs positions, say). Resolved once at start.
 */
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The system-wide default; the systemd unit (StateDirectory=nginx-agent) and the image create it. */
export const SYSTEM_STATE_DIR = '/var/lib/nginx-agent';

export interface ResolvedStateDir {
  /** Absent when no directory can be written: nothing is kept across restarts. */
  dir?: string;
  /** Why the configured or system directory was not used, for one warn line at start. */
  warning?: string;
}

/**
 * `configured` ("" = auto): auto is /var/lib/nginx-agent when it is (or can be made) writable, else
 * $XDG_STATE_HOME/nginx-agent, else ~/.local/state/nginx-agent. A configured directory is created
 * when missing; when it cannot be written the per-user one is used, with a warning.
 */
export function resolveStateDir(configured: string, env: NodeJS.ProcessEnv = process.env): ResolvedStateDir {
  const home = env.HOME || homedir();
  const perUser = env.XDG_STATE_HOME
    ? join(env.XDG_STATE_HOME, 'nginx-agent')
    : join(home, '.local', 'state', 'nginx-agent');
  const first = configured || SYSTEM_STATE_DIR;
  const problem = writableDir(first);
  if (!problem) return { dir: first };
  const fallbackProblem = writableDir(perUser);
  const why = `state directory ${first} ${problem}`;
  if (!fallbackProblem) {
    // The system directory is missing for a user without root: the normal case, not worth a warning.
    return configured
      ? { dir: perUser, warning: `${why}; using ${perUser} (set agent.state_dir to a writable directory)` }
      : { dir: perUser };
  }
  return {
    warning: `${why}, and ${perUser} ${fallbackProblem}: log positions are not kept across restarts (set agent.state_dir to a writable directory)`,
  };
}

/** Undefined when `dir` exists (or could be created) and is writable; else what is wrong. */
function writableDir(dir: string): string | undefined {
  try {
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o750 });
    accessSync(dir, constants.W_OK | constants.X_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
      ? 'is not writable'
      : `cannot be used (${(err as Error).message})`;
  }
}
