import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, test } from 'node:test';
import pino from 'pino';
import { ApiServer } from '../api/server.js';
import { waitFor } from '../testing/nginx.js';
import { EventLog } from './log.js';
import { openEventStream, SseParser, type SseFrame } from './sse-client.js';
import { EventStream } from './stream.js';
import type { AgentEvent } from './types.js';

const logger = pino({ level: 'silent' });

async function serve(queueSize: number, heartbeatMs = 15_000) {
  const log = new EventLog({ capacity: 1000 });
  const stream = new EventStream({ log, queueSize, heartbeatMs, closeGraceMs: 30_000 });
  const api = new ApiServer({ host: '127.0.0.1', port: 0, token: '', logger });
  api.route('GET', '/v1/events/stream', (req) => stream.handle(req));
  const addr = await api.listen();
  after(async () => {
    stream.close();
    await api.close();
  });
  const record = (kind: string, severity: AgentEvent['severity'] = 'info', summary = kind) =>
    log.record({ kind, severity, source: 'test', key: kind, summary, attributes: {} });
  return { log, stream, url: `http://127.0.0.1:${addr.port}/v1/events/stream`, record };
}

function collect(url: string, headers: Record<string, string> = {}) {
  const frames: SseFrame[] = [];
  const comments: string[] = [];
  const controller = new AbortController();
  const opened = openEventStream(url, {
    headers,
    signal: controller.signal,
    onFrame: (f) => frames.push(f),
    onComment: (c) => comments.push(c),
  });
  after(() => controller.abort());
  return { frames, comments, opened, stop: () => controller.abort() };
}

const ids = (frames: SseFrame[]) => frames.filter((f) => f.event === 'message').map((f) => Number(f.id));

test('the stream sends live events matching the filters, heartbeats, and resumes after Last-Event-ID', async () => {
  const s = await serve(100, 200);
  s.record('event.before');
  const live = collect(`${s.url}?kind=alert.*&severity=warning`);
  assert.equal((await live.opened).status, 200);
  await waitFor(() => s.stream.clients === 1, 'the client attached');
  s.record('alert.a', 'info');
  s.record('alert.b', 'error', 'the one that passes');
  s.record('event.c', 'critical');
  await waitFor(() => live.frames.length === 1, 'one matching event');
  const event = JSON.parse(live.frames[0].data) as AgentEvent;
  assert.equal(event.kind, 'alert.b');
  assert.equal(event.summary, 'the one that passes');
  assert.equal(live.frames[0].id, String(event.id));
  await waitFor(() => live.comments.includes('heartbeat'), 'a heartbeat comment');

  // Resume: everything after id 2 that the ring holds, then live.
  const resumed = collect(s.url, { 'Last-Event-ID': '2' });
  await resumed.opened;
  await waitFor(() => ids(resumed.frames).length === 2, 'the replay');
  assert.deepEqual(ids(resumed.frames), [3, 4]);
  s.record('event.d');
  await waitFor(() => ids(resumed.frames).length === 3, 'the live event after the replay');
  assert.deepEqual(ids(resumed.frames), [3, 4, 5]);

  const bad = await collect(s.url, { 'Last-Event-ID': 'abc' }).opened;
  assert.equal(bad.status, 400);
  assert.match(bad.body ?? '', /Last-Event-ID: \\"abc\\" is not an event id/);
  const badKind = await collect(`${s.url}?severity=loud`).opened;
  assert.equal(badKind.status, 400);
});

test('a client that does not read is disconnected with a final event saying why; a reading client gets everything', async () => {
  const s = await serve(20);
  const fast = collect(s.url);
  await fast.opened;
  // The slow client: opens the stream and stops reading, so the socket's buffers fill.
  let slowResponse: import('node:http').IncomingMessage | undefined;
  const slowReq = request(s.url, { headers: { Accept: 'text/event-stream' } });
  slowReq.on('response', (res) => {
    slowResponse = res;
    res.pause();
  });
  slowReq.on('error', () => {});
  slowReq.end();
  after(() => slowReq.destroy());
  await waitFor(() => slowResponse !== undefined && s.stream.clients === 2, 'both clients attached');
  const big = 'x'.repeat(4096);
  let sent = 0;
  // Publish in slices, each once the fast client has read the previous one: it is never behind.
  while (s.stream.clients === 2 && sent < 20_000) {
    for (let i = 0; i < 5; i++, sent++) s.record('event.flood', 'info', big);
    await waitFor(() => ids(fast.frames).at(-1) === s.log.lastId, 'the fast client caught up', 30_000);
  }
  await waitFor(() => s.stream.clients === 1, 'the slow client disconnected');
  assert.equal(s.stream.report().details?.slow_disconnects, 1);
  assert.ok((s.stream.report().dropped ?? 0) > 0);
  const last = s.log.lastId;
  await waitFor(() => ids(fast.frames).at(-1) === last, 'the fast client received every event', 30_000);
  assert.equal(ids(fast.frames).length, last);

  // What the slow client finally reads ends with the disconnect event and its reason.
  const frames: SseFrame[] = [];
  const parser = new SseParser({ onFrame: (f) => frames.push(f) });
  assert.ok(slowResponse);
  const slow = slowResponse;
  slow.setEncoding('utf8');
  slow.on('data', (d: string) => parser.push(d));
  await new Promise<void>((done) => {
    slow.on('end', done);
    slow.resume();
  });
  const final = frames.at(-1);
  assert.equal(final?.event, 'disconnect');
  assert.match(JSON.parse(final?.data ?? '{}').reason, /client too slow: more than 20 events waiting/);
});

test('resume: events gone from the ring are named in a comment; an id from an earlier agent process replays everything', async () => {
  const s = await serve(2000);
  for (let i = 0; i < 1005; i++) s.record('event.x');
  // The ring holds 1000: ids 6..1005.
  const gap = collect(s.url, { 'Last-Event-ID': '2' });
  await gap.opened;
  await waitFor(() => ids(gap.frames).length === 1000, 'the ring replayed');
  assert.equal(ids(gap.frames)[0], 6);
  assert.ok(gap.comments.includes('events 3 to 5 are no longer in the buffer'), gap.comments.join('|'));
  const restarted = collect(s.url, { 'Last-Event-ID': '99999' });
  await restarted.opened;
  await waitFor(() => ids(restarted.frames).length === 1000, 'everything replayed');
  assert.ok(restarted.comments.some((c) => c.startsWith('event 99999 is from an earlier agent process')));
});
