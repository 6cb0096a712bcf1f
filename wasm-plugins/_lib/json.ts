/**
 * A small JSON reader and writer for AssemblyScript plugins (no dependency, no exceptions).
 *
 * `parseJson(bytes)` builds a tree of `JValue`s straight from the UTF-8 input bytes; on malformed
 * input it returns null and `lastJsonError()` says where. The writer helpers (`quote`, `num`)
 * produce compact JSON for publishing. Shared by the AssemblyScript plugins of this folder; it is
 * not a plugin (it has no plugin.yaml).
 */

export const J_NULL: u8 = 0;
export const J_BOOL: u8 = 1;
export const J_NUM: u8 = 2;
export const J_STR: u8 = 3;
export const J_ARR: u8 = 4;
export const J_OBJ: u8 = 5;

/** Arrays and objects deeper than this are refused (bounds recursion on hostile input). */
const MAX_DEPTH: i32 = 128;

/** One JSON value. Objects keep their keys in order; lookups are linear (objects here are small). */
export class JValue {
  kind: u8 = J_NULL;
  num: f64 = 0;
  flag: bool = false;
  str: string = "";
  /** Array items, or object values (parallel to `keys`). */
  items: Array<JValue> | null = null;
  keys: Array<string> | null = null;

  isObject(): bool {
    return this.kind == J_OBJ;
  }

  /** The member `key` of an object, or null (also when this is not an object). */
  get(key: string): JValue | null {
    const keys = this.keys;
    const items = this.items;
    if (this.kind != J_OBJ || keys === null || items === null) return null;
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] == key) return items[i];
    }
    return null;
  }

  /** The member `key` when it is a string, else `def`. */
  getString(key: string, def: string = ""): string {
    const v = this.get(key);
    return v !== null && v.kind == J_STR ? v.str : def;
  }

  /** The member `key` when it is a number, else `def`. */
  getNumber(key: string, def: f64 = 0): f64 {
    const v = this.get(key);
    return v !== null && v.kind == J_NUM ? v.num : def;
  }

  /** The member `key` when it is a boolean, else `def`. */
  getBool(key: string, def: bool = false): bool {
    const v = this.get(key);
    return v !== null && v.kind == J_BOOL ? v.flag : def;
  }

  /** The items of this array, or of member `key` when given; empty when not an array. */
  list(key: string | null = null): Array<JValue> {
    let v: JValue | null = this;
    if (key !== null) v = this.get(key);
    if (v === null || v.kind != J_ARR) return EMPTY;
    const items = v.items;
    return items === null ? EMPTY : items;
  }

  /** Object keys in input order (empty when not an object). */
  keyList(): Array<string> {
    const keys = this.keys;
    return this.kind == J_OBJ && keys !== null ? keys : EMPTY_KEYS;
  }
}

const EMPTY = new Array<JValue>(0);
const EMPTY_KEYS = new Array<string>(0);

let lastError: string = "";

/** Why the last `parseJson` returned null. */
export function lastJsonError(): string {
  return lastError;
}

/** Parses UTF-8 JSON text; null (with `lastJsonError()`) when it is not exactly one JSON value. */
export function parseJson(bytes: Uint8Array): JValue | null {
  const p = new Parser(bytes);
  const v = p.value(0);
  p.ws();
  if (!p.failed && p.pos != bytes.length) p.fail("trailing characters");
  if (p.failed) {
    lastError = p.error;
    return null;
  }
  return v;
}

/** Parses a JSON string (see `parseJson`). */
export function parseJsonString(text: string): JValue | null {
  return parseJson(Uint8Array.wrap(String.UTF8.encode(text)));
}

class Parser {
  pos: i32 = 0;
  failed: bool = false;
  error: string = "";
  interned: Map<u32, string> = new Map();
  shapes: Map<u32, Array<string>> = new Map();
  constructor(public buf: Uint8Array) {}

  fail(what: string): JValue {
    if (!this.failed) {
      this.failed = true;
      this.error = what + " at byte " + this.pos.toString();
    }
    this.pos = this.buf.length;
    return new JValue();
  }

  ws(): void {
    const b = this.buf;
    while (this.pos < b.length) {
      const c = b[this.pos];
      if (c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09) this.pos++;
      else break;
    }
  }

  value(depth: i32): JValue {
    this.ws();
    if (this.pos >= this.buf.length) return this.fail("unexpected end");
    const c = this.buf[this.pos];
    if (c == 0x7b) return this.object(depth + 1);
    if (c == 0x5b) return this.array(depth + 1);
    if (c == 0x22) {
      const v = new JValue();
      v.kind = J_STR;
      v.str = this.string();
      return v;
    }
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    if (this.word("true")) {
      const v = new JValue();
      v.kind = J_BOOL;
      v.flag = true;
      return v;
    }
    if (this.word("false")) {
      const v = new JValue();
      v.kind = J_BOOL;
      return v;
    }
    if (this.word("null")) return new JValue();
    return this.fail("unexpected character");
  }

  word(w: string): bool {
    const b = this.buf;
    if (this.pos + w.length > b.length) return false;
    for (let i = 0; i < w.length; i++) {
      if (<i32>b[this.pos + i] != w.charCodeAt(i)) return false;
    }
    this.pos += w.length;
    return true;
  }

  object(depth: i32): JValue {
    if (depth > MAX_DEPTH) return this.fail("nested too deep");
    this.pos++; // {
    const keys = new Array<string>();
    const items = new Array<JValue>();
    const v = new JValue();
    v.kind = J_OBJ;
    v.keys = keys;
    v.items = items;
    this.ws();
    if (this.pos < this.buf.length && this.buf[this.pos] == 0x7d) {
      this.pos++;
      return v;
    }
    while (!this.failed) {
      this.ws();
      if (this.pos >= this.buf.length || this.buf[this.pos] != 0x22) return this.fail("expected a key");
      keys.push(this.key());
      this.ws();
      if (this.pos >= this.buf.length || this.buf[this.pos] != 0x3a) return this.fail("expected ':'");
      this.pos++;
      items.push(this.value(depth));
      this.ws();
      if (this.pos >= this.buf.length) return this.fail("unexpected end in object");
      const c = this.buf[this.pos++];
      if (c == 0x7d) {
        v.keys = this.shareKeys(keys);
        return v;
      }
      if (c != 0x2c) return this.fail("expected ',' or '}'");
    }
    return v;
  }

  /**
   * One key list for every object with the same (interned) keys in the same order: the objects of
   * a parsed config or a metric batch share a handful of shapes.
   */
  shareKeys(keys: Array<string>): Array<string> {
    let hash: u32 = <u32>keys.length;
    for (let i = 0; i < keys.length; i++) hash = (hash ^ <u32>changetype<usize>(keys[i])) * 16777619;
    if (this.shapes.has(hash)) {
      const known = this.shapes.get(hash);
      if (known.length == keys.length) {
        let same = true;
        for (let i = 0; i < keys.length; i++) {
          if (changetype<usize>(known[i]) != changetype<usize>(keys[i])) {
            same = false;
            break;
          }
        }
        if (same) return known;
      }
    }
    this.shapes.set(hash, keys);
    return keys;
  }

  array(depth: i32): JValue {
    if (depth > MAX_DEPTH) return this.fail("nested too deep");
    this.pos++; // [
    const items = new Array<JValue>();
    const v = new JValue();
    v.kind = J_ARR;
    v.items = items;
    this.ws();
    if (this.pos < this.buf.length && this.buf[this.pos] == 0x5d) {
      this.pos++;
      return v;
    }
    while (!this.failed) {
      items.push(this.value(depth));
      this.ws();
      if (this.pos >= this.buf.length) return this.fail("unexpected end in array");
      const c = this.buf[this.pos++];
      if (c == 0x5d) return v;
      if (c != 0x2c) return this.fail("expected ',' or ']'");
    }
    return v;
  }

  /**
   * Reads an object key. Short plain ASCII keys are interned: a parsed config repeats
   * "directive", "line", "args" and "block" for every directive, and one copy of each keeps the
   * tree (and so the plugin's memory) much smaller.
   */
  key(): string {
    const b = this.buf;
    const start = this.pos + 1;
    let end = start;
    let hash: u32 = 2166136261;
    while (end < b.length && end - start <= 64) {
      const c = b[end];
      if (c == 0x22 || c == 0x5c || c >= 0x80 || c < 0x20) break;
      hash = (hash ^ c) * 16777619;
      end++;
    }
    if (end >= b.length || b[end] != 0x22 || end - start > 64) return this.string();
    const len = end - start;
    if (this.interned.has(hash)) {
      const k = this.interned.get(hash);
      if (k.length == len) {
        let same = true;
        for (let i = 0; i < len; i++) {
          if (<i32>b[start + i] != k.charCodeAt(i)) {
            same = false;
            break;
          }
        }
        if (same) {
          this.pos = end + 1;
          return k;
        }
      }
    }
    const k = this.slice(start, end);
    this.interned.set(hash, k);
    this.pos = end + 1;
    return k;
  }

  /** Reads a string starting at the opening quote; decodes escapes. */
  string(): string {
    const b = this.buf;
    this.pos++; // opening quote
    let start = this.pos;
    let out = "";
    while (this.pos < b.length) {
      const c = b[this.pos];
      if (c == 0x22) {
        out += this.slice(start, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) {
        this.fail("control character in string");
        return "";
      }
      if (c == 0x5c) {
        out += this.slice(start, this.pos);
        this.pos++;
        if (this.pos >= b.length) break;
        const e = b[this.pos++];
        if (e == 0x22) out += '"';
        else if (e == 0x5c) out += "\\";
        else if (e == 0x2f) out += "/";
        else if (e == 0x62) out += "\b";
        else if (e == 0x66) out += "\f";
        else if (e == 0x6e) out += "\n";
        else if (e == 0x72) out += "\r";
        else if (e == 0x74) out += "\t";
        else if (e == 0x75) {
          const code = this.hex4();
          if (code < 0) {
            this.fail("bad \\u escape");
            return "";
          }
          out += String.fromCharCode(code);
        } else {
          this.fail("bad escape");
          return "";
        }
        start = this.pos;
        continue;
      }
      this.pos++;
    }
    this.fail("unterminated string");
    return "";
  }

  hex4(): i32 {
    const b = this.buf;
    if (this.pos + 4 > b.length) return -1;
    let v = 0;
    for (let i = 0; i < 4; i++) {
      const c = <i32>b[this.pos + i];
      let d = -1;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
      if (d < 0) return -1;
      v = (v << 4) | d;
    }
    this.pos += 4;
    return v;
  }

  slice(from: i32, to: i32): string {
    if (to <= from) return "";
    return String.UTF8.decodeUnsafe(changetype<usize>(this.buf.buffer) + <usize>this.buf.byteOffset + <usize>from, <usize>(to - from));
  }

  number(): JValue {
    const b = this.buf;
    const start = this.pos;
    if (b[this.pos] == 0x2d) this.pos++;
    let digits = 0;
    while (this.pos < b.length) {
      const c = b[this.pos];
      if ((c >= 0x30 && c <= 0x39) || c == 0x2e || c == 0x65 || c == 0x45 || c == 0x2b || c == 0x2d) {
        if (c >= 0x30 && c <= 0x39) digits++;
        this.pos++;
      } else break;
    }
    if (digits == 0) return this.fail("bad number");
    const n = parseFloat(this.slice(start, this.pos));
    if (isNaN(n)) return this.fail("bad number");
    const v = new JValue();
    v.kind = J_NUM;
    v.num = n;
    return v;
  }
}

/** `s` as a JSON string literal, quotes included. */
export function quote(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x22 || c == 0x5c || c < 0x20) {
      out += s.substring(start, i);
      if (c == 0x22) out += '\\"';
      else if (c == 0x5c) out += "\\\\";
      else if (c == 0x0a) out += "\\n";
      else if (c == 0x0d) out += "\\r";
      else if (c == 0x09) out += "\\t";
      else out += "\\u00" + (c < 0x10 ? "0" : "") + c.toString(16);
      start = i + 1;
    }
  }
  return out + s.substring(start) + '"';
}

/** A finite number as JSON (integers without a fraction); NaN and infinities as null. */
export function num(n: f64): string {
  if (!isFinite(n)) return "null";
  if (n == Math.floor(n) && Math.abs(n) < 9007199254740992) return (<i64>n).toString();
  return n.toString();
}
