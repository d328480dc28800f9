/* ic_store_swift: the volume's objects in one Swift container. */
#include <errno.h>

#include "ic_internal.h"
#include "swiftclient.h"

static int sw_get(void *ctx, uint64_t obj, uint64_t off, uint64_t len, void *buf, size_t *got) {
  const ic_store_swift *s = ctx;
  char name[ILAYOUT_OBJECT_NAME_LEN + 1];
  ilayout_object_number_to_name(obj, name);
  if (len == 0 || len > SIZE_MAX) return -EINVAL;
  swift_range r = {SWIFT_RANGE_SPAN, off, len};
  return swift_object_get(s->conn, s->container, name, r, buf, (size_t)len, got, NULL);
}

static int sw_get_tail(void *ctx, uint64_t obj, uint64_t len, void *buf) {
  const ic_store_swift *s = ctx;
  char name[ILAYOUT_OBJECT_NAME_LEN + 1];
  ilayout_object_number_to_name(obj, name);
  if (len == 0 || len > SIZE_MAX) return -EINVAL;
  swift_range r = {SWIFT_RANGE_TAIL, 0, len};
  size_t got = 0;
  int rc = swift_object_get(s->conn, s->container, name, r, buf, (size_t)len, &got, NULL);
  if (rc == 0 && got != len) rc = -EIO; /* Swift answers a short object whole */
  return rc;
}

static int sw_put(void *ctx, uint64_t obj, const void *buf, size_t len) {
  const ic_store_swift *s = ctx;
  char name[ILAYOUT_OBJECT_NAME_LEN + 1];
  ilayout_object_number_to_name(obj, name);
  return swift_object_put(s->conn, s->container, name, buf, len, NULL, 0);
}

const ic_store_ops ic_store_swift_ops = {sw_get, sw_get_tail, sw_put};
