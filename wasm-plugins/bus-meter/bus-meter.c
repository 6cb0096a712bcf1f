// bus-meter: meters the bus messages it is subscribed to (batches, messages, bytes of JSON) and
// publishes the running totals as a MetricBatch on `metrics`, under its own source
// `wasm:<plugin.name>`. Written in C with Extism's C PDK (../_lib/c/extism-pdk.h), standard PDK
// logging and config; the totals live in Extism vars, so they survive a worker restart.
//
// Built twice by build.mjs: bus-meter.wasm (wasm32-unknown-unknown, no libc) and, with
// -DEXTISM_USE_LIBC, bus-meter-wasi.wasm (wasm32-wasi, wasi-libc: its init also prints through
// stdio, which the agent puts in the plugin's log).
#define EXTISM_IMPLEMENTATION
#include "extism-pdk.h"

#ifdef EXTISM_USE_LIBC
#include <stdio.h>
#endif

// The agent's host function: publishes {"topic","data"}; 0 accepted, 1 refused, 2 unreadable.
EXTISM_IMPORT_USER("publish")
extern uint64_t publish(ExtismHandle message);

static char name[64];
static size_t nameLen;

// ---- output buffer --------------------------------------------------------------------------
static char out[2048];
static size_t outLen;

static void put(const char *s, size_t n) {
  for (size_t i = 0; i < n && outLen < sizeof out; i++) out[outLen++] = s[i];
}
static void puts_(const char *s) { put(s, extism_strlen(s)); }
static void putU64(uint64_t v) {
  char digits[20];
  size_t n = 0;
  do {
    digits[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) put(&digits[--n], 1);
}

// ---- vars: 8-byte little-endian totals ------------------------------------------------------
static uint64_t varU64(const char *key) {
  ExtismHandle h = extism_var_get_buf_from_sz(key);
  uint64_t v = 0;
  if (h) extism_load_from_handle(h, 0, &v, sizeof v);
  return v;
}
static void setVarU64(const char *key, uint64_t v) {
  extism_var_set_buf_from_sz(key, extism_alloc_buf(&v, sizeof v));
}

// ---- input scan: counts the messages of {"messages":[{"topic","time","data"},...]} and keeps the
// latest "time", without a JSON library (strings and nesting are tracked, nothing is copied). ----
struct scan {
  int depth, inString, escape, keyLen, lastKeyIsTime, readingTime;
  char key[5];
  uint64_t messages, number, latest;
};

static void scanByte(struct scan *s, char c) {
  if (s->inString) {
    if (s->escape) s->escape = 0;
    else if (c == '\\') s->escape = 1;
    else if (c == '"') {
      s->inString = 0;
      s->lastKeyIsTime = s->depth == 3 && s->keyLen == 4 && s->key[0] == 't' && s->key[1] == 'i' &&
                         s->key[2] == 'm' && s->key[3] == 'e';
    } else if (s->keyLen < 5) s->key[s->keyLen++] = c;
    return;
  }
  if (s->readingTime) {
    if (c >= '0' && c <= '9') {
      s->number = s->number * 10 + (uint64_t)(c - '0');
      return;
    }
    s->readingTime = 0;
    if (s->number > s->latest) s->latest = s->number;
  }
  switch (c) {
  case '"':
    s->inString = 1;
    s->keyLen = 0;
    s->lastKeyIsTime = 0;
    break;
  case '{':
  case '[':
    if (++s->depth == 3 && c == '{') s->messages++;
    break;
  case '}':
  case ']':
    s->depth--;
    break;
  case ':':
    if (s->depth == 3 && s->lastKeyIsTime) {
      s->readingTime = 1;
      s->number = 0;
    }
    break;
  }
}

static void metric(const char *metricName, const char *unit, const char *description, uint64_t value,
                   uint64_t start, int last) {
  puts_("{\"name\":\"");
  puts_(metricName);
  puts_("\",\"type\":\"counter\",\"unit\":\"");
  puts_(unit);
  if (description) {
    puts_("\",\"description\":\"");
    puts_(description);
  }
  puts_("\",\"points\":[{\"attributes\":{\"plugin\":\"");
  put(name, nameLen);
  puts_("\"},\"value\":");
  putU64(value);
  puts_(",\"startTime\":");
  putU64(start);
  puts_(last ? "}]}" : "}]},");
}

int32_t EXTISM_EXPORTED_FUNCTION(init) {
  ExtismHandle h = extism_config_get_buf_from_sz("plugin.name");
  uint64_t len = h ? extism_length(h) : 0;
  if (!h || len == 0 || len >= sizeof name) {
    extism_error_set_buf_from_sz("bus-meter: config key plugin.name is missing (the agent sets it)");
    return 1;
  }
  extism_load_sz(h, 0, name, len + 1);
  nameLen = (size_t)len;
  outLen = 0;
  puts_("bus-meter: publishing on metrics as wasm:");
  put(name, nameLen);
  puts_(", ");
  putU64(varU64("batches"));
  puts_(" batches metered so far");
  extism_log(out, outLen, ExtismLogInfo);
#ifdef EXTISM_USE_LIBC
  printf("bus-meter (wasi-libc) %s: ready\n", name);
  fflush(stdout);
#endif
  return 0;
}

int32_t EXTISM_EXPORTED_FUNCTION(process) {
  struct scan s = {0};
  static char chunk[4096];
  uint64_t total = extism_input_length();
  for (uint64_t at = 0; at < total;) {
    size_t n = total - at < sizeof chunk ? (size_t)(total - at) : sizeof chunk;
    extism_load_input(at, chunk, n);
    for (size_t i = 0; i < n; i++) scanByte(&s, chunk[i]);
    at += n;
  }
  uint64_t start = varU64("start");
  if (!start) setVarU64("start", start = s.latest);
  uint64_t batches = varU64("batches") + 1, messages = varU64("messages") + s.messages,
           bytes = varU64("bytes") + total;
  setVarU64("batches", batches);
  setVarU64("messages", messages);
  setVarU64("bytes", bytes);

  outLen = 0;
  puts_("bus-meter: a batch of ");
  putU64(s.messages);
  puts_(" messages, ");
  putU64(total);
  puts_(" bytes");
  extism_log(out, outLen, ExtismLogDebug);

  outLen = 0;
  puts_("{\"topic\":\"metrics\",\"data\":{\"source\":\"wasm:");
  put(name, nameLen);
  puts_("\",\"time\":");
  putU64(s.latest);
  puts_(",\"metrics\":[");
  metric("bus_meter.batches", "{batch}", "Batches of bus messages the plugin was called with.", batches, start, 0);
  metric("bus_meter.messages", "{message}", 0, messages, start, 0);
  metric("bus_meter.input.size", "By", "Bytes of JSON input the plugin was called with.", bytes, start, 1);
  puts_("]}}");
  if (outLen >= sizeof out) {
    extism_error_set_buf_from_sz("bus-meter: the metric batch does not fit its buffer");
    return 1;
  }
  if (publish(extism_alloc_buf(out, outLen)) != 0) extism_log_sz("bus-meter: publish refused", ExtismLogWarn);
  return 0;
}

int32_t EXTISM_EXPORTED_FUNCTION(describe) {
  extism_output_buf_from_sz("{\"version\":\"1.0.0\",\"description\":\"Meters the bus messages it subscribes to "
                            "(C, Extism C PDK)\"}");
  return 0;
}
