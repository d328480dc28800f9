/* libFuzzer target of iswift's request parsers and store record decoder.
 * First byte selects the parser; the rest is its input (NUL-terminated copy,
 * and for the range parser the first 8 bytes are the object size). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iswift_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t sel = data[0] % 5;
  data++;
  size--;
  char *s = malloc(size + 1);
  if (!s) return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  switch (sel) {
    case 0: {
      isw_path p;
      if (isw_parse_path(s, &p) == 0) isw_path_free(&p);
      break;
    }
    case 1: {
      uint64_t osize = 0;
      if (size >= 8) memcpy(&osize, data, 8);
      const char *hdr = size >= 8 ? s + 8 : s;
      isw_range r[ISW_MAX_RANGES];
      size_t n;
      for (int strict = 0; strict <= 1; strict++) {
        int rc = isw_parse_range(hdr, osize % 4096, strict, r, &n);
        if (rc == 0)
          for (size_t i = 0; i < n; i++)
            if (r[i].first > r[i].last || r[i].last >= osize % 4096) abort();
      }
      break;
    }
    case 2: {
      /* six NUL-separated query values */
      const char *v[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
      size_t pos = 0;
      for (int i = 0; i < 6 && pos <= size; i++) {
        v[i] = s + pos;
        pos += strlen(s + pos) + 1;
      }
      isw_listing l;
      isw_parse_listing(v[0], v[1], v[2], v[3], v[4], v[5], 10000, true, &l);
      if (l.delimiter) {
        /* a roll-up ends with the delimiter, inside the name, after the prefix */
        size_t nl = strlen(v[0]), pl = nl / 2, dl = strlen(l.delimiter);
        size_t sl = isw_subdir_len(v[0], pl, l.delimiter);
        if (sl && (sl > nl || sl < pl + dl || memcmp(v[0] + sl - dl, l.delimiter, dl))) abort();
      }
      isw_utf8_valid(s, size);
      break;
    }
    case 3: {
      isw_record rec;
      if (isw_record_decode(data, size, &rec) == 0) {
        /* version 1: the data ends the record; version 2: it follows the magic */
        const uint8_t *end = rec.data + rec.data_len;
        if (rec.data < data || end > data + size ||
            (end != data + size && rec.data != data + ISW_RECORD_MAGIC_LEN))
          abort();
        isw_record_free(&rec);
      }
      break;
    }
    case 4:
      isw_canonical_header(s);
      break;
  }
  free(s);
  return 0;
}
