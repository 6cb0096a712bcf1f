import { strict as assert } from 'node:assert';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { rawRequest } from '../testing/raw-http.js';
import { parseTarget, RouteTable } from './router.js';
import { ApiServer } from './server.js';
import { ApiError } from './types.js';

function capturingLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { logger, lines };
}

describe('ApiServer: no request ends or breaks the process', () => {
  const { logger, lines } = capturingLogger();
  const server = new ApiServer({ host: '127.0.0.1', port: 0, token: '', logger, maxBodyBytes: 1024 });
  let port = 0;
  let url = '';
  before(async () => {
    server.route('GET', '/ok', () => ({ status: 200, body: { ok: true } }));
    server.route('PUT', '/v1/nginx/:id/config', (req) => ({
      status: 200,
      body: { id: req.params.id, len: req.body.length },
    }));
    server.route('GET', '/boom', () => {
      throw new TypeError('handler bug');
    });
    server.route('GET', '/reject', () => Promise.reject(new Error('async handler bug')));
    server.route('GET', '/later', () => new Promise((r) => setTimeout(() => r({ status: 200, body: 'later' }), 20)));
    server.route('GET', '/teapot', () => {
      throw new ApiError(418, 'short and stout');
    });
    ({ port } = await server.listen());
    url = `http://127.0.0.1:${port}`;
  });
  after(() => server.close());

  const alive = async () => assert.equal((await fetch(`${url}/ok`)).status, 200);

  test('a request target that no URL parser accepts (GET //[) is a 4xx, not a crash', async () => {
    const r = await rawRequest(port, 'GET //[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(r.status, 404, r.text);
    assert.match(r.text, /no such endpoint: GET \/\/\[/);
    const abs = await rawRequest(port, 'GET http://[::1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(abs.status, 400, abs.text);
    await alive();
  });

  test('bad percent-encoding in a path parameter is the client error 400', async () => {
    const r = await fetch(`${url}/v1/nginx/%E0%A4%A/config`, { method: 'PUT', body: 'x' });
    assert.equal(r.status, 400);
    assert.match(((await r.json()) as { error: string }).error, /bad percent-encoding.*%E0%A4%A/);
    const good = await fetch(`${url}/v1/nginx/a%2Fb/config`, { method: 'PUT', body: 'x' });
    assert.deepEqual(await good.json(), { id: 'a/b', len: 1 });
  });

  test('a body over the limit is answered 413 with a JSON error, not a reset', async () => {
    const r = await fetch(`${url}/v1/nginx/x/config`, { method: 'PUT', body: Buffer.alloc(256 * 1024, 97) });
    assert.equal(r.status, 413);
    assert.match(((await r.json()) as { error: string }).error, /larger than 1024 bytes/);
    // Chunked, without a Content-Length.
    const chunked = await new Promise<{ status?: number; body: string }>((resolve, reject) => {
      const req = request(`${url}/v1/nginx/x/config`, { method: 'PUT' }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode, body }));
      });
      req.on('error', reject);
      for (let i = 0; i < 64; i++) req.write(Buffer.alloc(4096, 98));
      req.end();
    });
    assert.equal(chunked.status, 413);
    assert.match(chunked.body, /"error": "request body larger than 1024 bytes"/);
    // Expect: 100-continue with a declared length over the limit: answered before the body is sent.
    const early = await rawRequest(
      port,
      'PUT /v1/nginx/x/config HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n',
    );
    assert.equal(early.status, 413, early.text);
    await alive();
  });

  test('an exception in a handler is logged once with its route and answered 500; the server goes on', async () => {
    const before = lines.length;
    const r = await fetch(`${url}/boom`);
    assert.equal(r.status, 500);
    assert.match(((await r.json()) as { error: string }).error, /GET \/boom: handler bug/);
    const r2 = await fetch(`${url}/reject`);
    assert.equal(r2.status, 500);
    const logged = lines.slice(before);
    assert.equal(logged.length, 2, JSON.stringify(logged));
    assert.equal(logged[0].route, 'GET /boom');
    assert.equal(logged[0].level, 50);
    assert.equal(logged[1].route, 'GET /reject');
    assert.equal((await fetch(`${url}/teapot`)).status, 418);
    await alive();
  });

  test('bytes the HTTP parser refuses get a 400 on the socket, then the connection closes', async () => {
    const r = await rawRequest(port, '\x00\x01\x02 garbage\r\n\r\n');
    assert.equal(r.status, 400, r.text);
    assert.equal(r.ending, 'end');
    const big = await rawRequest(port, `GET /ok HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.equal(big.status, 431, big.text);
    await alive();
  });

  test('a client that half-closes after its request still gets an answer that takes a while', async () => {
    const r = await rawRequest(port, 'GET /later HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(r.status, 200, r.text);
    assert.match(r.text, /later$/);
  });

  test('CONNECT (no proxy here) and an upgrade request are answered, not dropped', async () => {
    const c = await rawRequest(port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    assert.equal(c.status, 405, c.text);
    const u = await rawRequest(
      port,
      'GET /ok HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
    );
    assert.equal(u.status, 200, u.text);
    await alive();
  });

  test('an in-process call (the fleet) with a target no URL parser accepts is a 4xx, not a rejection', async () => {
    const table = new RouteTable();
    table.route('GET', '/v1/x/:id', (req) => ({ status: 200, body: req.params }));
    assert.equal((await table.call('GET', '//[')).status, 404);
    assert.equal((await table.call('GET', '/v1/x/%E0%A4%A')).status, 400);
    assert.equal((await table.call('GET', '*')).status, 400);
    assert.deepEqual((await table.call('GET', '/v1/x/a%20b?q=1')).body, { id: 'a b' });
  });

  test('parseTarget keeps the path as sent and splits the query', () => {
    assert.deepEqual(parseTarget('/a/b?x=1').path, '/a/b');
    assert.equal(parseTarget('/a?x=1&y=2').query.get('y'), '2');
    assert.equal(parseTarget('//[').path, '//[');
    assert.equal(parseTarget('http://h:1/metrics?a=b').path, '/metrics');
    assert.throws(() => parseTarget('*'), /bad request target/);
  });
});
