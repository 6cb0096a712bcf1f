/**
 * Events benchmark: the event pipeline at a sustained rate with two SSE clients on its stream.
 * Run: node --import tsx scripts/bench/events.ts [--rate 100000] [--seconds 10] [--keys 1000]
 *
 * In this process: the bus, the event pipeline as the agent builds it (ring of events.buffer_size,
 * the log sink writing JSON through pino to /dev/null, the stream), and the API server on a free
 * port. Messages are published on `event.bench` at `--rate` per second (in 1 ms-spaced bursts) with
 * `--keys` distinct keys, so they go bus -> conversion -> ring -> sinks as any plugin's events do.
 * Two child processes read GET /v1/events/stream: a fast one that reads everything and counts the
 * frames, and a slow one that reads 16 KiB every 100 ms (160 KiB/s, a fraction of the stream) and
 * parses what it reads.
 *
 * Printed: events published and recorded per second, what each sink dropped, the fast client's
 * count, the slow client's fate (events read, then the disconnect event and its reason), and the
 * RSS before the run, at its peak and after it.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { request } from 'node:http';
import pino from 'pino';
import { ApiServer } from '../../core/api/server.js';
import { Bus } from '../../core/bus/bus.js';
import { EventPipeline } from '../../core/events/pipeline.js';
import { SseParser } from '../../core/events/sse-client.js';

const argv = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : def;
};

if (argv[0] === '--client') {
  await client(argv[1], argv[2]);
} else {
  await bench();
}

/** A stream reader in its own process: `fast` parses everything; `slow` reads 16 KiB every 100 ms. Prints one JSON line. */
async function client(kind: string, url: string): Promise<void> {
  let events = 0;
  let reason: string | undefined;
  let bytes = 0;
  const parser = new SseParser({
    onFrame: (f) => {
      if (f.event === 'disconnect') reason = (JSON.parse(f.data) as { reason: string }).reason;
      else {
        JSON.parse(f.data);
        events++;
      }
    },
  });
  const report = () => process.stdout.write(`${JSON.stringify({ kind, events, bytes, reason: reason ?? null })}\n`);
  let finish: (() => void) | undefined;
  // Told to stop: read what is left at full speed (a disconnected client finds the final event there).
  process.on('SIGTERM', () => (finish ? finish() : (report(), process.exit(0))));
  await new Promise<void>((done) => {
    const req = request(url, (res) => {
      res.setEncoding('utf8');
      if (kind === 'fast') {
        // Counts frames without parsing their JSON (it checks the last one): the reader should not be the bottleneck.
        let tail = '';
        res.on('data', (d: string) => {
          bytes += d.length;
          const text = tail + d;
          let i = text.indexOf('\nid: ');
          while (i >= 0) {
            events++;
            i = text.indexOf('\nid: ', i + 5);
          }
          if (text.includes('event: disconnect')) parser.push(text.slice(text.indexOf('event: disconnect')));
          tail = text.slice(-4);
        });
      } else {
        res.pause();
        const timer = setInterval(() => {
          let chunk: string | null;
          let taken = 0;
          while (taken < 16 * 1024 && (chunk = res.read(Math.min(4096, 16 * 1024 - taken)) as string | null) !== null) {
            taken += chunk.length;
            bytes += chunk.length;
            parser.push(chunk);
          }
        }, 100);
        res.on('end', () => clearInterval(timer));
        res.on('close', () => clearInterval(timer));
        finish = () => {
          clearInterval(timer);
          res.on('data', (d: string) => {
            bytes += d.length;
            parser.push(d);
          });
          res.resume();
          setTimeout(() => res.destroy(), 5000).unref();
        };
      }
      res.on('end', done);
      res.on('close', done);
    });
    req.on('error', () => done());
    req.end();
  });
  report();
}

async function bench(): Promise<void> {
  const rate = Number(arg('rate', '100000'));
  const seconds = Number(arg('seconds', '10'));
  const keys = Number(arg('keys', '1000'));
  const mb = (n: number) => `${(n / 1048576).toFixed(0)} MB`;
  const logger = pino({ level: 'info' }, createWriteStream('/dev/null'));
  const bus = new Bus({ logger });
  const config = {
    buffer_size: 10_000,
    log_repeat_interval: 600_000,
    queue_size: 10_000,
    stream_queue_size: 10_000,
    alertmanager: { url: '', min_severity: 'warning' as const, resend_interval: 60_000, timeout: 5000 },
  };
  const pipeline = new EventPipeline({ bus, config, logger, hostname: 'bench', busQueueSize: 10_000 });
  const api = new ApiServer({ host: '127.0.0.1', port: 0, token: '', logger });
  pipeline.routes(api);
  const { port } = await api.listen();
  const url = `http://127.0.0.1:${port}/v1/events/stream`;

  const results: Record<string, { events: number; bytes: number; reason: string | null }> = {};
  const children = ['fast', 'slow'].map((kind) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', new URL(import.meta.url).pathname, '--client', kind, url],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const done = new Promise<void>((r) =>
      child.on('exit', () => {
        if (out.trim()) results[kind] = JSON.parse(out.trim().split('\n').at(-1) as string);
        r();
      }),
    );
    return { kind, child, done };
  });
  const start = Date.now();
  while (pipeline.health().stream.details?.clients !== 2) {
    if (Date.now() - start > 30_000) throw new Error('the two stream clients did not connect within 30 s');
    await new Promise((r) => setTimeout(r, 50));
  }

  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  console.log(
    `events benchmark: ${rate.toLocaleString('en-US')} events/s for ${seconds} s, ${keys} keys, ring ${config.buffer_size}, ` +
      `stream queue ${config.stream_queue_size} per client, node ${process.version}`,
  );
  let published = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let slowGoneAt: number | undefined;
  while (performance.now() < end) {
    const due = Math.floor(((performance.now() - t0) / 1000) * rate);
    // At most 500 per turn of the event loop (the bus delivers up to 1,024 per subscriber per turn),
    // so a late timer does not dump a backlog into the bus at once.
    const until = Math.min(due, published + 500);
    while (published < until) {
      const n = published++;
      bus.publish('event.bench', { key: `bench-${n % keys}`, severity: n % 10 === 0 ? 'warning' : 'info', n });
    }
    if (slowGoneAt === undefined && pipeline.health().stream.details?.clients === 1)
      slowGoneAt = performance.now() - t0;
    if (published % 20_000 < 500) rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    await new Promise((r) => (published < due ? setImmediate(r) : setTimeout(r, 1)));
  }
  const publishSecs = (performance.now() - t0) / 1000;
  await bus.drain(30_000);
  await pipeline.health();
  const recordSecs = (performance.now() - t0) / 1000;
  const recorded = pipeline.log.lastId;
  const cpu = process.cpuUsage(cpu0);
  rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  // Let the fast client read what is in flight, then stop both.
  const lastId = recorded;
  await new Promise((r) => setTimeout(r, 2000));
  for (const c of children) c.child.kill('SIGTERM');
  await Promise.all(children.map((c) => c.done));
  const sinks = pipeline.health();
  const busDropped = bus.stats().subscribers.find((s) => s.name === 'events')?.dropped ?? 0;
  await pipeline.close(1000);
  await api.close();
  global.gc?.();
  await new Promise((r) => setTimeout(r, 200));
  const rssAfter = process.memoryUsage().rss;

  console.log(
    `published ${published.toLocaleString('en-US')} in ${publishSecs.toFixed(1)} s = ${Math.round(published / publishSecs).toLocaleString('en-US')}/s; ` +
      `recorded ${recorded.toLocaleString('en-US')} (all in ${recordSecs.toFixed(1)} s = ${Math.round(recorded / recordSecs).toLocaleString('en-US')}/s); ` +
      `bus drops before the pipeline ${busDropped}`,
  );
  for (const [name, r] of Object.entries(sinks))
    console.log(
      `  sink ${name.padEnd(6)} dropped ${r.dropped}, queued ${r.queued}, ${JSON.stringify(r.details ?? {})}`,
    );
  const fast = results.fast;
  const slow = results.slow;
  console.log(
    `fast client: ${fast?.events.toLocaleString('en-US')} of ${lastId.toLocaleString('en-US')} events, ${mb(fast?.bytes ?? 0)} read, ${fast?.reason ? `disconnected: ${fast.reason}` : 'still connected'}`,
  );
  console.log(
    `slow client: ${slow?.events.toLocaleString('en-US')} events (${((slow?.bytes ?? 0) / 1024).toFixed(0)} KiB) read, ` +
      `${slow?.reason ? `disconnected after ${((slowGoneAt ?? 0) / 1000).toFixed(2)} s with: ${slow.reason}` : 'never disconnected'}`,
  );
  console.log(
    `CPU of this process (publisher, bus, pipeline, log sink, stream writes): ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s, ` +
      `${((cpu.user + cpu.system) / recorded).toFixed(2)} µs per event`,
  );
  console.log(`RSS before ${mb(rssBefore)}, peak ${mb(rssPeak)}, after ${mb(rssAfter)}`);
  process.exit(0);
}
