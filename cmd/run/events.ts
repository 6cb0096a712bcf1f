/** `agent events` (see cmd/commands/events.ts): a table of events, or JSON lines; `--follow` streams. */
import type { AgentEvent } from '../../core/events/types.js';
import { agentEndpoint, askAgent } from '../commands/common.js';
import type { EventsFlags } from '../commands/events.js';
import { paint, useColor, type Paint } from './status.js';

const SEVERITY_NAMES = ['info', 'warning', 'error', 'critical'];

export async function events(opts: EventsFlags, out: (text: string) => void = (t) => process.stdout.write(t)) {
  if (opts.severity !== undefined && !SEVERITY_NAMES.includes(opts.severity))
    throw new Error(`--severity: "${opts.severity}" is not one of ${SEVERITY_NAMES.join(', ')}`);
  if (opts.limit !== undefined && !/^\d+$/.test(opts.limit))
    throw new Error(`--limit: "${opts.limit}" is not a non-negative integer`);
  const query = new URLSearchParams();
  for (const k of opts.kind ?? []) query.append('kind', k);
  if (opts.severity) query.set('severity', opts.severity);
  query.set('limit', opts.limit ?? '50');
  const body = JSON.parse(await askAgent(opts, `/v1/events?${query}`)) as { last_id: number; events: AgentEvent[] };
  const p = paint(!opts.json && useColor(process.stdout, process.env));
  const print = (e: AgentEvent) => out(opts.json ? `${JSON.stringify(e)}\n` : formatEventRow(e, p));
  if (!opts.json) out(p.bold(formatEventHeader()));
  for (const e of body.events) print(e);
  if (!opts.follow) {
    if (!opts.json && body.events.length === 0) out(p.dim('(no events)\n'));
    return;
  }
  query.delete('limit');
  await follow(opts, query, body.last_id, print);
}

/** Streams until Ctrl-C or the agent stops; a disconnect for slowness resumes from the last id seen. */
async function follow(
  opts: EventsFlags,
  query: URLSearchParams,
  lastId: number,
  print: (e: AgentEvent) => void,
): Promise<void> {
  const { openEventStream } = await import('../../core/events/sse-client.js');
  const { base, headers } = await agentEndpoint(opts);
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  let last = lastId;
  while (!controller.signal.aborted) {
    let reason: string | undefined;
    const opened = await openEventStream(`${base}/v1/events/stream?${query}`, {
      headers: { ...headers, 'Last-Event-ID': String(last) },
      signal: controller.signal,
      onFrame: (f) => {
        if (f.event === 'disconnect') {
          reason = (JSON.parse(f.data) as { reason?: string }).reason;
          return;
        }
        const e = JSON.parse(f.data) as AgentEvent;
        last = e.id;
        print(e);
      },
    }).catch((err: Error) => {
      throw new Error(`no agent answers at ${base} (${err.message}); is it running? start it with "agent start"`);
    });
    if (opened.status !== 200) throw new Error(`${base}/v1/events/stream answered ${opened.status}: ${opened.body}`);
    await opened.ended;
    if (controller.signal.aborted) return;
    if (!reason?.startsWith('client too slow')) {
      process.stderr.write(`agent: the event stream ended${reason ? `: ${reason}` : ''}\n`);
      process.exitCode = 1;
      return;
    }
    process.stderr.write(`agent: ${reason}; resuming after event ${last}\n`);
  }
}

const WIDTHS = { id: 6, time: 19, severity: 8, state: 8, kind: 30 };

export function formatEventHeader(): string {
  return `${'ID'.padStart(WIDTHS.id)}  ${'TIME'.padEnd(WIDTHS.time)}  ${'SEVERITY'.padEnd(WIDTHS.severity)}  ${'STATE'.padEnd(WIDTHS.state)}  ${'KIND'.padEnd(WIDTHS.kind)}  SUMMARY\n`;
}

/** One line per event: id, local time, severity, state, kind, summary (and the source when it is a plugin). */
export function formatEventRow(e: AgentEvent, p: Paint): string {
  const d = new Date(e.time);
  const pad = (n: number) => String(n).padStart(2, '0');
  const time = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const severity = e.severity.padEnd(WIDTHS.severity);
  const coloured = e.severity === 'info' ? severity : e.severity === 'warning' ? p.warn(severity) : p.bad(severity);
  const kind = e.kind.length > WIDTHS.kind ? `${e.kind.slice(0, WIDTHS.kind - 1)}…` : e.kind.padEnd(WIDTHS.kind);
  const state = (e.state ?? '-').padEnd(WIDTHS.state);
  const source = e.source.startsWith('wasm:') ? p.dim(` [${e.source}]`) : '';
  return `${String(e.id).padStart(WIDTHS.id)}  ${time}  ${coloured}  ${e.state === 'firing' ? p.warn(state) : state}  ${kind}  ${e.summary}${source}\n`;
}
