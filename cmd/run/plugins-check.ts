/** `agent plugins check DIR`: validates Wasm plugin folders (manifest, hash, exports, imports) without an agent. */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pluginFolders } from '../../core/wasm/manager.js';
import { MANIFEST_FILE } from '../../core/wasm/manifest.js';
import { checkPluginDir, linkCheck } from '../../core/wasm/module.js';

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
