/**
 * `agent config parse [FILE]`: prints the nginx config as crossplane-shaped JSON. With no FILE it
 * parses the config of the nginx running here (found in /proc the way nginx-discovery does).
 * Exit code 1 when the payload status is `failed` (every error is in the JSON) or nothing can be parsed.
 * The parser and discovery modules are imported when the command runs, not when the CLI starts.
 */
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import type { NginxInstance } from '../../core/nginx/types.js';

export interface ConfigParseOptions {
  prefix?: string;
  procRoot?: string;
  instance?: string;
  comments?: boolean;
}

export interface ConfigParseIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** Running nginx instances under `procRoot`, as discovery sees them. */
export async function findRunningInstances(procRoot: string): Promise<NginxInstance[]> {
  const [{ BinaryInfoCache }, { NginxDiscovery }, { ProcReader }] = await Promise.all([
    import('../../plugins/nginx-discovery/binary-info.js'),
    import('../../plugins/nginx-discovery/discovery.js'),
    import('../../plugins/nginx-discovery/proc.js'),
  ]);
  const d = new NginxDiscovery({
    reader: new ProcReader(procRoot),
    binaries: new BinaryInfoCache({ timeoutMs: 5000 }),
    oldGenerationGraceMs: 60_000,
  });
  // Discovery announces a master seen before its workers (nginx starting, or a worker not yet
  // renamed) at its next scan, so a one-shot look scans twice.
  const events = [...(await d.poll()).events, ...(await d.poll()).events];
  return events.filter((e) => e.topic === 'nginx.instance.added').map((e) => e.data.instance);
}

/** Does the work of the command; resolves with the exit code. */
export async function configParse(
  file: string | undefined,
  opts: ConfigParseOptions,
  io: ConfigParseIo,
): Promise<number> {
  let confPath: string;
  let prefix = opts.prefix;
  if (file) {
    confPath = resolve(file);
  } else {
    const procRoot = opts.procRoot ?? '/proc';
    let found: NginxInstance[];
    try {
      found = await findRunningInstances(procRoot);
    } catch (e) {
      io.stderr(
        `agent: cannot look for a running nginx in ${procRoot}: ${(e as Error).message}; pass the config file: agent config parse /etc/nginx/nginx.conf\n`,
      );
      return 1;
    }
    if (opts.instance) found = found.filter((i) => i.id === opts.instance || String(i.pid) === opts.instance);
    if (found.length === 0) {
      io.stderr(
        opts.instance
          ? `agent: no running nginx with id or pid ${opts.instance} in ${procRoot}\n`
          : `agent: no running nginx found in ${procRoot}; pass the config file: agent config parse /etc/nginx/nginx.conf\n`,
      );
      return 1;
    }
    if (found.length > 1) {
      const list = found.map((i) => `  ${i.id}  pid ${i.pid}  ${i.confPath}`).join('\n');
      io.stderr(
        `agent: ${found.length} nginx instances run here; choose one with --instance ID (or pass a FILE):\n${list}\n`,
      );
      return 1;
    }
    confPath = found[0].confPath;
    prefix ??= found[0].prefix;
  }
  const { parseNginxConfig } = await import('../../core/nginx/config/parse.js');
  const payload = await parseNginxConfig(confPath, {
    ...(prefix ? { prefix } : {}),
    confDir: dirname(confPath),
    comments: opts.comments ?? false,
  });
  io.stdout(`${JSON.stringify(payload, null, 2)}\n`);
  return payload.status === 'failed' ? 1 : 0;
}

/** Adds `parse [FILE]` under the `config` command. */
export function registerConfigParse(configCmd: Command): Command {
  return configCmd
    .command('parse')
    .argument('[file]', 'nginx config file (default: the config of the nginx running here)')
    .description('print an nginx config as crossplane-style JSON (exit 1 when it has errors)')
    .option('--prefix <dir>', 'nginx prefix (-p) for relative paths (default: the running instance\u2019s, or none)')
    .option('--instance <id>', 'with several nginx running: the instance id or master pid to parse')
    .option('--proc-root <dir>', 'where /proc is mounted, to find the running nginx', '/proc')
    .option('--comments', 'include # comments as directives named "#"', false)
    .action(async (file: string | undefined, opts: ConfigParseOptions) => {
      process.exitCode = await configParse(file, opts, {
        stdout: (t) => process.stdout.write(t),
        stderr: (t) => process.stderr.write(t),
      });
    });
}
