/**
 * `agent plugins list`: the plugins of a running agent (over its API).
 * `agent plugins check DIR`: validates Wasm plugin folders (manifest, hash, exports, imports) without an agent.
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { MANIFEST_FILE } from '../../core/wasm/manifest.js';
import { pluginFolders } from '../../core/wasm/manager.js';
import { checkPluginDir, linkCheck } from '../../core/wasm/module.js';
import { askAgent, fail, type ConfigFlags } from './common.js';

export interface PluginsIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** Checks one plugin folder or every plugin folder inside `dir`; resolves with the exit code (0 all good, 1 otherwise). */
export function pluginsCheck(dir: string, io: PluginsIo): number {
  const root = resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    io.stderr(
      `agent: ${root} is not a directory; give a plugin folder (with ${MANIFEST_FILE}) or a directory of them\n`,
    );
    return 1;
  }
  const folders = existsSync(join(root, MANIFEST_FILE)) ? [root] : pluginFolders(root);
  if (folders.length === 0) {
    io.stderr(`agent: no plugin in ${root}: neither it nor a folder directly inside it holds a ${MANIFEST_FILE}\n`);
    return 1;
  }
  let failed = 0;
  for (const folder of folders) {
    try {
      const c = checkPluginDir(folder);
      linkCheck(c);
      const m = c.manifest;
      const exports = [
        m.abi === 'wapc' ? '__guest_call (waPC)' : 'process',
        ...(c.exports.init ? ['init'] : []),
        ...(c.exports.describe ? ['describe'] : []),
      ].join(', ');
      io.stdout(
        `ok    ${m.name}  ${folder}\n` +
          `      wasm ${c.wasmFile} (sha256 ${c.sha256}${m.sha256 ? ', matches the manifest' : ''})\n` +
          `      exports ${exports}; subscriptions ${m.subscriptions.join(', ') || '(none)'}; publishes ${m.publishes.join(', ') || '(none)'}\n`,
      );
    } catch (e) {
      failed++;
      io.stderr(`FAIL  ${folder}\n      ${(e as Error).message.split('\n').join('\n      ')}\n`);
    }
  }
  if (folders.length > 1) io.stdout(`${folders.length - failed} of ${folders.length} plugins OK\n`);
  return failed ? 1 : 0;
}

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

export function registerPlugins(program: Command): void {
  const plugins = program
    .command('plugins')
    .description('list the plugins of a running agent, or check Wasm plugin folders');
  plugins
    .command('list')
    .description(
      "ask a running agent for its plugins (name, kind, state, calls, errors, subscriptions) over the local API (uses the config's api.host, api.port and token)",
    )
    .option('-c, --config <file>', 'config file (default: /etc/nginx-agent/nginx-agent.yaml, then config/agent.yaml)')
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
    .action((dir: string) => {
      const code = pluginsCheck(dir, {
        stdout: (t) => process.stdout.write(t),
        stderr: (t) => process.stderr.write(t),
      });
      process.exitCode = code;
    });
}
