/**
 * nginx `log_format` compiler: turns a format string into a line scanner.
 *
 * The format is compiled once into literal separators and `$variable` fields. A line is scanned
 * left to right: each field ends where the literal that follows it starts (`indexOf`), so a line
 * costs a handful of `indexOf` calls and no regular expression. `scan` only records field
 * boundaries (no strings are made); `parse` builds an object of strings for callers that want one.
 */

/** How nginx escaped variable values in this format (`log_format name escape=...`). */
export type LogEscape = 'default' | 'json' | 'none';

/** nginx's predefined format. */
export const COMBINED_FORMAT =
  '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"';

/** Predefined format names nginx knows without a `log_format` directive. */
export const PREDEFINED_FORMATS: Readonly<Record<string, string>> = { combined: COMBINED_FORMAT };

/**
 * Values whose text has a known number of spaces: when such a field is followed by a literal that
 * starts with a space, the scan skips that many spaces first (`$time_local $status` still parses).
 */
const SPACES_IN: Readonly<Record<string, number>> = { time_local: 1, request: 2 };

/**
 * `$upstream_*` values are lists (`0.001, 0.002 : 0.003`, `-` for none): a space after `,` or
 * around `:` is inside the value, so `$upstream_connect_time $upstream_header_time` still splits.
 */
function isListVariable(name: string): boolean {
  return name.startsWith('upstream_');
}

export interface CompiledLogFormat {
  readonly format: string;
  readonly escape: LogEscape;
  /** Variable names in order, without `$` (a name may repeat). */
  readonly fields: readonly string[];
  /** Index of the first field with this name, or -1. */
  indexOf(name: string): number;
  /**
   * Finds the field boundaries of `line` (from `start` to `end`, default the whole string) into
   * `bounds` (`bounds[2i]` start, `bounds[2i+1]` end of field i, absolute offsets in `line`).
   * Returns false when the line does not match the format. Allocates nothing.
   */
  scan(line: string, bounds: Int32Array, start?: number, end?: number): boolean;
  /** The line's fields as strings (unescaped), or null when it does not match the format. */
  parse(line: string): Record<string, string> | null;
}

/** Thrown for a format string that cannot be compiled (names the position). */
export class LogFormatError extends Error {}

/**
 * Compiles an nginx `log_format` string (`$var` and `${var}`; `escape=` as nginx has it).
 * A format name that nginx predefines (`combined`) is accepted in place of the string, and a
 * leading `escape=json ` (the directive's parameter joined to the string) sets the escaping.
 */
export function compileLogFormat(format: string, opts: { escape?: LogEscape } = {}): CompiledLogFormat {
  // `escape=json '...'` as written in the directive: the parameter may arrive joined to the string.
  const lead = /^escape=(default|json|none)\s+/.exec(format);
  const body = lead ? format.slice(lead[0].length) : format;
  const text = PREDEFINED_FORMATS[body] ?? body;
  const escape = opts.escape ?? (lead?.[1] as LogEscape | undefined) ?? 'default';
  const literals: string[] = [];
  const fields: string[] = [];
  let lit = '';
  for (let i = 0; i < text.length; ) {
    const c = text[i];
    if (c === '$') {
      let name: string;
      let j: number;
      if (text[i + 1] === '{') {
        const close = text.indexOf('}', i + 2);
        if (close < 0)
          throw new LogFormatError(`log_format ${JSON.stringify(text)}: "\${" at offset ${i} has no closing "}"`);
        name = text.slice(i + 2, close);
        j = close + 1;
      } else {
        j = i + 1;
        while (j < text.length && /[A-Za-z0-9_]/.test(text[j])) j++;
        name = text.slice(i + 1, j);
      }
      if (!/^[A-Za-z0-9_]+$/.test(name)) {
        // nginx itself rejects this; keep a lone `$` as literal text rather than failing the log.
        lit += c;
        i++;
        continue;
      }
      literals.push(lit);
      fields.push(name);
      lit = '';
      i = j;
    } else {
      lit += c;
      i++;
    }
  }
  literals.push(lit);
  // literals[0] precedes field 0; literals[i + 1] follows field i; the last one ends the line.
  const n = fields.length;
  const lits = literals;
  const skipSpaces = fields.map((f, i) => (lits[i + 1].startsWith(' ') ? (SPACES_IN[f] ?? 0) : 0));
  const listSpace = fields.map((f, i) => lits[i + 1].startsWith(' ') && isListVariable(f));
  const jsonQuotes = escape === 'json';
  const first = new Map<string, number>();
  fields.forEach((f, i) => {
    if (!first.has(f)) first.set(f, i);
  });

  function findLiteral(line: string, sep: string, from: number, end: number, skip: number, list: boolean): number {
    let p = from;
    for (let s = 0; s < skip; s++) {
      const sp = line.indexOf(' ', p);
      if (sp < 0 || sp >= end) return -1;
      p = sp + 1;
    }
    for (;;) {
      const at = line.indexOf(sep, p);
      if (at < 0 || at + sep.length > end) return -1;
      if (list && insideList(line, at, from)) {
        p = at + 1;
        continue;
      }
      if (!jsonQuotes || sep.charCodeAt(0) !== 34 || !escapedAt(line, at, from)) return at;
      p = at + 1;
    }
  }

  function scan(line: string, bounds: Int32Array, start = 0, end = line.length): boolean {
    const head = lits[0];
    if (head.length && !line.startsWith(head, start)) return false;
    let pos = start + head.length;
    for (let i = 0; i < n; i++) {
      const sep = lits[i + 1];
      let stop: number;
      if (i === n - 1) {
        // The last field runs to the final literal, which must end the line.
        stop = end - sep.length;
        if (stop < pos || (sep.length && !line.startsWith(sep, stop))) return false;
      } else if (sep.length === 0) {
        stop = pos; // two fields with nothing between them: the first one is empty
      } else {
        stop = findLiteral(line, sep, pos, end, skipSpaces[i], listSpace[i]);
        if (stop < 0) return false;
      }
      bounds[2 * i] = pos;
      bounds[2 * i + 1] = stop;
      pos = stop + sep.length;
    }
    if (n === 0) return end - start === head.length;
    return true;
  }

  const scratch = new Int32Array(Math.max(2, 2 * n));
  return {
    format: text,
    escape,
    fields,
    indexOf: (name) => first.get(name) ?? -1,
    scan,
    parse(line) {
      let end = line.length;
      if (line.charCodeAt(end - 1) === 10) end--;
      if (!scan(line, scratch, 0, end)) return null;
      const out: Record<string, string> = {};
      for (let i = 0; i < n; i++) {
        const raw = line.slice(scratch[2 * i], scratch[2 * i + 1]);
        if (!(fields[i] in out)) out[fields[i]] = unescapeValue(raw, escape);
      }
      return out;
    },
  };
}

/** True when the space at `at` separates items of an upstream list (after `,` or next to `:`). */
function insideList(line: string, at: number, from: number): boolean {
  const prev = at > from ? line.charCodeAt(at - 1) : 0;
  return prev === 44 || prev === 58 || line.charCodeAt(at + 1) === 58;
}

/** True when the character at `at` is preceded by an odd number of backslashes (after `from`). */
function escapedAt(line: string, at: number, from: number): boolean {
  let k = 0;
  for (let p = at - 1; p >= from && line.charCodeAt(p) === 92; p--) k++;
  return (k & 1) === 1;
}

/**
 * Undoes nginx's escaping of a logged value: `\xHH` for `escape=default`, JSON string escapes for
 * `escape=json`, nothing for `escape=none`. Bytes from `\xHH` are decoded as UTF-8 when they form
 * valid UTF-8, else kept one character per byte.
 */
export function unescapeValue(raw: string, escape: LogEscape): string {
  if (escape === 'none' || raw.indexOf('\\') < 0) return raw;
  if (escape === 'json') {
    try {
      return JSON.parse(`"${raw}"`) as string;
    } catch {
      return raw;
    }
  }
  const bytes: number[] = [];
  let ascii = true;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 92 && raw[i + 1] === 'x' && /^[0-9A-Fa-f]{2}$/.test(raw.slice(i + 2, i + 4))) {
      const b = parseInt(raw.slice(i + 2, i + 4), 16);
      if (b > 0x7f) ascii = false;
      bytes.push(b);
      i += 3;
    } else if (c > 0x7f) {
      // Already-decoded text (a log read as UTF-8): keep its UTF-8 bytes.
      for (const b of Buffer.from(raw[i], 'utf8')) bytes.push(b);
      ascii = false;
    } else bytes.push(c);
  }
  const buf = Buffer.from(bytes);
  if (ascii) return buf.toString('latin1');
  const text = new TextDecoder('utf-8', { fatal: false }).decode(buf);
  return text.includes('\uFFFD') ? buf.toString('latin1') : text;
}
