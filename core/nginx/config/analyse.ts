/**
 * Analysis of a parsed nginx config: servers, locations, upstreams, logs with their formats,
 * stub_status and Plus API endpoints, TLS certificates. One source of truth for the metric plugins.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import type {
  AccessLogInfo,
  CertificateInfo,
  ConfigAnalysis,
  ConfigDirective,
  ConfigPayload,
  ErrorLogInfo,
  ServerInfo,
  StatusEndpoint,
  UpstreamInfo,
} from '../types.js';

/** nginx's predefined `combined` log format. */
export const COMBINED_FORMAT =
  '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"';

/** Options of {@link analyseConfig}. */
export interface AnalyseOptions {
  /** nginx prefix (-p): relative log paths resolve against it. */
  prefix: string;
  /** Absolute main config path: relative certificate paths resolve against its directory. */
  confPath: string;
  /** Reads a certificate file (injected for tests). */
  readCert?: (p: string) => Promise<Buffer | string>;
}

/** A directive with the file it came from (includes spliced in place). */
interface Node {
  d: ConfigDirective;
  file: string;
  block?: Node[];
}

const MAX_INCLUDE_DEPTH = 32;

/** Replaces `include` directives by the directives of the files they name, recursively. */
function flatten(payload: ConfigPayload, fileIdx: number, list: ConfigDirective[], depth: number): Node[] {
  const out: Node[] = [];
  const file = payload.config[fileIdx]?.file ?? '';
  for (const d of list) {
    if (d.directive === 'include' && d.includes && depth < MAX_INCLUDE_DEPTH) {
      for (const i of d.includes) {
        const f = payload.config[i];
        if (f) out.push(...flatten(payload, i, f.parsed, depth + 1));
      }
      continue;
    }
    if (d.directive === '#') continue;
    const n: Node = { d, file };
    if (d.block) n.block = flatten(payload, fileIdx, d.block, depth);
    out.push(n);
  }
  return out;
}

const NOT_TAILABLE: [string, string][] = [
  ['syslog:', 'logs to syslog'],
  ['memory:', 'logs to an in-memory buffer'],
  ['/dev/stdout', 'logs to standard output'],
  ['/dev/stderr', 'logs to standard error'],
];

function logTarget(raw: string, prefix: string): { path: string; tailable: boolean; reason?: string } {
  if (raw === 'off') return { path: 'off', tailable: false, reason: 'logging is off' };
  if (raw === 'stderr') return { path: 'stderr', tailable: false, reason: 'logs to standard error' };
  for (const [p, reason] of NOT_TAILABLE) if (raw.startsWith(p)) return { path: raw, tailable: false, reason };
  const path = isAbsolute(raw) ? raw : resolve(prefix, raw);
  if (raw.includes('$')) return { path, tailable: false, reason: 'the path contains variables' };
  return { path, tailable: true };
}

/** Builds a format string from `log_format name [escape=...] part...`. */
function formatOf(args: string[]): string {
  let i = 1;
  if (args[i]?.startsWith('escape=')) i++;
  return args.slice(i).join('');
}

interface Listen {
  addr: string;
  ssl: boolean;
}

function parseListen(args: string[]): Listen {
  return { addr: args[0] ?? '', ssl: args.includes('ssl') };
}

/** host:port for a URL from a listen address; null for unix sockets. */
function hostPort(addr: string): { host: string; port: string } | null {
  if (addr.startsWith('unix:')) return null;
  if (/^\d+$/.test(addr)) return { host: '127.0.0.1', port: addr };
  if (addr.startsWith('[')) {
    const close = addr.indexOf(']');
    let host = addr.slice(0, close + 1);
    const rest = addr.slice(close + 1);
    if (host === '[::]') host = '[::1]';
    return { host, port: rest.startsWith(':') ? rest.slice(1) : '80' };
  }
  const colon = addr.lastIndexOf(':');
  let host = colon >= 0 ? addr.slice(0, colon) : addr;
  const port = colon >= 0 ? addr.slice(colon + 1) : '80';
  if (host === '*' || host === '0.0.0.0' || host === '') host = '127.0.0.1';
  return { host, port };
}

function urlsFor(listens: Listen[], serverNames: string[], path: string): string[] {
  const ls = listens.length ? listens : [{ addr: '80', ssl: false }];
  const urls: string[] = [];
  const name = serverNames.find(
    (n) => n !== '_' && n !== '' && !n.includes('*') && !n.startsWith('~') && !n.startsWith('.'),
  );
  for (const l of ls) {
    const hp = hostPort(l.addr);
    if (!hp) continue;
    const scheme = l.ssl ? 'https' : 'http';
    const def = (scheme === 'http' && hp.port === '80') || (scheme === 'https' && hp.port === '443');
    urls.push(`${scheme}://${hp.host}${def ? '' : `:${hp.port}`}${path}`);
  }
  if (name) {
    for (const l of ls) {
      const hp = hostPort(l.addr);
      if (!hp) continue;
      const scheme = l.ssl ? 'https' : 'http';
      const def = (scheme === 'http' && hp.port === '80') || (scheme === 'https' && hp.port === '443');
      urls.push(`${scheme}://${name}${def ? '' : `:${hp.port}`}${path}`);
    }
  }
  return [...new Set(urls)];
}

/** An analysis that found nothing: no servers, logs, formats, status endpoints or certificates. */
export function emptyConfigAnalysis(): ConfigAnalysis {
  return {
    servers: [],
    upstreams: [],
    accessLogs: [],
    errorLogs: [],
    logFormats: {},
    stubStatus: [],
    plusApi: [],
    certificates: [],
  };
}

/**
 * Analyses a parsed config. Relative log paths resolve against `prefix` (as nginx does); without an
 * access_log in http nor a server, nginx's default `logs/access.log combined` is listed, and without
 * a main-level error_log, `logs/error.log` (level error).
 */
export async function analyseConfig(payload: ConfigPayload, opts: AnalyseOptions): Promise<ConfigAnalysis> {
  const prefix = opts.prefix;
  const confDir = dirname(opts.confPath);
  const readCert = opts.readCert ?? ((p: string) => readFile(p));
  const root = payload.config.length ? flatten(payload, 0, payload.config[0].parsed, 0) : [];
  const out: ConfigAnalysis = { ...emptyConfigAnalysis(), logFormats: { combined: COMBINED_FORMAT } };
  const accessSeen = new Set<string>();
  const errorSeen = new Set<string>();
  const certSeen = new Set<string>();
  const certs: { raw: string; file: string; line: number }[] = [];
  const pendingAccess: Node[] = [];

  const addError = (n: Node): void => {
    const t = logTarget(n.d.args[0] ?? '', prefix);
    const level = n.d.args[1] ?? 'error';
    const key = `${t.path}\0${level}`;
    if (errorSeen.has(key)) return;
    errorSeen.add(key);
    const e: ErrorLogInfo = { ...t, file: n.file, line: n.d.line, level };
    out.errorLogs.push(e);
  };
  const collectCert = (n: Node): void => {
    if (n.d.args[0]) certs.push({ raw: n.d.args[0], file: n.file, line: n.d.line });
  };

  // log_format first (an access_log may name a format defined later in the file)
  const walkFormats = (nodes: Node[]): void => {
    for (const n of nodes) {
      if (n.d.directive === 'log_format' && n.d.args.length >= 2) out.logFormats[n.d.args[0]] = formatOf(n.d.args);
      if (n.block) walkFormats(n.block);
    }
  };
  walkFormats(root);

  const upstream = (n: Node): void => {
    const u: UpstreamInfo = { name: n.d.args[0] ?? '', file: n.file, line: n.d.line, servers: [] };
    for (const c of n.block ?? [])
      if (c.d.directive === 'server') u.servers.push({ address: c.d.args[0] ?? '', params: c.d.args.slice(1) });
    out.upstreams.push(u);
  };

  /** Walks locations (nested) of a server; returns whether any access_log was seen. */
  const walkLocations = (nodes: Node[], s: ServerInfo, listens: Listen[]): void => {
    for (const n of nodes) {
      const dir = n.d.directive;
      if (dir === 'location') {
        const a = n.d.args;
        const loc =
          a.length >= 2
            ? { path: a[1], modifier: a[0], file: n.file, line: n.d.line }
            : { path: a[0] ?? '', file: n.file, line: n.d.line };
        s.locations.push(loc);
        const body = n.block ?? [];
        const exactOrPrefix = !loc.modifier || loc.modifier === '=' || loc.modifier === '^~';
        for (const c of body) {
          if (c.d.directive === 'stub_status' && (c.d.args.length === 0 || c.d.args[0] === 'on')) {
            const ep: StatusEndpoint = {
              urls: exactOrPrefix && !loc.path.startsWith('@') ? urlsFor(listens, s.serverNames, loc.path) : [],
              file: c.file,
              line: c.d.line,
            };
            out.stubStatus.push(ep);
          } else if (c.d.directive === 'api') {
            const write = c.d.args.includes('write=on');
            out.plusApi.push({
              urls: exactOrPrefix && !loc.path.startsWith('@') ? urlsFor(listens, s.serverNames, loc.path) : [],
              file: c.file,
              line: c.d.line,
              write,
            });
          }
        }
        walkLocations(body, s, listens);
      } else if (dir === 'access_log') pendingAccess.push(n);
      else if (dir === 'error_log') addError(n);
      else if (dir === 'ssl_certificate') collectCert(n);
      else if (dir === 'if' && n.block) walkLocations(n.block, s, listens);
    }
  };

  let needDefaultAccess = false;
  for (const top of root) {
    const dir = top.d.directive;
    if (dir === 'error_log') addError(top);
    else if (dir === 'http') {
      const body = top.block ?? [];
      const httpHasAccess = body.some((c) => c.d.directive === 'access_log');
      let serverCount = 0;
      for (const n of body) {
        const d = n.d.directive;
        if (d === 'access_log') pendingAccess.push(n);
        else if (d === 'error_log') addError(n);
        else if (d === 'ssl_certificate') collectCert(n);
        else if (d === 'upstream') upstream(n);
        else if (d === 'server') {
          serverCount++;
          const sb = n.block ?? [];
          const listens = sb.filter((c) => c.d.directive === 'listen').map((c) => parseListen(c.d.args));
          const sslOn = sb.some((c) => c.d.directive === 'ssl' && c.d.args[0] === 'on');
          if (sslOn) for (const l of listens) l.ssl = true;
          const s: ServerInfo = {
            file: n.file,
            line: n.d.line,
            listen: listens.map((l) => l.addr),
            serverNames: sb.filter((c) => c.d.directive === 'server_name').flatMap((c) => c.d.args),
            ssl: sslOn || listens.some((l) => l.ssl),
            locations: [],
          };
          if (!httpHasAccess && !sb.some((c) => c.d.directive === 'access_log')) needDefaultAccess = true;
          for (const c of sb) {
            if (c.d.directive === 'access_log') pendingAccess.push(c);
            else if (c.d.directive === 'error_log') addError(c);
            else if (c.d.directive === 'ssl_certificate') collectCert(c);
          }
          walkLocations(sb, s, listens);
          out.servers.push(s);
        }
      }
      if (serverCount === 0 && !httpHasAccess) needDefaultAccess = true;
    } else if (dir === 'stream') {
      for (const n of top.block ?? []) {
        if (n.d.directive === 'upstream') upstream(n);
        else if (n.d.directive === 'error_log') addError(n);
      }
    }
  }

  for (const n of pendingAccess) {
    const t = logTarget(n.d.args[0] ?? '', prefix);
    const formatName = t.path === 'off' ? '' : n.d.args[1] && !n.d.args[1].includes('=') ? n.d.args[1] : 'combined';
    const key = `${t.path}\0${formatName}`;
    if (accessSeen.has(key)) continue;
    accessSeen.add(key);
    const a: AccessLogInfo = {
      ...t,
      file: n.file,
      line: n.d.line,
      formatName,
      format: out.logFormats[formatName] ?? '',
    };
    if (formatName && !(formatName in out.logFormats)) {
      a.tailable = false;
      a.reason = `log_format "${formatName}" is not defined`;
    }
    out.accessLogs.push(a);
  }
  const mainFile = payload.config[0]?.file ?? opts.confPath;
  if (needDefaultAccess && root.some((n) => n.d.directive === 'http')) {
    const http = root.find((n) => n.d.directive === 'http');
    const path = resolve(prefix, 'logs/access.log');
    if (!accessSeen.has(`${path}\0combined`))
      out.accessLogs.push({
        path,
        file: http?.file ?? mainFile,
        line: http?.d.line ?? 0,
        tailable: true,
        formatName: 'combined',
        format: COMBINED_FORMAT,
      });
  }
  if (!root.some((n) => n.d.directive === 'error_log')) {
    const path = resolve(prefix, 'logs/error.log');
    if (!errorSeen.has(`${path}\0error`))
      out.errorLogs.unshift({ path, file: mainFile, line: 0, tailable: true, level: 'error' });
  }

  for (const c of certs) {
    if (c.raw.startsWith('data:') || c.raw.startsWith('engine:')) continue;
    const path = isAbsolute(c.raw) ? c.raw : resolve(confDir, c.raw);
    if (certSeen.has(path)) continue;
    certSeen.add(path);
    const info: CertificateInfo = { path, file: c.file, line: c.line };
    if (c.raw.includes('$'))
      info.error = `${c.file}:${c.line}: ssl_certificate "${c.raw}" contains variables: resolved per request, not read`;
    else {
      try {
        const x = new X509Certificate(await readCert(path));
        info.subject = x.subject;
        info.issuer = x.issuer;
        info.notAfter = Date.parse(x.validTo);
      } catch (err) {
        info.error = `${c.file}:${c.line}: cannot read certificate "${path}": ${(err as Error).message}`;
      }
    }
    out.certificates.push(info);
  }
  return out;
}
