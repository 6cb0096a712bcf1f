/**
 * config-lint: on every `nginx.config.changed`, walks the parsed config (crossplane shape, includes
 * followed in place) with nginx's inheritance (http > server > location > if/limit_except) and
 * publishes one `lint.nginx.config` message listing the risky settings it found, each with its rule,
 * severity, message, file and line. A change with no findings is published too (an empty list),
 * so a consumer can clear what it showed for the previous version.
 */
import { Config, Host, LogLevel, Memory } from "@extism/as-pdk";
import { abortWith, fail, outputString } from "../../_lib/extism";
import { JValue, lastJsonError, parseJson, quote } from "../../_lib/json";

const TOPIC = "lint.nginx.config";
/** Includes nested deeper than this are not followed (bounds the walk when files include each other). */
const MAX_INCLUDE_DEPTH: i32 = 16;

@external("extism:host/user", "publish")
declare function hostPublish(offset: u64): u64;

function abortHandler(message: string | null, fileName: string | null, line: u32, column: u32): void {
  abortWith(message, fileName, line, column);
}

export function describe(): i32 {
  const out = '{"version":"1.0.0","description":"Lints every nginx config the agent parses: server_tokens, autoindex, TLS protocols, access logs, proxy timeouts; findings with file and line on lint.nginx.config."}';
  outputString(out);
  return 0;
}

let disabled: Array<string> = [];
let configured = false;

function configure(): void {
  configured = true;
  disabled = [];
  const raw = Config.get("disabled_rules");
  if (raw === null) return;
  const parts = raw.split(",");
  for (let i = 0; i < parts.length; i++) {
    const r = parts[i].trim();
    if (r.length > 0) disabled.push(r);
  }
}

/** Every rule id this plugin knows (init refuses unknown ids in `disabled_rules`). */
const RULES: Array<string> = [
  "server-tokens-on",
  "autoindex-on",
  "tls-protocols-missing",
  "tls-protocols-old",
  "access-log-missing",
  "access-log-off",
  "proxy-timeouts-missing",
];

export function init(): i32 {
  configure();
  for (let i = 0; i < disabled.length; i++) {
    if (!RULES.includes(disabled[i])) return fail("config-lint: config disabled_rules names an unknown rule " + quote(disabled[i]) + "; known: " + RULES.join(", "));
  }
  return 0;
}

/** A directive with the file it was read from (includes are flattened into their parent block). */
class Dir {
  constructor(
    public d: JValue,
    public file: string,
  ) {}
  get name(): string {
    return this.d.getString("directive");
  }
  get line(): i32 {
    return <i32>this.d.getNumber("line");
  }
  arg(i: i32): string {
    const args = this.d.list("args");
    return i < args.length ? args[i].str : "";
  }
  args(): Array<string> {
    const a = this.d.list("args");
    const out = new Array<string>(a.length);
    for (let i = 0; i < a.length; i++) out[i] = a[i].str;
    return out;
  }
  where(): string {
    return this.file + ":" + this.line.toString();
  }
}

/** Settings of one block that inner blocks inherit when they do not set them. */
class Scope {
  sslProtocols: Dir | null = null;
  /** The level's access_log: a non-off one wins over `off` on the same level. */
  accessLog: Dir | null = null;
  proxyConnectTimeout: bool = false;
  proxyReadTimeout: bool = false;
  constructor(public parent: Scope | null) {}

  effectiveSslProtocols(): Dir | null {
    let s: Scope | null = this;
    while (s !== null) {
      if (s.sslProtocols !== null) return s.sslProtocols;
      s = s.parent;
    }
    return null;
  }
  effectiveAccessLog(): Dir | null {
    let s: Scope | null = this;
    while (s !== null) {
      if (s.accessLog !== null) return s.accessLog;
      s = s.parent;
    }
    return null;
  }
  hasConnectTimeout(): bool {
    let s: Scope | null = this;
    while (s !== null) {
      if (s.proxyConnectTimeout) return true;
      s = s.parent;
    }
    return false;
  }
  hasReadTimeout(): bool {
    let s: Scope | null = this;
    while (s !== null) {
      if (s.proxyReadTimeout) return true;
      s = s.parent;
    }
    return false;
  }
}

class Finding {
  constructor(
    public file: string,
    public line: i32,
    public json: string,
  ) {}
}

/** One lint run over one config. */
class Linter {
  files: Array<JValue>;
  findings: Array<Finding> = [];
  counts: Map<string, i32> = new Map();
  /** Directives already reported by a rule (an http-level setting inherited by many servers). */
  reported: Set<string> = new Set();

  constructor(payload: JValue) {
    this.files = payload.list("config");
  }

  add(rule: string, severity: string, d: Dir, message: string): void {
    if (disabled.includes(rule)) return;
    const key = rule + "\n" + d.where();
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.counts.set(severity, (this.counts.has(severity) ? this.counts.get(severity) : 0) + 1);
    const json = '{"rule":' + quote(rule) + ',"severity":' + quote(severity) + ',"message":' + quote(message) + ',"file":' + quote(d.file) + ',"line":' + d.line.toString() + "}";
    this.findings.push(new Finding(d.file, d.line, json));
  }

  /** The directives of a block with `include`s replaced by the directives of the files they pulled in. */
  flatten(list: Array<JValue>, file: string, out: Array<Dir>, depth: i32): Array<Dir> {
    for (let i = 0; i < list.length; i++) {
      const d = list[i];
      if (d.getString("directive") == "include") {
        const inc = d.list("includes");
        if (inc.length > 0 && depth < MAX_INCLUDE_DEPTH) {
          for (let j = 0; j < inc.length; j++) {
            const idx = <i32>inc[j].num;
            if (idx >= 0 && idx < this.files.length) {
              const f = this.files[idx];
              this.flatten(f.list("parsed"), f.getString("file"), out, depth + 1);
            }
          }
        }
        continue;
      }
      out.push(new Dir(d, file));
    }
    return out;
  }

  run(): void {
    if (this.files.length == 0) return;
    const main = this.files[0];
    const top = this.flatten(main.list("parsed"), main.getString("file"), [], 0);
    for (let i = 0; i < top.length; i++) {
      if (top[i].name == "http") this.block(top[i], new Scope(null), "http");
    }
  }

  /** Lints one block: its own settings first (they apply wherever they stand), then its children. */
  block(b: Dir, scope: Scope, level: string): Array<Dir> {
    const items = this.flatten(b.d.list("block"), b.file, [], 0);
    for (let i = 0; i < items.length; i++) {
      const d = items[i];
      const name = d.name;
      if (name == "ssl_protocols") scope.sslProtocols = d;
      else if (name == "access_log") {
        const cur = scope.accessLog;
        if (cur === null || (cur.arg(0) == "off" && d.arg(0) != "off")) scope.accessLog = d;
      } else if (name == "proxy_connect_timeout") scope.proxyConnectTimeout = true;
      else if (name == "proxy_read_timeout") scope.proxyReadTimeout = true;
      else if (name == "server_tokens" && (d.arg(0) == "on" || d.arg(0) == "build")) {
        this.add("server-tokens-on", "info", d, "server_tokens " + d.arg(0) + " sends the nginx version in the Server header and on error pages; set server_tokens off");
      } else if (name == "autoindex" && d.arg(0) == "on") {
        this.add("autoindex-on", "warning", d, "autoindex on lists directory contents to any client; turn it off unless the listing is meant to be public");
      }
    }
    for (let i = 0; i < items.length; i++) {
      const d = items[i];
      const name = d.name;
      if (name == "proxy_pass") this.proxyPass(d, scope);
      if (!d.d.get("block")) continue;
      if (level == "http" && name == "server") {
        const s = new Scope(scope);
        this.server(d, this.block(d, s, "server"), s);
      } else if (level != "http" && (name == "location" || name == "if" || name == "limit_except")) {
        this.block(d, new Scope(scope), name);
      }
    }
    return items;
  }

  proxyPass(d: Dir, scope: Scope): void {
    const connect = scope.hasConnectTimeout();
    const read = scope.hasReadTimeout();
    if (connect && read) return;
    const missing = !connect && !read ? "proxy_connect_timeout and proxy_read_timeout" : !connect ? "proxy_connect_timeout" : "proxy_read_timeout";
    this.add(
      "proxy-timeouts-missing",
      "info",
      d,
      "proxy_pass " + d.arg(0) + " has no " + missing + " in scope: nginx waits up to 60 s per step on a slow upstream; set them in the location, server or http block",
    );
  }

  /** Rules that look at a whole server: TLS protocols and its access log. */
  server(srv: Dir, own: Array<Dir>, scope: Scope): void {
    let tls = false;
    for (let i = 0; i < own.length; i++) {
      const d = own[i];
      if (d.name == "listen") {
        const a = d.args();
        for (let j = 1; j < a.length; j++) if (a[j] == "ssl" || a[j] == "quic") tls = true;
      } else if (d.name == "ssl_certificate") tls = true;
      else if (d.name == "ssl" && d.arg(0) == "on") tls = true;
    }
    if (tls) {
      const p = scope.effectiveSslProtocols();
      if (p === null) {
        this.add("tls-protocols-missing", "warning", srv, "TLS server without ssl_protocols: nginx before 1.23.4 then accepts TLSv1 and TLSv1.1; set ssl_protocols TLSv1.2 TLSv1.3");
      } else {
        const a = p.args();
        const old = new Array<string>();
        for (let j = 0; j < a.length; j++) {
          if (a[j] == "TLSv1" || a[j] == "TLSv1.1" || a[j] == "SSLv3" || a[j] == "SSLv2") old.push(a[j]);
        }
        if (old.length > 0) {
          this.add("tls-protocols-old", "warning", p, "ssl_protocols enables " + old.join(", ") + " (deprecated, RFC 8996) for the TLS server at " + srv.where() + "; use TLSv1.2 TLSv1.3");
        }
      }
    }
    const log = scope.effectiveAccessLog();
    if (log === null) {
      this.add("access-log-missing", "warning", srv, "no access_log applies to this server: nginx writes its compiled-in default (logs/access.log, combined) that log rotation and monitoring may not know; set access_log in http or server");
    } else if (log.arg(0) == "off") {
      this.add("access-log-off", "warning", log, "access_log off: requests to the server at " + srv.where() + " are not logged, so errors and traffic there go unseen");
    }
  }

  json(instance: string, version: string, confPath: string): string {
    let counts = "";
    const keys = this.counts.keys();
    for (let i = 0; i < keys.length; i++) {
      counts += (i > 0 ? "," : "") + quote(keys[i]) + ":" + this.counts.get(keys[i]).toString();
    }
    // Stable order for readers and diffs: by file, then line.
    this.findings.sort((a: Finding, b: Finding): i32 => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line));
    const list = new Array<string>(this.findings.length);
    for (let i = 0; i < this.findings.length; i++) list[i] = this.findings[i].json;
    return (
      '{"topic":' + quote(TOPIC) +
      ',"data":{"instance_id":' + quote(instance) +
      ',"version":' + quote(version) +
      ',"conf_path":' + quote(confPath) +
      ',"findings":[' + list.join(",") +
      '],"counts":{' + counts + "}}}"
    );
  }
}

export function process(): i32 {
  if (!configured) configure();
  const input = parseJson(Host.input());
  if (input === null) return fail("config-lint: input is not JSON: " + lastJsonError());
  const messages = input.list("messages");
  let refused = 0;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (m.getString("topic") != "nginx.config.changed") continue;
    const data = m.get("data");
    if (data === null) continue;
    const payload = data.get("payload");
    if (payload === null) continue;
    const l = new Linter(payload);
    l.run();
    const mem = Memory.allocateString(l.json(data.getString("instanceId"), data.getString("version"), data.getString("confPath")));
    if (hostPublish(mem.offset) != 0) refused++;
    mem.free();
    // Free this config's tree before the next: memory never shrinks, so the peak is what counts.
    __collect();
  }
  // A refusal is the host's policy, not a plugin failure: say it once per call and carry on.
  if (refused > 0) Host.log(LogLevel.Warn, "config-lint: the host refused " + refused.toString() + " message(s) on " + TOPIC + " (is it in the manifest's publishes?)");
  return 0;
}
