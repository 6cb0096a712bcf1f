// Test plugin (C, Extism C PDK, wasi-libc): reads the file named by config key "path" and publishes
// its first line on event.file; a file it cannot open fails the call (perror's line, on stderr,
// reaches the plugin log).
#define EXTISM_IMPLEMENTATION
#define EXTISM_USE_LIBC
#include "extism-pdk.h"
#include <stdio.h>
#include <string.h>

EXTISM_IMPORT_USER("publish")
extern uint64_t publish(ExtismHandle message);

int32_t EXTISM_EXPORTED_FUNCTION(process) {
  char *path = extism_load_sz_dup(extism_config_get_buf_from_sz("path"), NULL);
  static char line[256], message[1024];
  FILE *f = fopen(path, "r");
  if (!f) {
    perror(path);
    snprintf(message, sizeof message, "cannot open %s", path);
    extism_error_set_buf_from_sz(message);
    return 1;
  }
  if (!fgets(line, sizeof line, f)) line[0] = 0;
  fclose(f);
  line[strcspn(line, "\r\n\"\\")] = 0;
  snprintf(message, sizeof message, "{\"topic\":\"event.file\",\"data\":{\"path\":\"%s\",\"line\":\"%s\"}}", path, line);
  return publish(extism_alloc_buf_from_sz(message)) == 0 ? 0 : 1;
}
