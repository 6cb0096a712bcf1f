/**
 * `agent plugins list`: the plugins of a running agent (over its API).
 * `agent plugins check DIR`: validates Wasm plugin folders (cmd/run/plugins-check.ts) without an agent.
 */
import type { Command } from 'commander';
import { askAgent, configOption, fail, type ConfigFlags } from './common.js';

interface Report {
  name: string;
  kind: string;
  state: string;
  reason?: string;
  subscriptions: string[];
  details?: { kind?: string; calls?: number; errors?: number; version?: string };
}

/** Renders /v1/plugins as a table: name, kind, state, calls, errors, subscriptions (and the reason when not running). */
export function formatPluginList(plugins: Report[]): string {
  const rows = plugins.map((p) => [
    p.name,
    p.details?.kind === 'wasm' ? 'wasm' : p.kind,
    p.state,
    p.details?.kind === 'wasm' ? String(p.details.calls ?? 0) : '-',
    p.details?.kind === 'wasm' ? String(p.details.errors ?? 0) : '-',
    p.subscriptions.join(',') || '-',
  ]);
  const head = ['NAME', 'KIND', 'STATE', 'CALLS', 'ERRORS', 'SUBSCRIPTIONS'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => `${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')}\n`;
  let out = line(head);
  plugins.forEach((p, i) => {
    out += line(rows[i]);
    if (p.reason) out += `    ${p.reason}\n`;
  });
  return out;
}

export function register(program: Command): void {
  const plugins = program
    .command('plugins')
    .description('list the plugins of a running agent, or check Wasm plugin folders');
  plugins
    .command('list')
    .description(
      "ask a running agent for its plugins (name, kind, state, calls, errors, subscriptions) over the local API (uses the config's api.host, api.port and token)",
    )
    .addOption(configOption())
    .option('--api-host <host>', 'address of the agent API')
    .option('--api-port <port>', 'port of the agent API')
    .option('--json', 'print the API answer as JSON')
    .action(async (opts: ConfigFlags & { json?: boolean }) => {
      try {
        const text = await askAgent(opts, '/v1/plugins');
        process.stdout.write(opts.json ? text : formatPluginList((JSON.parse(text) as { plugins: Report[] }).plugins));
      } catch (err) {
        fail(err);
      }
    });
  plugins
    .command('check')
    .description(
      'validate Wasm plugin folders without starting the agent: plugin.yaml keys and types, the module hash, exports (process) and imports (Extism only); exit 1 on any problem',
    )
    .argument('<dir>', 'a plugin folder (holding plugin.yaml), or a directory of plugin folders')
    .action(async (dir: string) => {
      const { pluginsCheck } = await import('../run/plugins-check.js');
      const code = pluginsCheck(dir, {
        stdout: (t) => process.stdout.write(t),
        stderr: (t) => process.stderr.write(t),
      });
      process.exitCode = code;
    });
}
