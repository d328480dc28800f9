/* ic_html: iclient's status page (see ic_html.h). */
#include "ic_html.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Text into markup: the five characters that could end an element or an
 * attribute become entities; everything else is copied as is (UTF-8). */
static void put_text(FILE *f, const char *s) {
  static const char special[] = "<>&\"'";
  static const char *const entity[] = {"&lt;", "&gt;", "&amp;", "&quot;", "&#39;"};
  while (s && *s) {
    size_t plain = strcspn(s, special);
    fwrite(s, 1, plain, f);
    s += plain;
    if (*s) fputs(entity[strchr(special, *s++) - special], f);
  }
}

/* A row "<tr><th>label</th><td id=...>value</td></tr>"; the id lets a test
 * (or a scraper) find the figure without parsing the layout. */
static void row_text(FILE *f, const char *label, const char *id, const char *value) {
  fprintf(f, "<tr><th>%s</th><td id=\"%s\">", label, id);
  put_text(f, value);
  fputs("</td></tr>", f);
}

static void row_num(FILE *f, const char *label, const char *id, uint64_t value) {
  fprintf(f, "<tr><th>%s</th><td id=\"%s\">%" PRIu64 "</td></tr>", label, id, value);
}

static const char STYLE[] =
    "body{font-family:sans-serif;margin:0}"
    "nav{background:#222;padding:.6em 1em}"
    "nav a{color:#ddd;margin-right:1.2em;text-decoration:none}"
    "nav span{color:#888;float:right}"
    "main{padding:1em}"
    "section{display:inline-block;vertical-align:top;margin:0 2em 1em 0}"
    "table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}"
    "th{background:#f4f4f4}"
    "td{font-family:monospace}";

char *ic_html_status_page(const ic_html_status *s) {
  char *page = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&page, &len);
  if (!f) return NULL;

  fprintf(f, "<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
             "<meta http-equiv=\"refresh\" content=\"%d\"><title>iclient ",
          IC_HTML_REFRESH_S);
  put_text(f, s->volume_name);
  fprintf(f, "</title><style>%s</style></head><body><nav>"
             "<a href=\"/\">Home</a><a href=\"/stats\">Stats</a>"
             "<a href=\"/metrics\">Metrics</a><a href=\"/version\">Version</a>"
             "<a href=\"/config\">Config</a><a href=\"/leases\">Leases</a>"
             "<span>Version %s</span></nav><main><h1>ProxyFS iclient: ",
          STYLE, PFS_VERSION);
  put_text(f, s->volume_name);
  fputs("</h1>", f);

  uint64_t up = s->uptime_s;
  char uptime[64];
  snprintf(uptime, sizeof(uptime), "%" PRIu64 "d %02" PRIu64 ":%02" PRIu64 ":%02" PRIu64,
           up / 86400, up / 3600 % 24, up / 60 % 60, up % 60);
  fputs("<section><h2>Mount</h2><table>", f);
  row_text(f, "Volume", "volume", s->volume_name);
  row_text(f, "Mount ID", "mount-id", s->mount_id);
  row_text(f, "Mount point", "mount-point", s->mount_point);
  row_text(f, "Uptime", "uptime", uptime);
  row_num(f, "Uptime (s)", "uptime-s", up);
  fputs("</table></section>", f);

  const ic_rcache_stats *r = &s->rcache;
  uint64_t lookups = r->hits + r->misses;
  char ratio[32] = "-";
  if (lookups)
    snprintf(ratio, sizeof(ratio), "%.1f %%", 100.0 * (double)r->hits / (double)lookups);
  fputs("<section><h2>Caches</h2><table>", f);
  row_num(f, "Inodes cached", "inodes-cached", s->inodes_cached);
  row_num(f, "Leases held", "leases-held", s->leases_shared + s->leases_exclusive);
  row_num(f, "&nbsp;&nbsp;shared", "leases-shared", s->leases_shared);
  row_num(f, "&nbsp;&nbsp;exclusive", "leases-exclusive", s->leases_exclusive);
  row_num(f, "Inodes waiting for their commit", "dirty-inodes", s->dirty_inodes);
  row_num(f, "Log segment bytes not stored yet", "dirty-bytes", s->dirty_bytes);
  row_num(f, "Read cache hits", "rcache-hits", r->hits);
  row_num(f, "Read cache misses", "rcache-misses", r->misses);
  row_text(f, "Read cache hit ratio", "rcache-ratio", ratio);
  row_num(f, "Read cache lines", "rcache-lines", r->lines);
  row_num(f, "Read cache evictions", "rcache-evictions", r->evictions);
  row_num(f, "Read-ahead lines fetched", "rcache-prefetches", r->prefetches);
  fputs("</table></section>", f);

  fputs("<section><h2>Operations</h2><table><tr><th>Statistic</th><th>Count</th></tr>", f);
  for (size_t i = 0; i < s->ncounts; i++) {
    fputs("<tr><th>", f);
    put_text(f, s->counts[i].name);
    fputs("</th><td class=\"count\">", f);
    fprintf(f, "%" PRIu64 "</td></tr>", s->counts[i].count);
  }
  fputs("</table><p>Every statistic with its distribution: <a href=\"/stats\">/stats</a> "
        "(text), <a href=\"/metrics\">/metrics</a> (Prometheus).</p></section>"
        "</main></body></html>",
        f);

  bool failed = ferror(f) != 0;
  if (fclose(f) != 0 || failed) {
    free(page);
    return NULL;
  }
  return page;
}
