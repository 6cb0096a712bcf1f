#!/usr/bin/env node
// npm's `prepare`: `npm ci` runs it in the checkout and it builds (incrementally: `tsc --incremental`,
// and Wasm plugins whose .wasm is newer than their sources are skipped).
// `npx agent ...` in the checkout also runs it: npx installs the checkout into its cache as a link
// to this very directory and runs `prepare` there before the command. That run builds nothing:
// `npm ci` has built the checkout already, and a long build inside npx is what, interrupted
// (Ctrl-C, a timeout), leaves npx's cache folder without its package.json and breaks every later
// `npx agent` until that folder is removed. `npm start` and `npm run build` bring the build up to date.
import { spawnSync } from 'node:child_process';

if (process.env.npm_command === 'exec') process.exit(0);
const npm = process.env.npm_execpath;
const r = npm
  ? spawnSync(process.execPath, [npm, 'run', '-s', 'build'], { stdio: 'inherit' })
  : spawnSync('npm', ['run', '-s', 'build'], { stdio: 'inherit' });
process.exit(r.status ?? 1);
