/* imgr's parsers of untrusted input: the first byte picks one.
 *   0: a stored B+tree node header (imgr_node_first_child), root and not
 *   1: an Accept header (imgr_accepts_html)
 *   2: a StorageURL (imgr_store_init)
 *   3: an HTML page around arbitrary JSON text and title (escaping) */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imgr_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t sel = data[0] % 4;
  data++, size--;
  char *s = malloc(size + 1);
  if (!s) return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  switch (sel) {
  case 0: {
    bool leaf;
    sm_ref child;
    imgr_node_first_child(data, size, true, &leaf, &child);
    imgr_node_first_child(data, size, false, &leaf, &child);
    break;
  }
  case 1:
    imgr_accepts_html(s);
    break;
  case 2: {
    imgr_store st;
    if (imgr_store_init(&st, s) == 0) imgr_store_free(&st);
    break;
  }
  case 3: {
    json_t *j = json_loads(s, JSON_DECODE_ANY, NULL);
    char *page = imgr_html_page("inode", s, j, s);
    /* No data may close the script element: the only "</script>" is the
     * page's own, just before </body>. */
    if (page && strstr(page, "</script>") != strstr(page, "</script></body>")) abort();
    free(page);
    json_decref(j);
    break;
  }
  }
  free(s);
  return 0;
}
