#!/usr/bin/env node
// npm's `prepare`, run by `npm ci` in the checkout and by `npx agent ...`.
//
// `npx agent ...` in the checkout installs the checkout into npx's cache (~/.npm/_npx/<hash>/, a link
// to this directory) on its first run, and runs `prepare` during that install. Interrupted there
// (Ctrl-C, a timeout), npx leaves the folder without its package.json, and every later `npx agent`
// fails with ENOENT until the folder is removed. So:
// - under npx, `prepare` does nothing: `npm ci` has built the checkout already;
// - under `npm ci` (and `npm install`), it builds (incrementally: `tsc --incremental`, and Wasm plugins
//   whose .wasm is newer than their sources are skipped), removes such a broken npx folder of this
//   checkout, and makes npx's install itself (`npx agent version`), so the user's first
//   `npx agent start` installs nothing, starts at once, and has no install left to interrupt.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';

if (process.env.npm_command === 'exec') process.exit(0);

const npmCli = process.env.npm_execpath;
const npm = (args, quiet = false) =>
  npmCli
    ? spawnSync(process.execPath, [npmCli, ...args], { stdio: quiet ? 'pipe' : 'inherit', encoding: 'utf8' })
    : spawnSync('npm', args, { stdio: quiet ? 'pipe' : 'inherit', encoding: 'utf8' });

const build = npm(['run', '-s', 'build']);
if (build.status !== 0) process.exit(build.status ?? 1);

// npx names its folder after the sha512 of the package specs it installs: here, this directory.
const cache = process.env.npm_config_cache;
if (cache) {
  const folder = join(cache, '_npx', createHash('sha512').update(process.cwd()).digest('hex').slice(0, 16));
  if (existsSync(folder) && !existsSync(join(folder, 'package.json'))) {
    rmSync(folder, { recursive: true, force: true });
    console.log(`prepare: removed ${folder}, an npx install of this checkout that was interrupted`);
  }
  if (!existsSync(join(folder, 'package.json'))) {
    const warm = npm(['exec', '--yes', '--', 'agent', 'version'], true);
    if (warm.status !== 0)
      console.log(
        `prepare: npx agent could not be prepared (it will install on its first run): ${warm.stderr.trim().split('\n').at(-1)}`,
      );
  }
}
