import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { HistogramMetric, NumberPoint } from '../../core/metrics/model.js';
import { TIMED_FORMAT } from '../../core/testing/nginx.js';
import { AccessLogFold, parseNumber } from './access-fold.js';
import { ErrorLogFold, parseErrorLine } from './error-fold.js';
import { compileLogFormat, COMBINED_FORMAT, LogFormatError, unescapeValue } from './log-format.js';

const testdata = join(import.meta.dirname, 'testdata');
const BOUNDS = [0.01, 0.1, 1];

test('combined: every $variable becomes a field, by name', () => {
  const f = compileLogFormat('combined');
  assert.equal(f.format, COMBINED_FORMAT);
  assert.deepEqual(f.fields, [
    'remote_addr',
    'remote_user',
    'time_local',
    'request',
    'status',
    'body_bytes_sent',
    'http_referer',
    'http_user_agent',
  ]);
  const r = f.parse(
    '192.0.2.2 - alice [24/Nov/2026:07:46:01 +0000] "POST /api/v1/items?x=1 HTTP/1.1" 201 45 "https://example.com/a b" "Mozilla/5.0 (X11; Linux x86_64)"',
  );
  assert.deepEqual(r, {
    remote_addr: '192.0.2.2',
    remote_user: 'alice',
    time_local: '24/Nov/2026:07:46:01 +0000',
    request: 'POST /api/v1/items?x=1 HTTP/1.1',
    status: '201',
    body_bytes_sent: '45',
    http_referer: 'https://example.com/a b',
    http_user_agent: 'Mozilla/5.0 (X11; Linux x86_64)',
  });
});

test('lines that do not match the format give null', () => {
  const f = compileLogFormat('combined');
  assert.equal(f.parse('this line is not a log line'), null);
  assert.equal(f.parse('192.0.2.1 - - [24/Nov/2026:07:46:00 +0000] "GET / HTTP/1.1" 200 612 "-"'), null);
  assert.equal(f.parse(''), null);
});

test('custom formats: ${var}, unknown variables kept as strings, unquoted time_local with its space', () => {
  const f = compileLogFormat(
    '${remote_addr}|$time_local $status $my_custom_var rt=$request_time ups=$upstream_response_time',
  );
  assert.deepEqual(f.fields, [
    'remote_addr',
    'time_local',
    'status',
    'my_custom_var',
    'request_time',
    'upstream_response_time',
  ]);
  assert.deepEqual(f.parse('10.0.0.1|24/Nov/2026:07:46:01 +0000 503 anything-here rt=0.123 ups=0.001, 0.100 : 0.020'), {
    remote_addr: '10.0.0.1',
    time_local: '24/Nov/2026:07:46:01 +0000',
    status: '503',
    my_custom_var: 'anything-here',
    request_time: '0.123',
    upstream_response_time: '0.001, 0.100 : 0.020',
  });
});

test('the test nginx format (timed) parses with upstream lists and dashes', () => {
  const f = compileLogFormat(TIMED_FORMAT);
  const r = f.parse(
    '127.0.0.1 - - [24/Nov/2026:07:46:01 +0000] "GET /upstream-down HTTP/1.1" 502 157 "-" "node" 0.001 0.000, - - 0.000, 0.001',
  );
  assert.equal(r?.status, '502');
  assert.equal(r?.request_time, '0.001');
  assert.equal(r?.upstream_connect_time, '0.000, -');
  assert.equal(r?.upstream_header_time, '-');
  assert.equal(r?.upstream_response_time, '0.000, 0.001');
  assert.equal(
    f.parse('127.0.0.1 - - [24/Nov/2026:07:46:01 +0000] "GET / HTTP/1.1" 200 1 "-" "node" 0.001 0.000 : 0.001 - -')
      ?.upstream_connect_time,
    '0.000 : 0.001',
  );
});

test('escape=default: \\xHH decoded (UTF-8 when valid), escape=json: JSON escapes, and a \\" does not end a JSON field', () => {
  assert.equal(unescapeValue('Mozilla \\x22quoted\\x22', 'default'), 'Mozilla "quoted"');
  assert.equal(unescapeValue('caf\\xC3\\xA9', 'default'), 'café');
  assert.equal(unescapeValue('\\xFC\\x03', 'default'), '\u00fc\u0003');
  assert.equal(unescapeValue('a\\x22b', 'none'), 'a\\x22b');
  const j = compileLogFormat('{"ua":"$http_user_agent","status":$status}', { escape: 'json' });
  assert.deepEqual(j.parse('{"ua":"say \\"hi\\" \\u00e9\\\\","status":200}'), {
    http_user_agent: 'say "hi" é\\',
    status: '200',
  });
  const lead = compileLogFormat('escape=json {"ua":"$http_user_agent"}');
  assert.equal(lead.escape, 'json');
  assert.deepEqual(lead.parse('{"ua":"a\\"b"}'), { http_user_agent: 'a"b' });
  const d = compileLogFormat('combined');
  const lines = readFileSync(join(testdata, 'combined.log'), 'utf8').split('\n');
  assert.equal(d.parse(lines[2])?.http_user_agent, 'Mozilla/5.0 "quoted"');
  assert.equal(d.parse(lines[6])?.http_user_agent, 'café');
});

test('a format with an unclosed ${ is an error that names the offset', () => {
  assert.throws(
    () => compileLogFormat('$status ${oops'),
    (e: unknown) => e instanceof LogFormatError && /offset 8/.test((e as Error).message),
  );
});

test('parseNumber reads decimals and rejects dashes and junk', () => {
  const n = (s: string) => parseNumber(s, 0, s.length);
  assert.equal(n('0.123'), 0.123);
  assert.equal(n('12'), 12);
  assert.ok(Number.isNaN(n('-')));
  assert.ok(Number.isNaN(n('')));
  assert.ok(Number.isNaN(n('1.2x')));
});

function points(m: ReturnType<AccessLogFold['metrics']>, name: string): NumberPoint[] {
  return (m.find((x) => x.name === name)?.points ?? []) as NumberPoint[];
}

test('the fold counts responses by status range and method, bytes, and malformed lines from the fixture', () => {
  const fold = new AccessLogFold([compileLogFormat('combined')], { bounds: BOUNDS, startTime: 1 });
  fold.consume(readFileSync(join(testdata, 'combined.log'), 'utf8'));
  assert.equal(fold.lines, 8);
  assert.equal(fold.malformed, 2, 'the junk line and the 999 status');
  const m = fold.metrics();
  const resp = points(m, 'nginx.http.responses').map(
    (p) => `${p.attributes['http.request.method']} ${p.attributes.status_range} ${p.value}`,
  );
  assert.deepEqual(resp.sort(), ['DELETE 5xx 1', 'GET 2xx 1', 'GET 4xx 1', 'POST 2xx 1', '_OTHER 4xx 2'].sort());
  assert.equal(points(m, 'nginx.http.response.bytes')[0].value, 612 + 45 + 153 + 157 + 0 + 166);
  assert.equal(points(m, 'nginx.log.lines.malformed')[0].value, 2);
  assert.equal(
    m.find((x) => x.name === 'nginx.http.request.time'),
    undefined,
    'combined has no $request_time',
  );
});

test('the fold reads request and upstream time lists into histograms (one observation per upstream tried)', () => {
  const fold = new AccessLogFold([compileLogFormat(TIMED_FORMAT)], { bounds: BOUNDS, startTime: 1 });
  fold.consume(
    [
      '127.0.0.1 - - [24/Nov/2026:07:46:01 +0000] "GET /a HTTP/1.1" 200 10 "-" "x" 0.005 - - -',
      '127.0.0.1 - - [24/Nov/2026:07:46:01 +0000] "GET /b HTTP/1.1" 502 10 "-" "x" 0.050 0.001, 0.002 -, - 0.003, 0.004',
      '127.0.0.1 - - [24/Nov/2026:07:46:01 +0000] "GET /c HTTP/1.1" 200 10 "-" "x" 2.000 0.000 : 0.020 1.500 1.900',
      '',
    ].join('\n'),
  );
  assert.equal(fold.malformed, 0);
  const m = fold.metrics();
  const h = (name: string) => m.find((x) => x.name === name) as HistogramMetric;
  assert.deepEqual(h('nginx.http.request.time').points[0].buckets, [1, 1, 0, 1]);
  assert.equal(h('nginx.http.request.time').points[0].sum, 2.055);
  assert.equal(h('nginx.upstream.connect.time').points[0].count, 4);
  assert.equal(h('nginx.upstream.header.time').points[0].count, 1);
  assert.deepEqual(h('nginx.upstream.response.time').points[0].buckets, [2, 0, 0, 1]);
});

test('a file with two formats: each line is tried against both', () => {
  const fold = new AccessLogFold([compileLogFormat('combined'), compileLogFormat('$status $request_time')], {
    bounds: BOUNDS,
  });
  fold.consume('204 0.001\n192.0.2.1 - - [24/Nov/2026:07:46:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"\n304 0.002\n');
  assert.equal(fold.malformed, 0);
  assert.equal(
    fold.responses.reduce((a, b) => a + b, 0),
    3,
  );
  assert.equal(fold.requestTime.count, 2);
});

test('error log: levels, upstream failures, severe lines handed over, other lines malformed', () => {
  const severe: string[] = [];
  const fold = new ErrorLogFold((l) => severe.push(`${l.level}: ${l.message}`), { startTime: 1 });
  fold.consume(readFileSync(join(testdata, 'error.log'), 'utf8'));
  assert.equal(fold.lines, 9);
  assert.equal(fold.malformed, 1);
  assert.deepEqual(Object.fromEntries(fold.byLevel), {
    emerg: 1,
    alert: 0,
    crit: 1,
    error: 3,
    warn: 1,
    notice: 2,
    info: 0,
    debug: 0,
  });
  assert.deepEqual(Object.fromEntries(fold.upstream), { timed_out: 1, connect_refused: 1, no_live_upstreams: 1 });
  assert.deepEqual(severe, [
    'crit: *13 open() "/x" failed (13: Permission denied)',
    'emerg: bind() to 0.0.0.0:80 failed (98: Address already in use)',
  ]);
  const l = parseErrorLine('2026/11/24 07:46:00 [warn] 7#8: hello');
  assert.equal(l?.pid, 7);
  assert.equal(l?.time, new Date(2026, 10, 24, 7, 46, 0).getTime());
});
