// Test plugin (C, Extism C PDK, wasi-libc): GETs config key "url" with Extism's http_request and
// publishes the status, the body and the response headers on event.http.
#define EXTISM_IMPLEMENTATION
#define EXTISM_USE_LIBC
#include "extism-pdk.h"
#include <stdio.h>
#include <string.h>

EXTISM_IMPORT_USER("publish")
extern uint64_t publish(ExtismHandle message);

int32_t EXTISM_EXPORTED_FUNCTION(process) {
  char *url = extism_load_sz_dup(extism_config_get_buf_from_sz("url"), NULL);
  static char request[1024], message[8192];
  snprintf(request, sizeof request, "{\"url\":\"%s\",\"method\":\"GET\",\"headers\":{\"x-plugin\":\"fetch\"}}", url);
  ExtismHandle body = extism_http_request(extism_alloc_buf_from_sz(request), 0);
  int32_t status = extism_http_status_code();
  char *text = body ? extism_load_sz_dup(body, NULL) : strdup("");
  ExtismHandle headers = extism_http_headers();
  char *headerJson = headers ? extism_load_sz_dup(headers, NULL) : strdup("{}");
  text[strcspn(text, "\r\n\"\\")] = 0;
  extism_log_sz("fetch: got an answer", ExtismLogInfo);
  snprintf(message, sizeof message, "{\"topic\":\"event.http\",\"data\":{\"status\":%d,\"body\":\"%s\",\"headers\":%s}}",
           (int)status, text, headerJson);
  return publish(extism_alloc_buf_from_sz(message)) == 0 ? 0 : 1;
}
