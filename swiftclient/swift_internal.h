/* Internals shared by the swiftclient sources (not installed). */
#ifndef PFS_SWIFT_INTERNAL_H
#define PFS_SWIFT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "swiftclient.h"

#define SWIFT_HDRS_MAX_BYTES (64u * 1024u)

struct swift_hdrs {
  size_t n, cap, bytes;
  char **names;
  char **values;
};

/* Append one raw header line ("Name: value\r\n"); status lines reset the
 * list (a 100 Continue precedes the real reply). -E2BIG past the cap. */
int swift_hdrs_add_line(swift_hdrs *h, const char *line, size_t len);
void swift_hdrs_clear(swift_hdrs *h);

/* Parse "bytes a-b/total" (total may be "*"). 0 or -EINVAL. */
int swift_parse_content_range(const char *v, uint64_t *first, uint64_t *last,
                              uint64_t *total);

/* The storage URL as the iauth-swift plug-in returns it: http:// becomes
 * https:// when auth_url is https://, and with account set the path element
 * after /v1/ is replaced. *out is malloc'd. -EINVAL if su has no such
 * element. */
int swift_rewrite_storage_url(const char *auth_url, const char *su, const char *account,
                              char **out);

/* Percent-encode a name for a URL path (keep_slash keeps '/'). malloc'd. */
char *swift_pct_encode(const char *s, int keep_slash);

/* Iterate the names of one listing page. json: a JSON array of objects with
 * "name" (or "subdir"); otherwise one name per '\n'-terminated line.
 * Returns 0, -EINVAL for a malformed page, or fn's nonzero result. */
typedef int (*swift_page_fn)(void *ctx, const swift_list_entry *e);
int swift_parse_listing_page(const char *body, size_t len, int json,
                             swift_page_fn fn, void *ctx);

#endif
