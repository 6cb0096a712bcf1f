/**
 * `/metrics` as served: rendered once per change of the metric store and shared by every scraper
 * until the next change, in the format the scraper asks for (Prometheus text 0.0.4, or OpenMetrics
 * when `Accept` prefers `application/openmetrics-text`), gzipped once per rendering for scrapers that
 * send `Accept-Encoding: gzip`, with a strong `ETag` so `If-None-Match` gets a 304.
 *
 * Read-time collectors (the bus's, the API's and the plugin host's own counters) change without the
 * store changing; they are sampled again when a cached rendering is older than `refreshMs` (1 s), so a
 * scraper storm costs at most one rendering per store change or per second, whichever is rarer.
 */
import { gzip as gzipCallback } from 'node:zlib';
import type { ApiResponse } from '../api/types.js';
import { withExporterCompat } from './exporter-compat.js';
import { OPENMETRICS_CONTENT_TYPE, renderOpenMetrics } from './openmetrics.js';
import { renderFamilies, toFamilies, type ExpositionFamily } from './prometheus.js';
import type { StoredMetric } from './store.js';

/** zlib's gzip as a promise; node:zlib is loaded at the first gzipped scrape, not at start-up. */
function gzip(body: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => gzipCallback(body, (err, out) => (err ? reject(err) : resolve(out))));
}

export const TEXT_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type ExpositionFormat = 'text' | 'openmetrics';

export interface ExpositionSource {
  snapshot(): StoredMetric[];
  version(): number;
}

export interface MetricsExpositionSettings {
  store: ExpositionSource;
  /** `prometheus.exporter_compat`, read at every scrape (SIGHUP may change it). */
  exporterCompat: () => boolean;
  now?: () => number;
  /** Longest a rendering is served while the store does not change (read-time collectors move). */
  refreshMs?: number;
}

interface Rendering {
  body: Buffer;
  etag: string;
  gzipped?: Promise<Buffer>;
}

export class MetricsExposition {
  readonly #settings: MetricsExpositionSettings;
  readonly #now: () => number;
  #key = '';
  #renderedAt = Number.NEGATIVE_INFINITY;
  #families: ExpositionFamily[] | undefined;
  readonly #renderings = new Map<ExpositionFormat, Rendering>();
  /** Renderings and compressions done so far (the bench and tests read them). */
  readonly counts = { renders: 0, gzips: 0 };

  constructor(settings: MetricsExpositionSettings) {
    this.#settings = settings;
    this.#now = settings.now ?? Date.now;
  }

  /** The answer to `GET /metrics` with these request headers. */
  async respond(headers: Readonly<Record<string, string | string[] | undefined>>): Promise<ApiResponse> {
    const format = negotiateFormat(header(headers.accept));
    const rendering = this.#rendering(format);
    const gzipped = acceptsGzip(header(headers['accept-encoding']));
    const etag = gzipped ? `"${rendering.etag}-gzip"` : `"${rendering.etag}"`;
    const common = { ETag: etag, Vary: 'Accept, Accept-Encoding' };
    if (matchesEtag(header(headers['if-none-match']), etag)) return { status: 304, body: '', headers: common };
    const contentType = format === 'openmetrics' ? OPENMETRICS_CONTENT_TYPE : TEXT_CONTENT_TYPE;
    if (!gzipped) return { status: 200, body: rendering.body, contentType, headers: common };
    rendering.gzipped ??= this.#compress(rendering.body);
    return {
      status: 200,
      body: await rendering.gzipped,
      contentType,
      headers: { ...common, 'Content-Encoding': 'gzip' },
    };
  }

  #rendering(format: ExpositionFormat): Rendering {
    const compat = this.#settings.exporterCompat();
    const key = `${this.#settings.store.version()}:${compat}`;
    const now = this.#now();
    if (key !== this.#key || now - this.#renderedAt >= (this.#settings.refreshMs ?? 1000)) {
      this.#key = key;
      this.#renderedAt = now;
      this.#families = undefined;
      this.#renderings.clear();
    }
    let r = this.#renderings.get(format);
    if (!r) {
      const metrics = this.#settings.store.snapshot();
      this.#families ??= compat ? withExporterCompat(metrics) : toFamilies(metrics);
      const body = Buffer.from(
        format === 'openmetrics' ? renderOpenMetrics(this.#families) : renderFamilies(this.#families),
      );
      this.counts.renders++;
      r = {
        body,
        etag: `${format === 'openmetrics' ? 'om' : 'pt'}-${contentTag(body)}`,
      };
      this.#renderings.set(format, r);
    }
    return r;
  }

  #compress(body: Buffer): Promise<Buffer> {
    this.counts.gzips++;
    return gzip(body);
  }
}

/**
 * 64 bits of hash of a rendering, as 16 hex digits: two multiplicative lanes over the bytes, each
 * mixed with the other at the end. Not cryptographic, and it need not be: a tag only has to change
 * when the bytes do (a collision is one chance in 2^64 per rendering). It spares the first scrape
 * loading node:crypto (about 2 ms, the daemon's first answer waits for it).
 */
export function contentTag(bytes: Uint8Array): string {
  let a = 0x811c9dc5;
  let b = 0x41c6ce57;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    a = Math.imul(a ^ byte, 0x01000193);
    b = Math.imul(b ^ byte, 0x5bd1e995);
  }
  a = Math.imul(a ^ (a >>> 16), 0x85ebca6b) ^ Math.imul(b ^ (b >>> 13), 0xc2b2ae35);
  b = Math.imul(b ^ (b >>> 16), 0x85ebca6b) ^ Math.imul(a ^ (a >>> 13), 0xc2b2ae35);
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0');
}

function header(v: string | string[] | undefined): string {
  return Array.isArray(v) ? v.join(', ') : (v ?? '');
}

interface MediaRange {
  type: string;
  q: number;
}

function parseList(value: string): MediaRange[] {
  const out: MediaRange[] = [];
  for (const part of value.split(',')) {
    const [type, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    if (!type) continue;
    let q = 1;
    for (const p of params) {
      const m = /^q=([0-9.]+)$/.exec(p);
      if (m) q = Number(m[1]);
    }
    out.push({ type, q: Number.isFinite(q) ? q : 0 });
  }
  return out;
}

/** OpenMetrics when the scraper ranks it at least as high as the Prometheus text format. */
export function negotiateFormat(accept: string): ExpositionFormat {
  let om = 0;
  let text = 0;
  for (const r of parseList(accept)) {
    if (r.type === 'application/openmetrics-text') om = Math.max(om, r.q);
    else if (r.type === 'text/plain' || r.type === '*/*' || r.type === 'text/*') text = Math.max(text, r.q);
  }
  return om > 0 && om >= text ? 'openmetrics' : 'text';
}

export function acceptsGzip(acceptEncoding: string): boolean {
  return parseList(acceptEncoding).some((r) => (r.type === 'gzip' || r.type === '*') && r.q > 0);
}

function matchesEtag(ifNoneMatch: string, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag === etag || tag === `W/${etag}`;
  });
}
