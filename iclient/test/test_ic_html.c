/* The iclient status page (ic_html.h): figures in their cells, the links
 * to the machine-readable routes, the refresh, and HTML escaping of every
 * string a configuration or imgr supplies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ic_html.h"

static void assert_contains(const char *page, const char *needle) {
  if (strstr(page, needle) == NULL) fail_msg("page lacks \"%s\"", needle);
}

static void test_figures_and_links(void **state) {
  (void)state;
  const ic_html_count counts[] = {{"DoReadUsecs", 12}, {"LeaseUsecs", 3}};
  ic_html_status s = {
      .volume_name = "testvol",
      .mount_id = "AbCd0123",
      .mount_point = "/mnt",
      .uptime_s = 90061, /* 1 day, 1 h, 1 min, 1 s */
      .inodes_cached = 42,
      .leases_shared = 5,
      .leases_exclusive = 2,
      .dirty_inodes = 11,
      .dirty_bytes = 4096,
      .rcache = {.hits = 3, .misses = 1, .evictions = 7, .lines = 9, .prefetches = 6},
      .counts = counts,
      .ncounts = 2,
  };
  char *page = ic_html_status_page(&s);
  assert_non_null(page);
  assert_int_equal(strncmp(page, "<!DOCTYPE html>", 15), 0);
  assert_contains(page, "<title>iclient testvol</title>");
  assert_contains(page, "<meta http-equiv=\"refresh\" content=\"5\">");
  assert_contains(page, "<td id=\"volume\">testvol</td>");
  assert_contains(page, "<td id=\"mount-id\">AbCd0123</td>");
  assert_contains(page, "<td id=\"mount-point\">/mnt</td>");
  assert_contains(page, "<td id=\"uptime\">1d 01:01:01</td>");
  assert_contains(page, "<td id=\"uptime-s\">90061</td>");
  assert_contains(page, "<td id=\"inodes-cached\">42</td>");
  assert_contains(page, "<td id=\"leases-held\">7</td>");
  assert_contains(page, "<td id=\"leases-shared\">5</td>");
  assert_contains(page, "<td id=\"leases-exclusive\">2</td>");
  assert_contains(page, "<td id=\"rcache-hits\">3</td>");
  assert_contains(page, "<td id=\"rcache-misses\">1</td>");
  assert_contains(page, "<td id=\"rcache-ratio\">75.0 %</td>");
  assert_contains(page, "<td id=\"rcache-lines\">9</td>");
  assert_contains(page, "<td id=\"rcache-evictions\">7</td>");
  assert_contains(page, "<td id=\"rcache-prefetches\">6</td>");
  assert_contains(page, "<td id=\"dirty-inodes\">11</td>");
  assert_contains(page, "<td id=\"dirty-bytes\">4096</td>");
  assert_contains(page, "<th>DoReadUsecs</th><td class=\"count\">12</td>");
  assert_contains(page, "<th>LeaseUsecs</th><td class=\"count\">3</td>");
  for (const char *const *l = (const char *const[]){"/", "/stats", "/metrics", "/version",
                                                    "/config", "/leases", NULL};
       *l; l++) {
    char a[64];
    snprintf(a, sizeof(a), "<a href=\"%s\">", *l);
    assert_contains(page, a);
  }
  assert_contains(page, "Version " PFS_VERSION);
  assert_null(strstr(page, "<script"));
  assert_contains(page, "</html>");
  free(page);
}

static void test_escaping_and_empty(void **state) {
  (void)state;
  ic_html_status s = {
      .volume_name = "<script>alert('x')</script>&\"",
      .mount_id = NULL,
      .mount_point = "/m<n>t",
  };
  char *page = ic_html_status_page(&s);
  assert_non_null(page);
  assert_null(strstr(page, "<script"));
  assert_contains(page, "<td id=\"volume\">&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;"
                        "&quot;</td>");
  assert_contains(page, "<td id=\"mount-id\"></td>");
  assert_contains(page, "<td id=\"mount-point\">/m&lt;n&gt;t</td>");
  assert_contains(page, "<td id=\"uptime\">0d 00:00:00</td>");
  /* No read-cache lookups yet: no ratio rather than a division by zero. */
  assert_contains(page, "<td id=\"rcache-ratio\">-</td>");
  assert_contains(page, "<th>Statistic</th><th>Count</th></tr></table>");
  free(page);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_figures_and_links),
      cmocka_unit_test(test_escaping_and_empty),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
