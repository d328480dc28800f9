/*
 * ic_html: iclient's status page for a browser (GET / and /index.html on
 * its HTTP port). The original's iclient had no page; this one shows, in
 * the look of imgr's pages, what a developer checks first: which volume is
 * mounted where, how long, what is cached and how busy the mount is, with
 * links to the machine-readable routes (/stats, /metrics, /version,
 * /config, /leases). The figures are read when the page is served; a meta
 * refresh reloads it every IC_HTML_REFRESH_S seconds. No script, no
 * external asset.
 */
#ifndef PFS_IC_HTML_H
#define PFS_IC_HTML_H

#include <stddef.h>
#include <stdint.h>

#include "ic_internal.h"

#define IC_HTML_REFRESH_S 5

/* An operation counter shown in the page's table (name as in /stats). */
typedef struct ic_html_count {
  const char *name;
  uint64_t count;
} ic_html_count;

/* What the page shows; strings are borrowed and may be NULL (shown empty). */
typedef struct ic_html_status {
  const char *volume_name;
  const char *mount_id;
  const char *mount_point;
  uint64_t uptime_s;
  uint64_t inodes_cached;
  uint64_t leases_shared, leases_exclusive;
  uint64_t dirty_inodes, dirty_bytes; /* changes waiting for their commit */
  ic_rcache_stats rcache;
  const ic_html_count *counts;
  size_t ncounts;
} ic_html_status;

/* The whole page, every string HTML-escaped. Returns a malloc'd
 * NUL-terminated string the caller frees, or NULL when out of memory. */
char *ic_html_status_page(const ic_html_status *s);

#endif
