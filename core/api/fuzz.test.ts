/**
 * Fuzz of the HTTP API over raw sockets against the real agent process: thousands of random request
 * lines, methods, paths, headers and bodies, plus the requests that once broke it. Afterwards the agent
 * is alive and every answer was 1xx/2xx/304/4xx, never a 5xx and never a connection closed without one.
 *
 * Deterministic per seed: the seed is printed; rerun one with FUZZ_SEED=<n>. FUZZ_COUNT sets how many
 * random requests (default 3000).
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startAgent, type AgentProcess } from '../testing/agent-process.js';
import { rawRequest, type RawAnswer } from '../testing/raw-http.js';

const TOKEN = 'fuzz-token';
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const COUNT = Number(process.env.FUZZ_COUNT ?? 3000);
const PARALLEL = 16;

/** mulberry32: small, seedable, good enough to pick fuzz cases. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Gen {
  constructor(readonly random: () => number) {}
  int(n: number): number {
    return Math.floor(this.random() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  chance(p: number): boolean {
    return this.random() < p;
  }
  bytes(n: number, from = 0, to = 256): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = from + this.int(to - from);
    return b;
  }
  /** Printable ASCII without space, CR, LF. */
  token(n: number): string {
    return this.bytes(n, 33, 127).toString('latin1');
  }
  /** A header name as RFC 9110 allows (tchar). */
  headerName(n: number): string {
    const tchar = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~";
    return Array.from({ length: n }, () => this.pick([...tchar])).join('');
  }
}

const ROUTES = [
  '/health',
  '/metrics',
  '/v1/status',
  '/v1/plugins',
  '/v1/nginx',
  '/v1/nginx/abc/config',
  '/v1/nginx/%E0%A4%A/config',
  '/',
  '/v1',
];
const METHODS = ['GET', 'GET', 'GET', 'PUT', 'POST', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'TRACE', 'CONNECT'];
const HEADER_NAMES = [
  'Accept',
  'Accept-Encoding',
  'If-None-Match',
  'Content-Type',
  'Authorization',
  'X-Forwarded-For',
  'Cookie',
  'Range',
  'Expect',
  'Transfer-Encoding',
  'Upgrade',
];
const HEADER_VALUES = [
  'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1',
  'gzip',
  'gzip;q=0, deflate, br',
  '*',
  '"pt-0000"',
  'application/json',
  `Bearer ${TOKEN}`,
  'Bearer ',
  'bytes=0-10',
  'websocket',
  'identity',
];

/** A path: a known route, mutated. */
function path(g: Gen): string {
  let p = g.pick(ROUTES);
  switch (g.int(10)) {
    case 0:
      p += `/${g.token(1 + g.int(30))}`;
      break;
    case 1:
      p = p.replace(/[a-z]/, () => `%${g.bytes(1).toString('hex').toUpperCase()}`);
      break;
    case 2:
      p += `%${g.token(2)}`;
      break;
    case 3:
      p = `/${[...g.bytes(1 + g.int(20))].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('')}`;
      break;
    case 4:
      p = g.pick([
        '//[',
        '/[',
        '//',
        '/..',
        '/../../etc/passwd',
        '/./health',
        '/health/',
        '//health',
        'http://x/metrics',
        '*',
      ]);
      break;
    case 5:
      p += `?${g.token(g.int(200))}`;
      break;
    case 6:
      p += `?${g.pick(['a=1', 'q=%', 'x=%E0%A4%A', '&&&', '=', 'a=b=c', 'redirect=//evil'])}`;
      break;
    case 7:
      p = `/${'a/'.repeat(g.int(400))}`;
      break;
    case 8:
      p = `/${Buffer.from('é☃𝄞', 'utf8').toString('latin1')}${g.token(3)}`;
      break;
    default:
      break;
  }
  return p;
}

/** One well-framed request: body length matches its Content-Length (or chunked encoding). */
function request(g: Gen): Buffer {
  const method = g.chance(0.95) ? g.pick(METHODS) : g.token(1 + g.int(12));
  const version = g.pick(['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0']);
  const headers: string[] = [];
  if (g.chance(0.95)) headers.push(`Host: ${g.pick(['x', '127.0.0.1', g.token(10)])}`);
  if (g.chance(0.7)) headers.push(`Authorization: Bearer ${TOKEN}`);
  for (let i = g.int(6); i > 0; i--) {
    const name = g.chance(0.7)
      ? g.pick(HEADER_NAMES)
      : g.chance(0.9)
        ? g.headerName(1 + g.int(20))
        : g.token(1 + g.int(20)).replace(/:/g, '');
    const value = g.chance(0.7) ? g.pick(HEADER_VALUES) : g.token(g.int(100));
    if (/^(transfer-encoding|expect)$/i.test(name)) continue; // framing is chosen below
    headers.push(`${name}: ${value}`);
  }
  let body: Buffer = Buffer.alloc(0);
  if (g.chance(0.4)) {
    body = g.pick([
      () => Buffer.from(JSON.stringify({ config: g.token(g.int(50)) })),
      () => Buffer.from(`{"content": ${JSON.stringify(g.token(g.int(30)))}, "files": [`),
      () => g.bytes(g.int(5000)),
      () => Buffer.from('{}'),
    ])();
  }
  const chunked = body.length > 0 && version === 'HTTP/1.1' && g.chance(0.3);
  if (chunked) headers.push('Transfer-Encoding: chunked');
  else if (body.length > 0 || g.chance(0.2)) headers.push(`Content-Length: ${body.length}`);
  headers.push('Connection: close');
  const head = Buffer.from(`${method} ${path(g)} ${version}\r\n${headers.join('\r\n')}\r\n\r\n`, 'latin1');
  if (!chunked) return Buffer.concat([head, body]);
  const parts: Buffer[] = [head];
  for (let i = 0; i < body.length; i += 1000) {
    const piece = body.subarray(i, i + 1000);
    parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

/** Byte-level garbage and broken framing: only "the agent stays up" is asserted for these. */
function garbage(g: Gen): Buffer {
  return g.pick([
    () => g.bytes(1 + g.int(300)),
    () => Buffer.from(`GET /health HTTP/1.1\r\nHost: x\r\n${g.token(20)}\r\n\r\n`),
    () => Buffer.from(`GET /metrics HTTP/9.9\r\nHost: x\r\n\r\n`),
    () => Buffer.from(`PUT /v1/nginx/x/config HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort`),
    () => Buffer.from(`PUT /v1/nginx/x/config HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`),
    () => Buffer.from(`GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n`),
    () => Buffer.from(`GET /\x00health HTTP/1.1\r\nHost: x\r\n\r\n`, 'latin1'),
  ])();
}

/** The final (non-1xx) status of an answer. */
function finalStatus(a: RawAnswer): number | undefined {
  const all = [...a.text.matchAll(/(?:^|\r\n)HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
  return all.filter((s) => s >= 200).at(0) ?? all.at(-1);
}

function acceptable(status: number | undefined): boolean {
  return status !== undefined && ((status >= 200 && status < 300) || status === 304 || (status >= 400 && status < 500));
}

async function runAll<T>(items: T[], parallel: number, each: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < items.length) await each(items[next++]);
    }),
  );
}

describe(`API fuzz against the agent process (FUZZ_SEED=${SEED})`, { timeout: 300_000 }, () => {
  let agent: AgentProcess;
  let port = 0;
  before(async () => {
    process.stdout.write(`# API fuzz seed: FUZZ_SEED=${SEED} FUZZ_COUNT=${COUNT}\n`);
    const dir = await mkdtemp(join(tmpdir(), 'api-fuzz-'));
    const file = join(dir, 'agent.yaml');
    await writeFile(
      file,
      `api:\n  port: 0\n  token: ${TOKEN}\nwasm:\n  enabled: false\nnginx_logs:\n  enabled: false\nlog:\n  level: info\n`,
    );
    agent = await startAgent(['--config', file]);
    port = Number(new URL(agent.url).port);
  });
  after(async () => {
    await agent?.stop();
  });

  test('the requests that once killed or hurt the agent', async () => {
    const cases: [string, string | Buffer, number][] = [
      ['GET //[', 'GET //[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 401],
      [
        'GET //[ with the token',
        `GET //[ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`,
        404,
      ],
      [
        'bad percent-encoding',
        `PUT /v1/nginx/%E0%A4%A/config HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`,
        400,
      ],
      [
        'a declared body over the limit, Expect: 100-continue',
        `PUT /v1/nginx/x/config HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 999999999\r\nExpect: 100-continue\r\n\r\n`,
        413,
      ],
    ];
    for (const [what, bytes, want] of cases) {
      const a = await rawRequest(port, bytes);
      assert.equal(finalStatus(a), want, `${what}: ${a.text.slice(0, 300)}`);
    }
    const big = await fetch(`${agent.url}/v1/nginx/x/config`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${TOKEN}` },
      body: Buffer.alloc(17 * 1024 * 1024, 120),
    });
    assert.equal(big.status, 413);
    assert.match(((await big.json()) as { error: string }).error, /larger than/);
  });

  test(`${COUNT} random requests: every one answered 2xx/304/4xx, the agent alive`, async () => {
    const g = new Gen(prng(SEED));
    const requests = Array.from({ length: COUNT }, () => request(g));
    const bad: string[] = [];
    const statuses = new Map<number | string, number>();
    const reasons = new Map<string, number>();
    await runAll(requests, PARALLEL, async (bytes) => {
      const a = await rawRequest(port, bytes, 30_000);
      const status = finalStatus(a);
      statuses.set(status ?? a.ending, (statuses.get(status ?? a.ending) ?? 0) + 1);
      if (status === 400) {
        const why = (/"error": ?"([^"]{0,40})/.exec(a.text)?.[1] ?? '?').replace(/[0-9]+/g, 'N');
        reasons.set(why, (reasons.get(why) ?? 0) + 1);
      }
      if (!acceptable(status) && bad.length < 10)
        bad.push(
          `${status ?? a.ending}: ${JSON.stringify(bytes.toString('latin1').slice(0, 300))} -> ${a.text.slice(0, 200)}`,
        );
    });
    process.stdout.write(`# statuses: ${JSON.stringify(Object.fromEntries(statuses))}\n`);
    const top = [...reasons].sort((x, y) => y[1] - x[1]).slice(0, 6);
    process.stdout.write(`# most frequent 400s: ${JSON.stringify(Object.fromEntries(top))}\n`);
    assert.deepEqual(bad, [], `FUZZ_SEED=${SEED}`);
    assert.equal((await fetch(`${agent.url}/health`)).status, 200);
  });

  test('byte garbage and broken framing: the agent stays up', async () => {
    const g = new Gen(prng(SEED ^ 0x5eed));
    const inputs = Array.from({ length: Math.ceil(COUNT / 6) }, () => garbage(g));
    await runAll(inputs, PARALLEL, async (bytes) => {
      const a = await rawRequest(port, bytes, 30_000);
      const status = finalStatus(a);
      assert.ok(status === undefined || status < 500, `${status}: ${JSON.stringify(bytes.toString('latin1'))}`);
    });
    assert.equal((await fetch(`${agent.url}/health`)).status, 200);
  });

  test('nothing was logged as a handler failure or an uncaught error', () => {
    const failures = agent.logs.filter((l) => /failed; answered 500|uncaught|unhandled/.test(String(l.msg)));
    assert.deepEqual(failures, []);
    assert.equal(agent.child.exitCode, null);
  });
});
