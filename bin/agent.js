#!/bin/sh
":" //; [ -z "$NODE_EXTRA_CA_CERTS" ] || case " $NODE_OPTIONS " in *--use-openssl-ca*) ;; *) export NGINX_AGENT_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS"; unset NODE_EXTRA_CA_CERTS ;; esac
":" //; exec "${NGINX_AGENT_NODE:-node}" "$0" "$@"
// Entry point of `npx agent`, the systemd unit and the image: runs the compiled CLI.
//
// Run as a command, this file is a shell script first: the two lines above are shell to /bin/sh and
// a string and a comment to Node (biome.json leaves this file's format alone: a formatter's `":";`
// would make `//` a command). When NODE_EXTRA_CA_CERTS is set, Node 20 parses that file and its
// own bundled roots before any JavaScript runs, about 100 ms on every start with a system bundle of
// 144 certificates; the shell moves the variable to NGINX_AGENT_EXTRA_CA_CERTS and execs Node (the
// one in PATH, or NGINX_AGENT_NODE) on this file without it, and core/extra-ca-certs.ts trusts the
// certificates from the first TLS connection on, as Node would have. Not with --use-openssl-ca in
// NODE_OPTIONS: Node then trusts OpenSSL's store, not the bundled roots the agent weighs the file against.
// `node bin/agent.js` skips the shell and lets Node load the variable itself.
//
// Built (`npm ci`, `npm run build`), dist/agent.cjs is the whole CLI in one file, and
// dist/agent.cjs.cache is V8's code cache of it (scripts/bundle.mjs). Loading that pair takes a
// fraction of what loading dist/cmd/agent.js and its ~400 modules takes, and is what lets the
// daemon answer its first scrape about 100 ms after exec. Without the bundle (esbuild missing), or
// when tsc has run since the bundle was made, dist/cmd/agent.js runs as it is.
// NGINX_AGENT_TRACE_STARTUP=1 prints which of the two ran, whether V8 took the cache, and whether
// NODE_EXTRA_CA_CERTS was deferred.
//
// This file is CommonJS (bin/package.json says so, against the package's "type": "module"): Node
// starts an ES module entry about 20 ms slower, as it sets up its ES module loader first.
'use strict';
if (typeof require === 'undefined') {
  // Run as an ES module: bin/package.json was not copied beside this file.
  process.stderr.write(
    `agent: ${process.argv[1]} is CommonJS but is run as an ES module: put bin/package.json ({ "type": "commonjs" }) beside it\n`,
  );
  process.exit(1);
}
const { existsSync, readFileSync, renameSync, statSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { join } = require('node:path');
const vm = require('node:vm');

const dist = join(__dirname, '..', 'dist');
const bundle = join(dist, 'agent.cjs');
const codeCache = `${bundle}.cache`;
const compiled = join(dist, 'cmd', 'agent.js');
const trace = process.env.NGINX_AGENT_TRACE_STARTUP === '1' ? (msg) => process.stderr.write(`agent: ${msg}\n`) : null;
if (process.env.NGINX_AGENT_EXTRA_CA_CERTS && !process.env.NODE_EXTRA_CA_CERTS)
  trace?.(
    `NODE_EXTRA_CA_CERTS deferred: ${process.env.NGINX_AGENT_EXTRA_CA_CERTS} is read at the first TLS connection`,
  );

/** The bundle, unless tsc has written dist/ after it (a `tsc` run without `npm run build`). */
function bundleIsCurrent() {
  if (!existsSync(bundle)) return false;
  const buildInfo = join(dist, '.tsbuildinfo');
  return !existsSync(buildInfo) || statSync(buildInfo).mtimeMs <= statSync(bundle).mtimeMs;
}

function runBundle() {
  // latin1: the bundle is ASCII (scripts/bundle.mjs sees to it), and this decodes 3x faster than
  // UTF-8, into a string V8 keeps outside its heap. The text is already the function CommonJS wraps
  // a module in (scripts/bundle.mjs): changing it here would copy it.
  const source = readFileSync(bundle, 'latin1');
  let cachedData;
  try {
    cachedData = readFileSync(codeCache);
  } catch {
    // no cache: V8 compiles as usual
  }
  const script = new vm.Script(source, {
    filename: bundle,
    cachedData,
  });
  trace?.(
    `running dist/agent.cjs, code cache ${cachedData ? (script.cachedDataRejected ? 'rejected (another Node.js or V8 flags): compiled' : 'accepted') : 'missing: compiled'}`,
  );
  const out = process.env.NGINX_AGENT_CODE_CACHE_OUT;
  if (out) {
    // The build's warm-up run (scripts/bundle.mjs): the cache holds every function compiled by then.
    process.once('exit', () => {
      writeFileSync(`${out}.tmp`, script.createCachedData());
      renameSync(`${out}.tmp`, out);
    });
  }
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(bundle), module, bundle, dist);
}

if (bundleIsCurrent()) runBundle();
else if (existsSync(compiled)) {
  trace?.(
    `running dist/cmd/agent.js (${existsSync(bundle) ? 'dist/agent.cjs is older than tsc output' : 'no dist/agent.cjs'})`,
  );
  import(compiled);
} else {
  process.stderr.write(
    'agent: the compiled CLI is missing (dist/cmd/agent.js); run "npm run build" in the agent directory\n',
  );
  process.exit(1);
}
