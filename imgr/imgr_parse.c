/* imgr's own parsers of untrusted bytes (fuzzed by tests/fuzz/fuzz_imgr.c):
 * the first child of a stored B+tree node, and the Accept header. */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "imgr_internal.h"

/* ilayout.md 11.1-11.3: header {Items u64, Root u8, Leaf u8}, maxKeys u64
 * on the root, then for an internal node the child count and child 0's
 * ChildRef. An internal node with no children counts as a leaf. */
int imgr_node_first_child(const uint8_t *buf, size_t len, bool is_root, bool *leaf,
                          sm_ref *child) {
  ilayout_cursor c;
  ilayout_cursor_init(&c, buf, len);
  uint64_t items, max_keys, n = 0;
  uint8_t root, lf;
  ilayout_get_u64(&c, &items);
  ilayout_get_u8(&c, &root);
  ilayout_get_u8(&c, &lf);
  if (is_root && root) ilayout_get_u64(&c, &max_keys);
  if (!ilayout_cursor_error(&c) && !lf) {
    ilayout_get_u64(&c, &n);
    if (n) {
      ilayout_get_u64(&c, &child->object_number);
      ilayout_get_u64(&c, &child->object_offset);
      ilayout_get_u64(&c, &child->object_length);
    }
  }
  int rc = ilayout_cursor_error(&c);
  if (rc) return rc;
  if (lf > 1 || root > 1) return -EINVAL;
  *leaf = lf || n == 0;
  return 0;
}

bool imgr_accepts_html(const char *a) {
  while (a && *a) {
    a += strspn(a, " \t,");
    size_t n = strcspn(a, ",;");
    while (n && (a[n - 1] == ' ' || a[n - 1] == '\t')) n--;
    if (n == 9 && strncasecmp(a, "text/html", 9) == 0) return true;
    a += strcspn(a, ",");
  }
  return false;
}
