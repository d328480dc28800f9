/* Unit tests of swiftclient's pure helpers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "swift_internal.h"

static void test_content_range(void **state) {
  (void)state;
  uint64_t a, b, t;
  assert_int_equal(swift_parse_content_range("bytes 1-3/5", &a, &b, &t), 0);
  assert_true(a == 1 && b == 3 && t == 5);
  assert_int_equal(swift_parse_content_range("bytes 0-0/*", &a, &b, &t), 0);
  assert_true(t == UINT64_MAX);
  assert_int_equal(swift_parse_content_range("bytes 3-1/5", &a, &b, &t), -EINVAL);
  assert_int_equal(swift_parse_content_range("bytes 1-5/5", &a, &b, &t), -EINVAL);
  assert_int_equal(swift_parse_content_range("bytes */5", &a, &b, &t), -EINVAL);
  assert_int_equal(swift_parse_content_range("bytes 1-2/5x", &a, &b, &t), -EINVAL);
  assert_int_equal(swift_parse_content_range("bytes 99999999999999999999-1/5", &a, &b, &t),
                   -EINVAL);
  assert_int_equal(swift_parse_content_range(NULL, &a, &b, &t), -EINVAL);
}

static void test_hdrs(void **state) {
  (void)state;
  swift_hdrs *h = calloc(1, sizeof *h);
  const char *l1 = "HTTP/1.1 100 Continue\r\n", *l2 = "X-Old: 1\r\n";
  assert_int_equal(swift_hdrs_add_line(h, l1, strlen(l1)), 0);
  assert_int_equal(swift_hdrs_add_line(h, l2, strlen(l2)), 0);
  const char *l3 = "HTTP/1.1 200 OK\r\n", *l4 = "Content-Length:  12 \r\n", *l5 = "\r\n";
  assert_int_equal(swift_hdrs_add_line(h, l3, strlen(l3)), 0);
  assert_int_equal(swift_hdrs_add_line(h, l4, strlen(l4)), 0);
  assert_int_equal(swift_hdrs_add_line(h, l5, strlen(l5)), 0);
  assert_int_equal(swift_hdrs_count(h), 1);
  assert_null(swift_hdrs_get(h, "X-Old"));
  assert_string_equal(swift_hdrs_get(h, "content-length"), "12");
  char big[1024];
  memset(big, 'a', sizeof big);
  big[0] = 'X';
  big[1] = ':';
  int rc = 0;
  for (int i = 0; i < 100 && rc == 0; i++) rc = swift_hdrs_add_line(h, big, sizeof big);
  assert_int_equal(rc, -E2BIG);
  swift_hdrs_free(h);
}

static void test_pct(void **state) {
  (void)state;
  char *e = swift_pct_encode("a b/c%~", 1);
  assert_string_equal(e, "a%20b/c%25~");
  free(e);
  e = swift_pct_encode("a/b", 0);
  assert_string_equal(e, "a%2Fb");
  free(e);
}

typedef struct {
  char names[8][32];
  int64_t bytes[8];
  bool subdir[8];
  int n;
  int stop_at;
} collect;

static int collect_fn(void *ctx, const swift_list_entry *e) {
  collect *c = ctx;
  if (c->n == c->stop_at) return 7;
  strcpy(c->names[c->n], e->name);
  c->bytes[c->n] = e->bytes;
  c->subdir[c->n] = e->subdir;
  c->n++;
  return 0;
}

static void test_listing(void **state) {
  (void)state;
  collect c = {.stop_at = -1};
  const char *plain = "Bar\nFoo\r\nlast";
  assert_int_equal(swift_parse_listing_page(plain, strlen(plain), 0, collect_fn, &c), 0);
  assert_int_equal(c.n, 3);
  assert_string_equal(c.names[1], "Foo");
  assert_string_equal(c.names[2], "last");
  assert_int_equal(c.bytes[0], -1);
  assert_false(c.subdir[0]);

  collect j = {.stop_at = -1};
  const char *js = "[{\"name\":\"a\",\"bytes\":5,\"hash\":\"x\"},{\"subdir\":\"d/\"}]";
  assert_int_equal(swift_parse_listing_page(js, strlen(js), 1, collect_fn, &j), 0);
  assert_int_equal(j.n, 2);
  assert_int_equal(j.bytes[0], 5);
  assert_string_equal(j.names[1], "d/");
  assert_false(j.subdir[0]);
  assert_true(j.subdir[1]);

  collect s = {.stop_at = 1};
  assert_int_equal(swift_parse_listing_page(plain, strlen(plain), 0, collect_fn, &s), 7);
  assert_int_equal(s.n, 1);

  collect bad = {.stop_at = -1};
  assert_int_equal(swift_parse_listing_page("{}", 2, 1, collect_fn, &bad), -EINVAL);
  assert_int_equal(swift_parse_listing_page("[1]", 3, 1, collect_fn, &bad), -EINVAL);
  assert_int_equal(swift_parse_listing_page("[", 1, 1, collect_fn, &bad), -EINVAL);
  assert_int_equal(swift_parse_listing_page("a\0b\n", 4, 0, collect_fn, &bad), -EINVAL);
}

static void test_errno_table(void **state) {
  (void)state;
  assert_int_equal(swift_errno_from_status(200), 0);
  assert_int_equal(swift_errno_from_status(204), 0);
  assert_int_equal(swift_errno_from_status(404), -ENOENT);
  assert_int_equal(swift_errno_from_status(401), -EACCES);
  assert_int_equal(swift_errno_from_status(409), -ENOTEMPTY);
  assert_int_equal(swift_errno_from_status(416), -ERANGE);
  assert_int_equal(swift_errno_from_status(503), -EIO);
}

static void test_rewrite(void **state) {
  (void)state;
  char *u;
  assert_int_equal(swift_rewrite_storage_url("http://h:8080/auth/v1.0",
                                             "http://h:8080/v1/AUTH_test", NULL, &u), 0);
  assert_string_equal(u, "http://h:8080/v1/AUTH_test");
  free(u);
  assert_int_equal(swift_rewrite_storage_url("https://h/auth/v1.0", "http://h:8080/v1/AUTH_test",
                                             "AUTH_other", &u), 0);
  assert_string_equal(u, "https://h:8080/v1/AUTH_other");
  free(u);
  assert_int_equal(swift_rewrite_storage_url("https://h/auth/v1.0", "http://h/v1/AUTH_a/x",
                                             "B", &u), 0);
  assert_string_equal(u, "https://h/v1/B/x");
  free(u);
  assert_int_equal(swift_rewrite_storage_url("http://h/auth", "http://h/v1", "B", &u), -EINVAL);
}

static void test_auth_input(void **state) {
  (void)state;
  swift_auth_input in;
  assert_int_equal(swift_auth_input_parse(
                       "{\"AuthURL\":\"http://swift:8080/auth/v1.0\",\"AuthUser\":\"test:tester\","
                       "\"AuthKey\":\"testing\",\"Account\":\"AUTH_test\",\"Container\":\"con\"}",
                       &in), 0);
  assert_string_equal(in.auth_url, "http://swift:8080/auth/v1.0");
  assert_string_equal(in.container, "con");
  swift_config cfg;
  swift_config_defaults(&cfg);
  swift_auth_input_apply(&in, &cfg);
  assert_string_equal(cfg.account, "AUTH_test");
  assert_string_equal(cfg.auth_key, "testing");
  swift_auth_input_free(&in);
  assert_int_equal(swift_auth_input_parse("{\"AuthUser\":\"u\"}", &in), -EINVAL);
  assert_int_equal(swift_auth_input_parse("{\"AuthURL\":1,\"AuthUser\":\"u\"}", &in), -EINVAL);
  assert_int_equal(swift_auth_input_parse("[", &in), -EINVAL);
  assert_int_equal(swift_auth_input_parse("{\"AuthURL\":\"a\",\"AuthUser\":\"u\"}", &in), 0);
  assert_string_equal(in.account, "");
  swift_auth_input_free(&in);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_content_range), cmocka_unit_test(test_hdrs),
      cmocka_unit_test(test_pct), cmocka_unit_test(test_listing),
      cmocka_unit_test(test_errno_table), cmocka_unit_test(test_rewrite),
      cmocka_unit_test(test_auth_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
