/**
 * error-budget: watches the access-log metrics of every nginx log (topic `metrics`, batches from
 * the nginx-logs plugin) over a sliding window and raises `alert.nginx.error_budget` when the 5xx
 * ratio or the p95 request time crosses its threshold, and a `resolved` event when it comes back.
 *
 * The metrics are cumulative: each batch is turned into a delta against the previous batch of the
 * same source (a lower value or a new startTime is a counter reset: the new value is the delta).
 * Events are returned in the output (`{"publish":[...]}`), one per state transition.
 */
import { Config, Host } from "@extism/as-pdk";
import { abortWith, fail, outputString } from "../../_lib/extism";
import { JValue, J_NUM, lastJsonError, num, parseJson, quote } from "../../_lib/json";

const TOPIC = "alert.nginx.error_budget";
const RESPONSES = "nginx.http.responses";
const REQUEST_TIME = "nginx.http.request.time";
/** Samples kept per log, whatever the window (bounds memory when batches come fast). */
const MAX_SAMPLES: i32 = 4096;

/** AssemblyScript's abort: report through Extism's error and trap, so the host counts a failure. */
function abortHandler(message: string | null, fileName: string | null, line: u32, column: u32): void {
  abortWith(message, fileName, line, column);
}

// Settings (from the manifest's `config`, read by init()).
let windowMs: f64 = 300_000;
let max5xxRatio: f64 = 0.05;
let maxP95Ms: f64 = 1000;
let minRequests: f64 = 20;
let configured = false;
let configError = "";

class Sample {
  constructor(
    public time: f64,
    public requests: f64,
    public errors: f64,
    /** Histogram bucket deltas (bounds.length + 1), or null when the log has no request time. */
    public buckets: Array<f64> | null,
  ) {}
}

/** State per nginx-logs source (one access log of one instance). */
class Series {
  instance: string = "";
  log: string = "";
  seen: bool = false;
  start: f64 = 0;
  requests: f64 = 0;
  errors: f64 = 0;
  histStart: f64 = 0;
  histCount: f64 = 0;
  bounds: Array<f64> = [];
  buckets: Array<f64> = [];
  samples: Array<Sample> = [];
  ratioFiring: bool = false;
  p95Firing: bool = false;
}

const series = new Map<string, Series>();

function setting(key: string, def: f64, min: f64, max: f64): f64 {
  const raw = Config.get(key);
  if (raw === null || raw.length == 0) return def;
  const v = parseFloat(raw);
  if (isNaN(v) || v < min || v > max) {
    configError = "error-budget: config " + key + " must be a number from " + num(min) + " to " + num(max) + ", got " + quote(raw);
    configured = false;
    return def;
  }
  return v;
}

function configure(): bool {
  configured = true;
  windowMs = setting("window_s", 300, 1, 86400) * 1000;
  max5xxRatio = setting("max_5xx_ratio", 0.05, 0, 1);
  maxP95Ms = setting("max_p95_ms", 1000, 0, 3600_000);
  minRequests = setting("min_requests", 20, 0, 1e12);
  return configured;
}

/** Reads the config; a bad value fails the load (non-zero) with a log line naming the key. */
export function init(): i32 {
  return configure() ? 0 : fail(configError);
}

export function describe(): i32 {
  outputString(
    '{"version":"1.0.0","description":"Alerts when the 5xx ratio or p95 request time of an nginx access log crosses its threshold over a sliding window, and when it recovers."}',
  );
  return 0;
}

export function process(): i32 {
  if (!configured && !configure()) return fail(configError);
  const input = parseJson(Host.input());
  if (input === null) return fail("error-budget: input is not JSON: " + lastJsonError());
  const events = new Array<string>();
  const messages = input.list("messages");
  let latest: f64 = 0;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (m.getString("topic") != "metrics") continue;
    const data = m.get("data");
    if (data === null || !data.isObject()) continue;
    const now = data.getNumber("time", m.getNumber("time"));
    if (now > latest) latest = now;
    batch(data, now, events);
  }
  if (latest > 0) idle(latest, events);
  if (events.length > 0) outputString('{"publish":[' + events.join(",") + "]}");
  // A full collection per call: the batch's tree is garbage now, and memory never shrinks, so
  // letting garbage of several calls pile up would only raise the peak.
  __collect();
  return 0;
}

function findMetric(data: JValue, name: string): JValue | null {
  const metrics = data.list("metrics");
  for (let i = 0; i < metrics.length; i++) {
    if (metrics[i].getString("name") == name) return metrics[i];
  }
  return null;
}

function batch(data: JValue, now: f64, events: Array<string>): void {
  const source = data.getString("source");
  if (!source.startsWith("nginx-logs:")) return;
  if (data.getBool("final")) {
    if (series.has(source)) {
      const s = series.get(source);
      if (s.ratioFiring) events.push(event(s, "resolved", "5xx_ratio", 0, max5xxRatio, 0, 0, "log no longer followed"));
      if (s.p95Firing) events.push(event(s, "resolved", "p95", 0, maxP95Ms, 0, 0, "log no longer followed"));
      series.delete(source);
    }
    return;
  }
  const responses = findMetric(data, RESPONSES);
  if (responses === null) return; // an error log, or another kind of batch
  let s: Series;
  if (series.has(source)) s = series.get(source);
  else {
    s = new Series();
    const resource = data.get("resource");
    if (resource !== null) {
      s.instance = resource.getString("nginx.instance.id");
      s.log = resource.getString("log.file.path");
    }
    series.set(source, s);
  }

  // Responses: total and 5xx, cumulative since the counter's start time.
  let total: f64 = 0;
  let errors: f64 = 0;
  let start: f64 = 0;
  const points = responses.list("points");
  for (let i = 0; i < points.length; i++) {
    const p = points[i];
    const v = p.getNumber("value");
    total += v;
    const attrs = p.get("attributes");
    if (attrs !== null && attrs.getString("status_range") == "5xx") errors += v;
    const st = p.getNumber("startTime");
    if (st > start) start = st;
  }
  let dTotal: f64 = 0;
  let dErrors: f64 = 0;
  if (!s.seen) {
    // First sight: count it only when the counter started inside the window (else it is history).
    if (start > 0 && start >= now - windowMs) {
      dTotal = total;
      dErrors = errors;
    }
  } else if (start != s.start || total < s.requests || errors < s.errors) {
    dTotal = total; // reset: everything since the new start is new
    dErrors = errors;
  } else {
    dTotal = total - s.requests;
    dErrors = errors - s.errors;
  }

  // Request time histogram: bucket deltas the same way.
  let dBuckets: Array<f64> | null = null;
  const hist = findMetric(data, REQUEST_TIME);
  if (hist !== null) dBuckets = histDelta(s, hist, now);

  const firstSight = !s.seen;
  s.seen = true;
  s.start = start;
  s.requests = total;
  s.errors = errors;
  if (firstSight && dTotal == 0 && dBuckets === null) return;

  s.samples.push(new Sample(now, dTotal, dErrors, dBuckets));
  slide(s, now);
  evaluate(s, events);
}

/** Drops the samples that left the window ending at `now` (and any beyond MAX_SAMPLES). */
function slide(s: Series, now: f64): void {
  let drop = 0;
  while (drop < s.samples.length && (s.samples[drop].time <= now - windowMs || s.samples.length - drop > MAX_SAMPLES)) drop++;
  if (drop > 0) s.samples.splice(0, drop);
}

/**
 * nginx-logs publishes only when a log has new lines, so a log that went quiet sends nothing.
 * Every metrics batch (host metrics, discovery...) moves the clock: a firing log with no request
 * left in its window resolves, as a rate over an empty window would.
 */
function idle(now: f64, events: Array<string>): void {
  const all = series.values();
  for (let i = 0; i < all.length; i++) {
    const s = all[i];
    if (!s.ratioFiring && !s.p95Firing) continue;
    slide(s, now);
    let requests: f64 = 0;
    for (let j = 0; j < s.samples.length; j++) requests += s.samples[j].requests;
    if (requests > 0) continue;
    const msg = "no requests in the last " + num(windowMs / 1000) + " s";
    if (s.ratioFiring) events.push(event(s, "resolved", "5xx_ratio", 0, max5xxRatio, 0, 0, msg));
    if (s.p95Firing) events.push(event(s, "resolved", "p95", 0, maxP95Ms, 0, 0, msg));
    s.ratioFiring = false;
    s.p95Firing = false;
  }
}

/** Bucket deltas of the request-time histogram since the previous batch; updates the series. */
function histDelta(s: Series, hist: JValue, now: f64): Array<f64> | null {
  const points = hist.list("points");
  if (points.length == 0) return null;
  // One histogram point per log (no attributes); sum them if there are several with the same bounds.
  const boundsV = points[0].list("bounds");
  const bounds = new Array<f64>(boundsV.length);
  for (let i = 0; i < boundsV.length; i++) bounds[i] = boundsV[i].num;
  const cur = new Array<f64>(bounds.length + 1).fill(0);
  let count: f64 = 0;
  let start: f64 = 0;
  for (let p = 0; p < points.length; p++) {
    const b = points[p].list("buckets");
    if (b.length != cur.length) continue;
    for (let i = 0; i < b.length; i++) if (b[i].kind == J_NUM) cur[i] += b[i].num;
    count += points[p].getNumber("count");
    const st = points[p].getNumber("startTime");
    if (st > start) start = st;
  }
  let sameBounds = s.bounds.length == bounds.length && s.buckets.length == cur.length;
  for (let i = 0; sameBounds && i < bounds.length; i++) if (s.bounds[i] != bounds[i]) sameBounds = false;
  let delta: Array<f64> | null = null;
  if (!sameBounds) {
    // New bounds (first sight or reconfigured): older samples cannot be summed with these.
    for (let i = 0; i < s.samples.length; i++) s.samples[i].buckets = null;
    if (start > 0 && start >= now - windowMs) delta = cur.slice(0);
    else delta = new Array<f64>(cur.length).fill(0);
  } else if (start != s.histStart || count < s.histCount) {
    delta = cur.slice(0);
  } else {
    delta = new Array<f64>(cur.length);
    for (let i = 0; i < cur.length; i++) {
      const d = cur[i] - s.buckets[i];
      delta[i] = d < 0 ? 0 : d;
    }
  }
  s.bounds = bounds;
  s.buckets = cur;
  s.histStart = start;
  s.histCount = count;
  return delta;
}

/** p95 in ms by linear interpolation inside the bucket (as Prometheus' histogram_quantile does). */
function p95(bounds: Array<f64>, buckets: Array<f64>): f64 {
  let total: f64 = 0;
  for (let i = 0; i < buckets.length; i++) total += buckets[i];
  if (total <= 0) return NaN;
  const target = total * 0.95;
  let cum: f64 = 0;
  for (let i = 0; i < buckets.length; i++) {
    const b = buckets[i];
    if (b > 0 && cum + b >= target) {
      if (i >= bounds.length) return bounds.length > 0 ? bounds[bounds.length - 1] * 1000 : NaN; // +Inf bucket
      const lower: f64 = i == 0 ? 0 : bounds[i - 1];
      return (lower + (bounds[i] - lower) * ((target - cum) / b)) * 1000;
    }
    cum += b;
  }
  return bounds.length > 0 ? bounds[bounds.length - 1] * 1000 : NaN;
}

function evaluate(s: Series, events: Array<string>): void {
  let requests: f64 = 0;
  let errors: f64 = 0;
  let buckets: Array<f64> | null = null;
  for (let i = 0; i < s.samples.length; i++) {
    const x = s.samples[i];
    requests += x.requests;
    errors += x.errors;
    const b = x.buckets;
    if (b !== null && b.length == s.bounds.length + 1) {
      if (buckets === null) buckets = new Array<f64>(b.length).fill(0);
      for (let j = 0; j < b.length; j++) buckets[j] += b[j];
    }
  }
  if (requests < minRequests || requests <= 0) return; // too little traffic to judge either way

  const ratio = errors / requests;
  const ratioBad = ratio > max5xxRatio;
  if (ratioBad != s.ratioFiring) {
    s.ratioFiring = ratioBad;
    const pct = num(Math.round(ratio * 1000) / 10) + "%";
    const msg = ratioBad
      ? "5xx ratio " + pct + " (" + num(errors) + " of " + num(requests) + " requests) is above " + num(max5xxRatio * 100) + "%"
      : "5xx ratio back to " + pct + " (" + num(errors) + " of " + num(requests) + " requests)";
    events.push(event(s, ratioBad ? "firing" : "resolved", "5xx_ratio", ratio, max5xxRatio, requests, errors, msg));
  }
  if (buckets !== null) {
    const p = p95(s.bounds, buckets);
    if (!isNaN(p)) {
      const pBad = p > maxP95Ms;
      if (pBad != s.p95Firing) {
        s.p95Firing = pBad;
        const msg = pBad ? "p95 request time " + num(Math.round(p)) + " ms is above " + num(maxP95Ms) + " ms" : "p95 request time back to " + num(Math.round(p)) + " ms";
        events.push(event(s, pBad ? "firing" : "resolved", "p95", p, maxP95Ms, requests, errors, msg));
      }
    }
  }
}

function event(s: Series, status: string, rule: string, value: f64, threshold: f64, requests: f64, errors: f64, message: string): string {
  return (
    '{"topic":' + quote(TOPIC) +
    ',"data":{"status":' + quote(status) +
    ',"rule":' + quote(rule) +
    ',"instance_id":' + quote(s.instance) +
    ',"log":' + quote(s.log) +
    ',"value":' + num(value) +
    ',"threshold":' + num(threshold) +
    ',"requests":' + num(requests) +
    ',"errors_5xx":' + num(errors) +
    ',"window_s":' + num(windowMs / 1000) +
    ',"message":' + quote(message) +
    "}}"
  );
}
