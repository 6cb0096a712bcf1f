#!/usr/bin/env node
// The start-up build (issue 17), run by `npm run build:ts` after tsc:
//   1. bundles the compiled CLI (dist/cmd/agent.js and everything it imports, node_modules included)
//      into one CommonJS file, dist/agent.cjs, with esbuild;
//   2. runs `agent start` once from that bundle, on a free loopback port with a throw-away state
//      directory and an empty /proc for discovery (it never touches this machine's nginx), asks its
//      API what a scraper and the CLI ask first, and saves V8's code cache of it
//      (dist/agent.cjs.cache) as the daemon stops.
// bin/agent.js loads the bundle with that cache: V8 then neither parses 2 MB of JavaScript nor
// compiles the functions start-up runs, and Node's module loader resolves one file instead of ~400.
// Measured here: exec to the first /metrics 200 in about 120 ms, against 270 ms for dist/ as tsc
// writes it (scripts/bench/startup.ts).
//
// Why CommonJS: Node 20 has no code cache for ES modules (module.enableCompileCache() is Node 22),
// while vm.Script takes one. Modules reached only by `import()` stay lazy in the bundle: esbuild
// wraps each in an init function run on first use, so `agent version` still runs no daemon code.
//
// A bundle that cannot be built or warmed is not an error: bin/agent.js then runs dist/cmd/agent.js
// (or the bundle without a cache) and says why with NGINX_AGENT_TRACE_STARTUP=1.
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
export const BUNDLE = join(dist, 'agent.cjs');
export const CODE_CACHE = `${BUNDLE}.cache`;
const DASHBOARD = join(dist, 'core', 'views', 'dashboard');
const BUILD_INFO = join(dist, '.tsbuildinfo');

const say = (msg) => console.log(`bundle: ${msg}`);

async function build() {
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch (err) {
    say(`esbuild is not installed (${err.code ?? err.message}): bin/agent.js will run dist/cmd/agent.js`);
    return false;
  }
  await esbuild.build({
    entryPoints: [join(dist, 'cmd', 'agent.js')],
    outfile: BUNDLE,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    sourcemap: true,
    // import.meta is empty in CommonJS: give the two properties the code uses their meaning, for
    // the bundle's own file (package-root.ts finds the package from there).
    define: { 'import.meta.url': '__agentBundleUrl', 'import.meta.resolve': '__agentBundleResolve' },
    // The file is the function Node's CommonJS loader would wrap it in, so that bin/agent.js hands
    // the text V8 reads from disk to vm.Script as it is: a wrapper added at run time made a second,
    // 2.3 MB copy of the source in the heap (and took 1.5 ms to flatten).
    banner: {
      js: [
        '(function (exports, require, module, __filename, __dirname) {',
        // First in the function, so that it is a directive (esbuild's own comes after the banner,
        // where it is not one): the bundle's modules keep the strict mode they have as ES modules.
        '"use strict";',
        "const __agentBundleUrl = require('node:url').pathToFileURL(__filename).href;",
        "const __agentBundleResolve = (s) => require('node:url').pathToFileURL(require.resolve(s)).href;",
        LAZY_BUILTINS,
      ].join('\n'),
    },
    footer: { js: '})' },
    logLevel: 'warning',
  });
  // bin/agent.js reads the bundle as latin1, three times faster than UTF-8 here: keep it ASCII. The
  // few non-ASCII characters (in comments, a regex's µ) become \u escapes, the same text to V8.
  const text = readFileSync(BUNDLE, 'utf8');
  const ascii = text.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (ascii !== text) writeFileSync(BUNDLE, ascii);
  // A dynamic import() left in the bundle fails at run time: V8 drops the import callback of a
  // script compiled from a code cache ("A dynamic import callback was not specified").
  const left = ascii.match(/\bimport\(\s*["'`][^"'`]*/g);
  if (left) {
    rmSync(BUNDLE, { force: true });
    throw new Error(`dist/agent.cjs would keep ${left.join(', ')}: use createRequire() for Node's own modules`);
  }
  return true;
}

// Node's own modules that the daemon does not need before its API answers (crypto, child_process,
// zlib, ...) are not in Node's start-up snapshot: each costs 0.6-2.2 ms to load (3-5 ms together),
// and an ES module's static imports load them all up front. In the bundle, require() hands out a
// stand-in for these that loads the module at the first use of one of its properties. esbuild
// turns `import { spawn } from 'node:child_process'` into `m = require(...)` and `m.spawn(...)`,
// so every use goes through the stand-in's get.
const LAZY_BUILTINS = `require = ((load) => {
  const lazy = new Set(${JSON.stringify(['child_process', 'crypto', 'dns', 'http2', 'https', 'readline', 'tls', 'v8', 'worker_threads', 'zlib'])});
  const standIn = (id) => {
    let mod;
    const real = () => (mod ??= load(id));
    return new Proxy({}, {
      get: (_, key) => real()[key],
      set: (_, key, value) => ((real()[key] = value), true),
      has: (_, key) => key in real(),
      ownKeys: () => Reflect.ownKeys(real()),
      getOwnPropertyDescriptor: (_, key) => {
        const found = Reflect.getOwnPropertyDescriptor(real(), key);
        return found && { ...found, configurable: true };
      },
    });
  };
  const required = (id) => (lazy.has(id.replace(/^node:/, '')) ? standIn(id) : load(id));
  return Object.assign(required, { resolve: load.resolve, cache: load.cache, main: load.main });
})(require);`;

function freeLoopbackUrl(child) {
  // The daemon prints "API listening on http://HOST:PORT" (port 0 picks a free one).
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (chunk) => {
      out += chunk;
      const m = out.match(/API listening on (http:\/\/[^"\s]+)/);
      if (m) {
        child.stdout.off('data', onData);
        resolve(m[1]);
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) =>
      reject(new Error(`the agent exited (${code}) before its API listened: ${out.trim()}`)),
    );
  });
}

/** GET `path`; resolves with the status (0 when there was no answer). */
function get(url, path, headers = {}) {
  return new Promise((resolve) => {
    const req = request(`${url}${path}`, { timeout: 2000, headers }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

// What scrapers, the CLI and the dashboard ask a freshly started agent for. Code is in the cache only
// if the warm-up ran it: without these, the first scrape compiled the rendering path from source
// (9.5-13 ms for the first scrape of an idle agent, 5.5-12 ms with them; the second 2.5-5.5 ms).
const WARM_REQUESTS = [
  ['/metrics', {}],
  ['/metrics', { 'accept-encoding': 'gzip' }],
  ['/metrics', { accept: 'application/openmetrics-text; version=1.0.0', 'accept-encoding': 'gzip' }],
  ['/v1/status', {}],
  ['/v1/plugins', {}],
  ['/v1/nginx', {}],
  ['/v1/events', {}],
  ['/v1/summary', {}],
];

async function warm() {
  const state = mkdtempSync(join(tmpdir(), 'agent-bundle-warm-'));
  const config = join(state, 'agent.yaml');
  const procRoot = join(state, 'proc');
  mkdirSync(procRoot);
  writeFileSync(
    config,
    [
      'api:',
      '  host: 127.0.0.1',
      '  port: 0',
      'log:',
      '  level: info',
      '  format: json',
      'agent:',
      `  state_dir: ${state}`,
      // An empty /proc for discovery: the build never looks at, scrapes or tests this machine's nginx.
      'nginx_discovery:',
      `  proc_root: ${procRoot}`,
      '',
    ].join('\n'),
  );
  // The user's NGINX_AGENT_* settings (a fleet, an OTLP endpoint) are not the build's business.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('NGINX_AGENT_')));
  const child = spawn(process.execPath, [join(root, 'bin', 'agent.js'), 'start', '--config', config], {
    env: { ...env, NGINX_AGENT_CODE_CACHE_OUT: CODE_CACHE },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.setEncoding('utf8');
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = setTimeout(() => child.kill('SIGKILL'), 30_000);
  try {
    const url = await freeLoopbackUrl(child);
    // /health is 200 once every plugin has collected once: start-up's code has all run by then.
    while ((await get(url, '/health')) !== 200) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`the agent exited (${child.exitCode ?? child.signalCode}) before /health said 200`);
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const [path, headers] of WARM_REQUESTS) await get(url, path, headers);
    child.kill('SIGTERM');
    await exited;
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    say(`warming the code cache failed, the bundle runs without one: ${err.message}`);
  } finally {
    clearTimeout(deadline);
    rmSync(state, { recursive: true, force: true });
  }
}

/**
 * The newest mtime of tsc's output: the .js files under dist/, but not the dashboard's browser
 * files (copied on every build, and not part of the bundle).
 */
function newestCompiled(dir = dist) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = path === DASHBOARD ? newest : Math.max(newest, newestCompiled(path));
    else if (entry.name.endsWith('.js')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

// What the cache was made with: V8 refuses a cache from another V8 (a Node.js upgrade).
const STAMP = `${BUNDLE}.stamp`;
const stamp = JSON.stringify({
  node: process.version,
  v8: process.versions.v8,
  bundler: statSync(fileURLToPath(import.meta.url)).mtimeMs,
});
const current =
  existsSync(CODE_CACHE) &&
  existsSync(STAMP) &&
  readFileSync(STAMP, 'utf8') === stamp &&
  // bin/agent.js runs the bundle only when it is newer than dist/.tsbuildinfo: the same test here.
  statSync(BUNDLE).mtimeMs >= Math.max(newestCompiled(), existsSync(BUILD_INFO) ? statSync(BUILD_INFO).mtimeMs : 0);
if (current) {
  // npm start builds before every start: nothing compiled changed, nothing to bundle or warm.
  say('dist/agent.cjs and its code cache are up to date');
} else {
  for (const f of [BUNDLE, `${BUNDLE}.map`, CODE_CACHE, STAMP]) rmSync(f, { force: true });
  if (await build()) {
    await warm();
    if (existsSync(CODE_CACHE)) writeFileSync(STAMP, stamp);
    const size = (f) => (existsSync(f) ? `${(statSync(f).size / 1024).toFixed(0)} KB` : 'none');
    say(`dist/agent.cjs ${size(BUNDLE)}, code cache ${size(CODE_CACHE)}`);
  }
}
