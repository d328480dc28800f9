/* libFuzzer target of swiftclient's reply decoders: header lines,
 * Content-Range, listing pages (plain and JSON). First byte selects. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "swift_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count(void *ctx, const swift_list_entry *e) {
  if (!e->name) abort();
  (*(size_t *)ctx)++;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t sel = data[0] % 3;
  data++;
  size--;
  char *s = malloc(size + 1);
  if (!s) return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  if (sel == 0) {
    swift_hdrs *h = calloc(1, sizeof *h);
    size_t pos = 0;
    while (h && pos < size) { /* split at '\n' like curl's header callback */
      const char *nl = memchr(s + pos, '\n', size - pos);
      size_t len = nl ? (size_t)(nl - (s + pos)) + 1 : size - pos;
      if (swift_hdrs_add_line(h, s + pos, len)) break;
      pos += len;
    }
    swift_hdrs_get(h, "Content-Length");
    swift_hdrs_free(h);
  } else if (sel == 1) {
    uint64_t a, b, t;
    if (swift_parse_content_range(s, &a, &b, &t) == 0 && (a > b || (t != UINT64_MAX && b >= t)))
      abort();
  } else {
    size_t n = 0;
    swift_parse_listing_page(s, size, 0, count, &n);
    swift_parse_listing_page(s, size, 1, count, &n);
  }
  free(s);
  return 0;
}
