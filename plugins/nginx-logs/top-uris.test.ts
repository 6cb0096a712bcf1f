import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AccessLogFold } from './access-fold.js';
import { compileLogFormat, COMBINED_FORMAT } from './log-format.js';
import { EXACT_PER_HALF_WINDOW, HeavyHitters, hashRange, uriRange, WindowedTopUris } from './top-uris.js';

test('heavy hitters: exact counts and 5xx while fewer keys than capacity', () => {
  const hh = new HeavyHitters(8);
  const want = new Map<string, number>();
  for (let i = 0; i < 200; i++) {
    const key = `/k${i % 5}`;
    hh.add(key, i % 10 === 0);
    want.set(key, (want.get(key) ?? 0) + 1);
  }
  const got = new Map<string, { uri: string; requests: number; errors5xx: number }>();
  hh.addTo(got);
  assert.deepEqual(new Map([...got].map(([k, v]) => [k, v.requests])), want);
  assert.equal(got.get('/k0')?.errors5xx, 20, 'every 10th request, all on /k0');
  assert.equal(got.get('/k1')?.errors5xx, 0);
});

test('heavy hitters: memory stays bounded and the frequent keys stay with many distinct keys', () => {
  const hh = new HeavyHitters(16);
  for (let i = 0; i < 20_000; i++) {
    hh.add(`/unique/${i}`, false);
    if (i % 4 === 0) hh.add('/hot', true);
    if (i % 8 === 0) hh.add('/warm', false);
    assert.ok(hh.size <= 16);
  }
  const got = new Map<string, { uri: string; requests: number; errors5xx: number }>();
  hh.addTo(got);
  assert.equal(got.size, 16);
  // Space-saving: a kept key's count is an upper bound, and keys above total/capacity are kept.
  assert.ok((got.get('/hot')?.requests ?? 0) >= 5000);
  assert.ok((got.get('/warm')?.requests ?? 0) >= 2500);
  // Its 5xx count only covers the time since it last came in, never more than its requests.
  const hot = got.get('/hot');
  assert.ok(hot && hot.errors5xx <= hot.requests && hot.errors5xx > 0);
});

test('heavy hitters: keys from ranges of a longer text match keys added whole (eviction keeps lookups right)', () => {
  const hh = new HeavyHitters(4);
  const text = 'x /a /b /c /d /e /a';
  for (let round = 0; round < 50; round++) {
    for (const [s, e] of [
      [2, 4],
      [5, 7],
      [2, 4],
      [8, 10],
      [11, 13],
      [14, 16],
      [17, 19],
    ])
      hh.addRange(text, s, e, hashRange(text, s, e), false, 1);
    hh.add('/a', false);
  }
  const got = new Map<string, { uri: string; requests: number; errors5xx: number }>();
  hh.addTo(got);
  assert.equal(got.size, 4);
  assert.equal(got.get('/a')?.requests, 200, '/a is never evicted: 4 of every 8 requests');
});

test('windowed top: two half-window buckets, merged; idle windows empty out', () => {
  const w = new WindowedTopUris({ capacity: 8, windowMs: 60_000, now: 0 });
  w.add('/a', false);
  w.add('/a', true);
  w.add('/b', false);
  assert.deepEqual(w.top(10), [
    { uri: '/a', requests: 2, errors5xx: 1 },
    { uri: '/b', requests: 1, errors5xx: 0 },
  ]);
  const g0 = w.generation;
  w.rotate(10_000);
  assert.equal(w.generation, g0, 'no rotation inside the half-window');
  w.rotate(30_000);
  w.add('/b', false);
  w.add('/b', false);
  assert.deepEqual(
    w.top(10).map((u) => [u.uri, u.requests]),
    [
      ['/b', 3],
      ['/a', 2],
    ],
  );
  assert.equal(w.requests, 5);
  w.rotate(60_000);
  assert.deepEqual(w.top(10), [{ uri: '/b', requests: 2, errors5xx: 0 }], 'the first half-window is gone');
  w.rotate(200_000);
  assert.deepEqual(w.top(10), []);
  assert.equal(w.requests, 0);
  assert.ok(w.generation > g0);
});

test('uriRange: the path of a request line or URI, without the query string', () => {
  const out = new Int32Array(3);
  const path = (text: string, requestLine: boolean) => {
    if (!uriRange(text, 0, text.length, requestLine, out)) return undefined;
    const uri = text.slice(out[0], out[1]);
    assert.equal(out[2], hashRange(uri, 0, uri.length), `the hash of ${uri}`);
    return uri;
  };
  assert.equal(path('GET /a/b?x=1 HTTP/1.1', true), '/a/b');
  assert.equal(path('GET / HTTP/1.1', true), '/');
  assert.equal(path('GET /plain', true), '/plain');
  assert.equal(path('-', true), undefined);
  assert.equal(path('garbage', true), undefined);
  assert.equal(path('/x?y', false), '/x');
  assert.equal(path('-', false), undefined);
  assert.equal(path('?only', false), undefined);
});

test('the fold counts top URIs from $request, or $request_uri when logged; nothing without either', () => {
  const combined = new AccessLogFold([compileLogFormat(COMBINED_FORMAT)], {
    bounds: [1],
    topUris: { capacity: 64, windowMs: 60_000 },
  });
  combined.consume(
    [
      '1.2.3.4 - - [24/Nov/2026:00:00:00 +0000] "GET /a?q=1 HTTP/1.1" 200 1 "-" "ua"',
      '1.2.3.4 - - [24/Nov/2026:00:00:00 +0000] "GET /a HTTP/1.1" 502 1 "-" "ua"',
      '1.2.3.4 - - [24/Nov/2026:00:00:00 +0000] "POST /caf\\xC3\\xA9 HTTP/1.1" 201 1 "-" "ua"',
      '',
    ].join('\n'),
  );
  assert.ok(combined.logsUri);
  assert.deepEqual(combined.topUris?.top(10), [
    { uri: '/a', requests: 2, errors5xx: 1 },
    { uri: '/caf\\xC3\\xA9', requests: 1, errors5xx: 0 },
  ]);
  const uriFormat = new AccessLogFold([compileLogFormat('$request_uri $status "$request"')], {
    bounds: [1],
    topUris: { capacity: 64, windowMs: 60_000 },
  });
  uriFormat.consume('/r?x 200 "GET /ignored HTTP/1.1"\n');
  assert.deepEqual(uriFormat.topUris?.top(10), [{ uri: '/r', requests: 1, errors5xx: 0 }]);
  const none = new AccessLogFold([compileLogFormat('$remote_addr $status')], {
    bounds: [1],
    topUris: { capacity: 64, windowMs: 60_000 },
  });
  none.consume('1.2.3.4 200\n');
  assert.equal(none.logsUri, false);
  assert.deepEqual(none.topUris?.top(10), []);
});

test('windowed top: past EXACT_PER_HALF_WINDOW requests it samples; totals stay exact and estimates close', () => {
  const w = new WindowedTopUris({ capacity: 8, windowMs: 60_000, now: 0 });
  const n = 20 * EXACT_PER_HALF_WINDOW;
  // A strictly periodic pattern: sampling at a fixed stride would see one URI only.
  const pattern = ['/a', '/a', '/a', '/a', '/a', '/b', '/b', '/b', '/c', '/c'];
  for (let i = 0; i < n; i++) w.add(pattern[i % pattern.length], false);
  assert.equal(w.requests, n);
  const top = w.top(10);
  const share = (uri: string) => (top.find((u) => u.uri === uri)?.requests ?? 0) / n;
  assert.ok(Math.abs(share('/a') - 0.5) < 0.03, `/a ${share('/a')}`);
  assert.ok(Math.abs(share('/b') - 0.3) < 0.03, `/b ${share('/b')}`);
  assert.ok(Math.abs(share('/c') - 0.2) < 0.03, `/c ${share('/c')}`);
});
