/**
 * nginx config parser with crossplane's JSON output shape.
 *
 * A hand-written char-code scanner (no regex per char) feeds a stack-based parser. Parsing never
 * stops at the first error: each error is recorded with its file and line and the parser carries on,
 * like `crossplane parse`. Directive names are never validated (third-party modules exist).
 */
import { readdir, readFile as fsReadFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { ConfigDirective, ConfigFile, ConfigFileError, ConfigPayload, ConfigPayloadError } from '../types.js';

/** Options of {@link parseNginxConfig}. */
export interface ParseOptions {
  /** nginx prefix (-p): a relative confPath is resolved against it. */
  prefix?: string;
  /** Directory relative `include` paths are resolved against; default: dirname of the main config. */
  confDir?: string;
  /** Reads one file (injected for tests); default: fs.readFile as UTF-8. */
  readFile?: (p: string) => Promise<string>;
  /** Emit `#` comments as directives `{directive:'#', comment}`. */
  comments?: boolean;
  /** Do not follow `include` directives. */
  singleFile?: boolean;
}

/** Result of parsing one text: directives, errors, and the include directives found. */
export interface ParsedText {
  parsed: ConfigDirective[];
  errors: ConfigFileError[];
  /** `include` directives in the order found (their `includes` is filled by the caller). */
  includes: ConfigDirective[];
}

const SP = 32,
  TAB = 9,
  NL = 10,
  CR = 13,
  FF = 12,
  VT = 11;
const SEMI = 59,
  LBRACE = 123,
  RBRACE = 125,
  HASH = 35,
  DQ = 34,
  SQ = 39,
  BSL = 92,
  DOLLAR = 36;
const DASH = 45,
  LBRACKET = 91;

const T_WORD = 1,
  T_SEMI = 2,
  T_LBRACE = 3,
  T_RBRACE = 4,
  T_COMMENT = 5,
  T_EOF = 6;

/** Char-code scanner over one file's text. */
class Scanner {
  pos = 0;
  line = 1;
  /** Value of the last word/comment token. */
  value = '';
  /** Line where the last token started. */
  tokLine = 1;
  constructor(private readonly s: string) {}

  next(): number {
    const s = this.s;
    const n = s.length;
    let i = this.pos;
    // skip whitespace
    for (;;) {
      if (i >= n) {
        this.pos = i;
        this.tokLine = this.line;
        return T_EOF;
      }
      const c = s.charCodeAt(i);
      if (c === NL) this.line++;
      else if (c !== SP && c !== TAB && c !== CR && c !== FF && c !== VT) break;
      i++;
    }
    this.tokLine = this.line;
    const c = s.charCodeAt(i);
    if (c === SEMI) {
      this.pos = i + 1;
      return T_SEMI;
    }
    if (c === LBRACE) {
      this.pos = i + 1;
      return T_LBRACE;
    }
    if (c === RBRACE) {
      this.pos = i + 1;
      return T_RBRACE;
    }
    if (c === HASH) {
      let j = s.indexOf('\n', i + 1);
      if (j < 0) j = n;
      let end = j;
      if (end > i + 1 && s.charCodeAt(end - 1) === CR) end--;
      this.value = s.slice(i + 1, end);
      this.pos = j;
      return T_COMMENT;
    }
    if (c === DQ || c === SQ) return this.quoted(i, c);
    // bare word: ends at whitespace, ; { } ; `\x` kept as two chars; `${...}` kept whole
    const start = i;
    while (i < n) {
      const d = s.charCodeAt(i);
      if (
        d === SP ||
        d === NL ||
        d === TAB ||
        d === CR ||
        d === SEMI ||
        d === LBRACE ||
        d === RBRACE ||
        d === FF ||
        d === VT
      )
        break;
      if (d === BSL) {
        if (i + 1 < n && s.charCodeAt(i + 1) === NL) this.line++;
        i += 2;
        continue;
      }
      if (d === DOLLAR && i + 1 < n && s.charCodeAt(i + 1) === LBRACE) {
        const close = s.indexOf('}', i + 2);
        if (close >= 0) {
          for (let k = i + 2; k < close; k++) if (s.charCodeAt(k) === NL) this.line++;
          i = close + 1;
          continue;
        }
      }
      i++;
    }
    if (i > n) i = n;
    this.value = s.slice(start, i);
    this.pos = i;
    return T_WORD;
  }

  /** A quoted string: `\<quote>` becomes the quote, other escapes are kept as written. */
  private quoted(i: number, q: number): number {
    const s = this.s;
    const n = s.length;
    let out = '';
    let from = i + 1;
    let j = i + 1;
    while (j < n) {
      const d = s.charCodeAt(j);
      if (d === BSL && j + 1 < n) {
        const e = s.charCodeAt(j + 1);
        if (e === q) {
          out += s.slice(from, j);
          from = j + 1; // keep the quote char only
        } else if (e === NL) this.line++;
        j += 2;
        continue;
      }
      if (d === NL) this.line++;
      if (d === q) break;
      j++;
    }
    out += s.slice(from, j);
    this.value = out;
    this.pos = j < n ? j + 1 : n;
    return T_WORD;
  }

  /**
   * Reads a Lua body after `{` up to its matching `}` (strings, `--` comments and `[[...]]` long
   * brackets are skipped). Returns null when the file ends first.
   */
  luaBody(): string | null {
    const s = this.s;
    const n = s.length;
    const start = this.pos;
    let depth = 1;
    let i = start;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === NL) {
        this.line++;
        i++;
        continue;
      }
      if (c === DQ || c === SQ) {
        i++;
        while (i < n) {
          const d = s.charCodeAt(i);
          if (d === BSL) {
            if (s.charCodeAt(i + 1) === NL) this.line++;
            i += 2;
            continue;
          }
          if (d === NL) this.line++;
          i++;
          if (d === c) break;
        }
        continue;
      }
      if (c === LBRACKET && s.charCodeAt(i + 1) === LBRACKET) {
        const close = s.indexOf(']]', i + 2);
        const end = close < 0 ? n : close + 2;
        for (let k = i; k < end; k++) if (s.charCodeAt(k) === NL) this.line++;
        i = end;
        continue;
      }
      if (c === DASH && s.charCodeAt(i + 1) === DASH) {
        if (s.charCodeAt(i + 2) === LBRACKET && s.charCodeAt(i + 3) === LBRACKET) {
          const close = s.indexOf(']]', i + 4);
          const end = close < 0 ? n : close + 2;
          for (let k = i; k < end; k++) if (s.charCodeAt(k) === NL) this.line++;
          i = end;
          continue;
        }
        const nl = s.indexOf('\n', i);
        i = nl < 0 ? n : nl;
        continue;
      }
      if (c === LBRACE) depth++;
      else if (c === RBRACE) {
        depth--;
        if (depth === 0) {
          this.pos = i + 1;
          return s.slice(start, i);
        }
      }
      i++;
    }
    this.pos = n;
    return null;
  }
}

/** crossplane strips the parentheses of `if (...)` from the first and last argument. */
function prepareIfArgs(d: ConfigDirective): void {
  const a = d.args;
  if (a.length === 0) return;
  if (a[0].charCodeAt(0) === 40 /* ( */ && a[a.length - 1].endsWith(')')) {
    a[0] = a[0].slice(1);
    a[a.length - 1] = a[a.length - 1].slice(0, -1);
    if (a[a.length - 1] === '') a.pop();
    if (a.length && a[0] === '') a.shift();
  }
}

/**
 * Parses one config text (no file access). Includes are listed, not followed.
 * Every error carries its line; parsing goes on after each one.
 */
export function parseNginxTextDetailed(text: string, opts: { comments?: boolean } = {}): ParsedText {
  const sc = new Scanner(text);
  const errors: ConfigFileError[] = [];
  const includes: ConfigDirective[] = [];
  const root: ConfigDirective[] = [];
  const stack: ConfigDirective[][] = [];
  let list = root;
  let cur: ConfigDirective | null = null;
  const finish = (d: ConfigDirective): void => {
    if (d.directive === 'if') prepareIfArgs(d);
    else if (d.directive === 'include') includes.push(d);
  };
  for (;;) {
    const t = sc.next();
    if (t === T_WORD) {
      if (cur === null) cur = { directive: sc.value, line: sc.tokLine, args: [] };
      else cur.args.push(sc.value);
    } else if (t === T_SEMI) {
      if (cur === null) errors.push({ line: sc.tokLine, error: 'unexpected ";"' });
      else {
        finish(cur);
        list.push(cur);
        cur = null;
      }
    } else if (t === T_LBRACE) {
      if (cur === null) {
        errors.push({ line: sc.tokLine, error: 'unexpected "{"' });
        // parse the anonymous block anyway so its braces stay balanced
        const anon: ConfigDirective[] = [];
        stack.push(list);
        list = anon;
        continue;
      }
      if (cur.directive.endsWith('_by_lua_block')) {
        const line = sc.line;
        const body = sc.luaBody();
        if (body === null) {
          errors.push({
            line: sc.line,
            error: `unexpected end of file, expecting "}" to close the "${cur.directive}" started on line ${line}`,
          });
          cur = null;
          continue;
        }
        cur.args.push(body);
        list.push(cur);
        cur = null;
        continue;
      }
      if (cur.directive === 'if') prepareIfArgs(cur);
      cur.block = [];
      list.push(cur);
      stack.push(list);
      list = cur.block;
      cur = null;
    } else if (t === T_RBRACE) {
      if (cur !== null) {
        errors.push({ line: cur.line, error: `directive "${cur.directive}" is not terminated by ";"` });
        finish(cur);
        list.push(cur);
        cur = null;
      }
      const up = stack.pop();
      if (up === undefined) errors.push({ line: sc.tokLine, error: 'unexpected "}"' });
      else list = up;
    } else if (t === T_COMMENT) {
      if (opts.comments) list.push({ directive: '#', line: sc.tokLine, args: [], comment: sc.value });
    } else {
      if (cur !== null)
        errors.push({
          line: sc.tokLine,
          error: `unexpected end of file, expecting ";" or "}" after "${cur.directive}" on line ${cur.line}`,
        });
      if (stack.length > 0) errors.push({ line: sc.tokLine, error: 'unexpected end of file, expecting "}"' });
      break;
    }
  }
  return { parsed: root, errors, includes };
}

/**
 * Parses one config text into crossplane's single-file shape (includes are not followed).
 * Pure: for tests on strings.
 */
export function parseNginxText(text: string, fileName: string): ConfigPayload {
  const r = parseNginxTextDetailed(text);
  const file: ConfigFile = {
    file: fileName,
    status: r.errors.length ? 'failed' : 'ok',
    errors: r.errors,
    parsed: r.parsed,
  };
  return {
    status: file.status,
    errors: r.errors.map((e) => ({ file: fileName, line: e.line, error: e.error })),
    config: [file],
  };
}

const ERRNO: Record<string, number> = { ENOENT: 2, EACCES: 13, EISDIR: 21, ENOTDIR: 20, ELOOP: 40, EMFILE: 24 };

/** nginx-style `open() "path" failed (2: No such file or directory)`. */
function openError(path: string, err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const code = e?.code ?? '';
  const text: Record<string, string> = {
    ENOENT: 'No such file or directory',
    EACCES: 'Permission denied',
    EISDIR: 'Is a directory',
    ENOTDIR: 'Not a directory',
    ELOOP: 'Too many levels of symbolic links',
  };
  if (code in ERRNO) return `open() "${path}" failed (${ERRNO[code]}: ${text[code] ?? code})`;
  return `open() "${path}" failed (${e?.message ?? String(err)})`;
}

function hasGlob(p: string): boolean {
  for (let i = 0; i < p.length; i++) {
    const c = p.charCodeAt(i);
    if (c === 42 || c === 63 || c === 91) return true; // * ? [
  }
  return false;
}

/** Compiles one path segment's glob (`*`, `?`, `[...]`) to a RegExp once. */
function globSegment(seg: string): RegExp {
  let re = '^';
  for (let i = 0; i < seg.length; i++) {
    const ch = seg[i];
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const close = seg.indexOf(']', i + 1);
      if (close < 0) re += '\\[';
      else {
        let cls = seg.slice(i + 1, close);
        if (cls.startsWith('!')) cls = `^${cls.slice(1)}`;
        re += `[${cls.replace(/\\/g, '\\\\')}]`;
        i = close;
      }
    } else re += ch.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`${re}$`);
}

/** Expands an absolute glob like glob(3): sorted, leading dots matched only explicitly, files only. */
async function expandGlob(pattern: string): Promise<string[]> {
  const segs = pattern.split('/').filter((s, i) => s !== '' || i === 0);
  let bases = ['/'];
  for (let k = 1; k < segs.length; k++) {
    const seg = segs[k];
    const last = k === segs.length - 1;
    const next: string[] = [];
    if (!hasGlob(seg)) {
      for (const b of bases) next.push(join(b, seg));
    } else {
      const re = globSegment(seg);
      const dotOk = seg.startsWith('.');
      for (const b of bases) {
        let names: string[];
        try {
          names = await readdir(b);
        } catch {
          continue;
        }
        names.sort();
        for (const name of names) if ((dotOk || !name.startsWith('.')) && re.test(name)) next.push(join(b, name));
      }
    }
    bases = next;
    if (last) break;
  }
  const out: string[] = [];
  for (const p of bases) {
    try {
      if ((await stat(p)).isFile()) out.push(p);
    } catch {
      /* vanished or dangling: glob(3) would not list it as a file nginx can open */
    }
  }
  return out;
}

/**
 * Parses the config at `confPath` and every file it includes into crossplane's `parse` shape.
 * Relative include paths resolve against `confDir` (default: the main config's directory, as nginx
 * does). Each included file is parsed once; `includes` holds indexes into `config[]`.
 */
export async function parseNginxConfig(confPath: string, opts: ParseOptions = {}): Promise<ConfigPayload> {
  const read = opts.readFile ?? ((p: string) => fsReadFile(p, 'utf8'));
  const main = isAbsolute(confPath) ? confPath : resolve(opts.prefix ?? process.cwd(), confPath);
  const confDir = opts.confDir ?? dirname(main);
  const config: ConfigFile[] = [];
  const errors: ConfigPayloadError[] = [];
  const index = new Map<string, number>();
  const texts: (string | undefined)[] = [];

  let mainText: string;
  try {
    mainText = await read(main);
  } catch (err) {
    const error = openError(main, err);
    return {
      status: 'failed',
      errors: [{ file: main, line: null, error }],
      config: [{ file: main, status: 'failed', errors: [{ line: null, error }], parsed: [] }],
    };
  }
  index.set(main, 0);
  texts.push(mainText);
  config.push({ file: main, status: 'ok', errors: [], parsed: [] });

  for (let fi = 0; fi < config.length; fi++) {
    const file = config[fi];
    const r = parseNginxTextDetailed(texts[fi] as string, { comments: opts.comments });
    texts[fi] = undefined;
    file.parsed = r.parsed;
    const errs: ConfigFileError[] = r.errors;
    if (!opts.singleFile) {
      for (const inc of r.includes) {
        inc.includes = [];
        if (inc.args.length !== 1) {
          errs.push({ line: inc.line, error: `invalid number of arguments in "include" directive` });
          continue;
        }
        const target = isAbsolute(inc.args[0]) ? inc.args[0] : resolve(confDir, inc.args[0]);
        const paths = hasGlob(target) ? await expandGlob(target) : [target];
        for (const p of paths) {
          const known = index.get(p);
          if (known !== undefined) {
            inc.includes.push(known);
            continue;
          }
          let text: string;
          try {
            text = await read(p);
          } catch (err) {
            errs.push({ line: inc.line, error: openError(p, err) });
            continue;
          }
          index.set(p, config.length);
          inc.includes.push(config.length);
          texts.push(text);
          config.push({ file: p, status: 'ok', errors: [], parsed: [] });
        }
      }
    }
    errs.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    file.errors = errs;
    file.status = errs.length ? 'failed' : 'ok';
    for (const e of errs) errors.push({ file: file.file, line: e.line, error: e.error });
  }
  return { status: errors.length ? 'failed' : 'ok', errors, config };
}
