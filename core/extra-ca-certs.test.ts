/**
 * NODE_EXTRA_CA_CERTS deferred by bin/agent.js's launcher: TLS contexts trust the file's
 * certificates from the first connection on, as Node does with the variable, in this thread and in
 * the Wasm plugins' HTTP helper thread. Against a real HTTPS server (in a child process, so that a
 * thread blocked in SyncHttp cannot stall it) whose certificate a test CA signed.
 *
 * testdata/extra-ca: ca.pem (the test CA) and server.pem/server.key (127.0.0.1 and localhost,
 * signed by it), made with openssl (EC P-256, valid 100 years; the CA key was thrown away).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { type TlsModule, trustDeferredExtraCaCerts } from './extra-ca-certs.js';
import { SyncHttp } from './wasm/sync-http.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'testdata', 'extra-ca');
const CA_FILE = join(FIXTURES, 'ca.pem');

/** An HTTPS server in a child process answering "hello" on 127.0.0.1; resolves with its port. */
function startHttpsServer(): Promise<{ port: number; child: ChildProcess }> {
  const code = `
    const https = require('node:https');
    const fs = require('node:fs');
    const dir = ${JSON.stringify(FIXTURES)};
    const server = https.createServer(
      { key: fs.readFileSync(dir + '/server.key'), cert: fs.readFileSync(dir + '/server.pem') },
      (req, res) => res.end('hello'),
    );
    server.listen(0, '127.0.0.1', () => console.log(server.address().port));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve({ port: Number(String(d).trim()), child }));
    child.once('exit', (code) => reject(new Error(`the HTTPS server exited (${code}) before listening`)));
  });
}

/** A copy of node:tls's two members the hook uses, so a test's hook stays in the test. */
function tlsCopy(): TlsModule {
  return { createSecureContext: tls.createSecureContext, rootCertificates: tls.rootCertificates };
}

/** Connects with `secureContext`; resolves with null when the server's certificate is trusted, else the error code. */
function handshake(port: number, secureContext: tls.SecureContext): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', secureContext }, () => {
      socket.end();
      resolve(null);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

describe('NODE_EXTRA_CA_CERTS deferred to the first TLS connection', () => {
  let server: { port: number; child: ChildProcess };
  let dir: string;
  before(async () => {
    server = await startHttpsServer();
    dir = mkdtempSync(join(tmpdir(), 'extra-ca-'));
  });
  after(() => {
    server.child.kill();
    rmSync(dir, { recursive: true, force: true });
  });
  const deferred = { NGINX_AGENT_EXTRA_CA_CERTS: CA_FILE };
  const read = (file: string) => readFileSync(file, 'latin1');

  it('does nothing, and loads no TLS, unless the launcher deferred the variable', () => {
    const loads: string[] = [];
    const load = () => {
      loads.push('tls');
      return tlsCopy();
    };
    assert.equal(trustDeferredExtraCaCerts(load, {}, read, assert.fail), undefined);
    // Node loaded NODE_EXTRA_CA_CERTS itself (run as `node bin/agent.js`): the file must not count twice.
    const both = { ...deferred, NODE_EXTRA_CA_CERTS: CA_FILE };
    assert.equal(trustDeferredExtraCaCerts(load, both, read, assert.fail), undefined);
    assert.deepEqual(loads, []);
  });

  it('makes contexts without a ca of their own trust the file, shared when they set nothing else', async () => {
    const copy = tlsCopy();
    assert.equal(await handshake(server.port, copy.createSecureContext()), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    let reads = 0;
    const counted = (file: string) => {
      reads++;
      return read(file);
    };
    assert.equal(
      trustDeferredExtraCaCerts(() => copy, deferred, counted, assert.fail),
      CA_FILE,
    );
    assert.equal(reads, 0, 'the file is read at the first context, not before');
    const plain = copy.createSecureContext();
    assert.equal(await handshake(server.port, plain), null);
    assert.equal(copy.createSecureContext({}), plain, 'connections that set nothing share one context');
    const own = copy.createSecureContext({ minVersion: 'TLSv1.3' });
    assert.notEqual(own, plain);
    assert.equal(await handshake(server.port, own), null, 'a context of its own trusts the file too');
    assert.equal(reads, 1);
    // An explicit ca replaces the defaults, the file included, as Node does with the variable.
    const explicit = copy.createSecureContext({ ca: tls.rootCertificates[0] });
    assert.equal(await handshake(server.port, explicit), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });

  it('says once which file it ignores and why, and TLS goes on with the defaults', async () => {
    const empty = join(dir, 'empty.pem');
    writeFileSync(empty, 'no certificates here\n');
    for (const [file, reason] of [
      [
        join(dir, 'missing.pem'),
        /Ignoring the extra CA certificates in .*missing\.pem \(NODE_EXTRA_CA_CERTS\): ENOENT/,
      ],
      [empty, /Ignoring .*empty\.pem \(NODE_EXTRA_CA_CERTS\): it holds no PEM certificate/],
    ] as const) {
      const warnings: string[] = [];
      const copy = tlsCopy();
      trustDeferredExtraCaCerts(
        () => copy,
        { NGINX_AGENT_EXTRA_CA_CERTS: file },
        read,
        (m) => warnings.push(m),
      );
      assert.equal(await handshake(server.port, copy.createSecureContext()), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
      copy.createSecureContext({ minVersion: 'TLSv1.2' });
      assert.equal(warnings.length, 1, warnings.join('\n'));
      assert.match(warnings[0]!, reason);
    }
  });

  it("reaches the Wasm plugins' HTTP helper thread", () => {
    // The helper inherits this process's environment when it starts. This machine may set
    // NODE_EXTRA_CA_CERTS for every process; the launcher would have taken it out.
    const saved = { ...process.env };
    const fetchHello = () => {
      const http = new SyncHttp();
      try {
        return http.request({
          url: `https://127.0.0.1:${server.port}/`,
          method: 'GET',
          headers: {},
          timeoutMs: 5000,
          maxBytes: 1024,
        });
      } catch (err) {
        return (err as Error).message;
      } finally {
        http.close();
      }
    };
    try {
      delete process.env.NODE_EXTRA_CA_CERTS;
      delete process.env.NGINX_AGENT_EXTRA_CA_CERTS;
      assert.match(String(fetchHello()), /fetch failed: unable to verify the first certificate/);
      process.env.NGINX_AGENT_EXTRA_CA_CERTS = CA_FILE;
      const answer = fetchHello();
      assert.equal(typeof answer, 'object', String(answer));
      assert.equal(Buffer.from((answer as { body: Uint8Array }).body).toString(), 'hello');
    } finally {
      process.env = saved;
    }
  });
});
