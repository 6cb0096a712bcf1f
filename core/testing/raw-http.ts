/** Raw-socket HTTP for tests that send what a well-behaved client would not (bad request lines, odd bytes). */
import { connect } from 'node:net';

export interface RawAnswer {
  /** Everything the server sent before it closed the connection. */
  text: string;
  /** Status code of the first response ('' when nothing came back). */
  status: number | undefined;
  /** How the connection ended: 'end' (the server closed after answering), 'reset', 'timeout'. */
  ending: 'end' | 'reset' | 'timeout';
}

/**
 * Writes `bytes` to host:port and collects the answer until the server closes the connection (send
 * `Connection: close` in well-formed requests), the connection is reset, or `timeoutMs` passes.
 */
export function rawRequest(
  port: number,
  bytes: string | Buffer,
  timeoutMs = 10_000,
  host = '127.0.0.1',
): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (ending: RawAnswer['ending']) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ text, status: m ? Number(m[1]) : undefined, ending });
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    socket.on('connect', () => socket.end(bytes));
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('end', () => finish('end'));
    socket.on('close', () => finish('end'));
    socket.on('error', () => finish('reset'));
  });
}
